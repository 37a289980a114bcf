"""``idp events push [--loop]`` and ``idp events status``: push the security events and
logout tokens waiting for their receivers (as the background thread of ``idp serve``
does; both may run at once: each event is claimed by one pusher at a time)."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from typing import Any

import click
from sqlalchemy import func, select

from idp.cli.common import directory_session, emit, json_option, ready_app


@click.group("events")
def events_group() -> None:
    """Événements de sécurité (RFC 8417) et jetons de déconnexion des partenaires."""


@events_group.command("push")
@click.option("--loop", is_flag=True, help="Continue jusqu'à Ctrl+C ou SIGTERM.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=None,
    help="Secondes entre deux tours avec --loop (défaut : IDP_EVENTS_INTERVAL).",
)
@json_option
def events_push(loop: bool, interval: float | None, as_json: bool) -> None:
    """Envoie à chaque récepteur ses événements dus, dans l'ordre, et dit ce qui a été
    fait ; avec --loop, un tour toutes les --interval secondes."""
    from idp.events.push import push_round

    app = ready_app()
    stopping = threading.Event()
    if loop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
    pause = interval or float(app.config["EVENTS_INTERVAL"])
    while True:  # a round in progress ends before the loop stops
        done = asdict(push_round(app))
        text = ", ".join(f"{key} : {value}" for key, value in done.items())
        emit(as_json, done, f"événements : {text}")
        if not loop or stopping.wait(pause):
            break


@events_group.command("status")
@json_option
def events_status(as_json: bool) -> None:
    """Par récepteur : événements en attente, acquittés, refusés."""
    from idp.events.models import SecurityEventRow as Row

    with directory_session() as session:
        rows = session.execute(
            select(Row.receiver, func.coalesce(Row.outcome, "pending"), func.count())
            .group_by(Row.receiver, Row.outcome)
            .order_by(Row.receiver)
        ).all()
    counts: dict[str, Any] = {}
    for receiver, outcome, count in rows:
        counts.setdefault(receiver, {})[outcome] = count
    lines = [
        f"{r} : {', '.join(f'{k} {v}' for k, v in sorted(c.items()))}" for r, c in counts.items()
    ]
    emit(as_json, counts, "\n".join(lines) or "aucun événement")


def register(cli: click.Group) -> None:
    cli.add_command(events_group)
