"""``idp audit``: verify the keyed chain (against a checkpoint), write a signed
checkpoint, export the trail."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from idp.cli.common import CommandError, directory_session, emit, json_option, ready_app
from rcd_store import audit


@click.group("audit")
def audit_group() -> None:
    """Journal d'audit chaîné sous clé, points de contrôle signés."""


def _read_checkpoint(app: Any, path: str) -> audit.Checkpoint:
    from idp.tokens import audit_checkpoint

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"point de contrôle illisible : {path} ({exc})") from None
    try:
        return audit_checkpoint.read(app, text)
    except audit_checkpoint.CheckpointRefused as exc:
        raise CommandError(f"point de contrôle refusé : {exc}") from None


@audit_group.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(dir_okay=False),
    help="Point de contrôle signé (idp audit checkpoint) : rien de ce qu'il couvre ne "
    "doit avoir été réécrit ni coupé.",
)
@json_option
def audit_verify(checkpoint_path: str | None, as_json: bool) -> None:
    """Vérifie le chaînage sous clé du journal ; échoue en nommant chaque problème."""
    from rcd_store.models import AuditEvent

    app = ready_app()
    mark = _read_checkpoint(app, checkpoint_path) if checkpoint_path else None
    with directory_session(app) as session:
        problems = audit.verify(session, mark)
        count = session.query(AuditEvent).count()
    payload: dict[str, Any] = {"ok": not problems, "events": count}
    if mark is not None:
        payload["checkpoint"] = {"taken_at": mark.taken_at.isoformat(), "events": mark.events}
    if problems:
        if as_json:
            emit(True, {**payload, "problems": [str(p) for p in problems]}, "")
        for problem in problems:
            click.echo(f"erreur : {problem}", err=True)
        raise SystemExit(1)
    text = f"journal intègre ({count} événements)"
    if mark is not None:
        from idp.tokens.audit_checkpoint import describe

        text += f", conforme au {describe(mark)}"
    emit(as_json, payload, text)


@audit_group.command("checkpoint")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@json_option
def audit_checkpoint_command(file: str, as_json: bool) -> None:
    """Écrit un point de contrôle signé de la tête de chaque segment dans FILE, à garder
    hors de la base (« - » : sortie standard). Refusé si le journal n'est pas intègre."""
    from idp.tokens import audit_checkpoint

    app = ready_app()
    with directory_session(app) as session:
        problems = audit.verify(session)
        if problems:
            raise CommandError(f"journal non intègre, point de contrôle refusé : {problems[0]}")
        signed, mark = audit_checkpoint.take(app, session)
    if file == "-":
        emit(as_json, {"checkpoint": signed, **mark.as_claims()}, signed)
        return
    _write(Path(file), signed + "\n")
    payload = {"file": file, **mark.as_claims()}
    emit(as_json, payload, f"{audit_checkpoint.describe(mark)} écrit dans {file}")


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically (a crash leaves the previous checkpoint whole)."""
    partial = path.with_name(path.name + ".partiel")
    try:
        partial.write_text(text, encoding="ascii")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CommandError(f"écriture impossible : {path} ({exc.strerror})") from None


@audit_group.command("export")
@click.option("--since", help="Date ou instant ISO 8601 (UTC par défaut).")
def audit_export(since: str | None) -> None:
    """Exporte le journal en JSON Lines (un événement par ligne)."""
    start = _parse_since(since) if since else None
    with directory_session() as session:
        for event in audit.export(session, since=start):
            click.echo(json.dumps(event, ensure_ascii=False))


def _parse_since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"date invalide : {value!r} (format AAAA-MM-JJ)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(cli: click.Group) -> None:
    cli.add_command(audit_group)
