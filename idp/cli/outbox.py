"""``idp outbox send [--loop]`` and ``idp outbox status``: deliver the outbox by the
configured sender (``IDP_OUTBOX_SENDER``), once or until stopped. It may run beside
``idp serve`` and its background sender: each message is claimed by one worker only."""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import asdict
from typing import Any

import click

from idp.cli.common import CommandError, directory_session, emit, json_option, ready_app
from idp.config import ConfigError
from rcd_store import outbox
from rcd_store.outbox import Delivery

LABELS = (
    ("sent", "envoyés"),
    ("failed", "en échec (réessai plus tard)"),
    ("gave_up", "abandonnés"),
    ("purged", "expirés sans envoi"),
    ("uncertain", "incertains (jamais renvoyés)"),
    ("recovered", "repris d'un envoi interrompu"),
)


def describe(done: Delivery) -> str:
    counts = asdict(done)
    return "boîte d'envoi : " + ", ".join(f"{label} : {counts[key]}" for key, label in LABELS)


@click.group("outbox")
def outbox_group() -> None:
    """Boîte d'envoi : courriels et courriers en attente, leur envoi."""


@outbox_group.command("send")
@click.option("--loop", is_flag=True, help="Continue jusqu'à Ctrl+C ou SIGTERM.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=None,
    help="Secondes entre deux tours avec --loop (défaut : IDP_OUTBOX_INTERVAL).",
)
@json_option
def outbox_send(loop: bool, interval: float | None, as_json: bool) -> None:
    """Envoie ce qui est dû (courriels, courriers), ferme ce qui a expiré, et dit ce qui
    a été fait ; avec --loop, un tour toutes les --interval secondes (une ligne, ou un
    objet JSON, par tour)."""
    from idp.outbox.delivery import deliver_round
    from idp.outbox.settings import build_sender

    app = ready_app()
    try:
        # with --json, standard output holds the JSON only: printed messages go to stderr
        sender = build_sender(app.config, console=sys.stderr if as_json else None)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    stopping = threading.Event()
    if loop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
    pause = interval or float(app.config["OUTBOX_INTERVAL"])
    while True:  # a round in progress ends before the loop stops
        done = deliver_round(app, sender)
        emit(as_json, asdict(done), describe(done))
        if not loop or stopping.wait(pause):
            break


@outbox_group.command("status")
@json_option
def outbox_status(as_json: bool) -> None:
    """Combien de messages dans chaque état (en attente, envoyés, abandonnés...)."""
    with directory_session() as session:
        counts: dict[str, Any] = outbox.states(session)
    text = ", ".join(f"{state} : {count}" for state, count in sorted(counts.items()))
    emit(as_json, counts, text or "boîte d'envoi vide")


def register(cli: click.Group) -> None:
    cli.add_command(outbox_group)
