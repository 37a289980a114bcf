"""A partner's SAML metadata on the command line: ``--saml-metadata FILE_OR_URL`` and
``--metadata-signing-cert FILE`` of ``idp partner add/edit``, and
``idp partner refresh-metadata [NAME] [--loop]``."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from idp.cli.common import CommandError, emit, json_option, ready_app
from rcd_store.errors import DirectoryError

OPTIONS = [
    click.option(
        "--metadata-signing-cert",
        "metadata_signing_cert",
        help="Certificat(s) PEM avec lesquels le partenaire signe ses métadonnées "
        "(exigé sur chaque document ensuite) ; vide : aucun.",
    ),
]


def settings(opts: dict[str, Any]) -> dict[str, Any]:
    """The ``PartnerSettings`` fields of ``--saml-metadata`` (a file, or a URL fetched now
    and again on a schedule) and ``--metadata-signing-cert``."""
    from idp.config import ConfigError
    from idp.config import load as load_config
    from idp.saml.metadata_refresh import policy
    from partners import saml_metadata

    try:
        refresh = policy(load_config(None))
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    fields: dict[str, Any] = {"metadata_refresh_seconds": refresh.refresh_seconds}
    cert = opts.pop("metadata_signing_cert", None)
    if cert is not None:
        fields["metadata_signing_pem"] = (
            saml_metadata.signing_certificates(_read(cert)) if cert.strip() else []
        )
    source = opts.get("saml_metadata")
    if source and source.startswith(("http://", "https://")):
        try:
            fields["saml_metadata"] = saml_metadata.fetch(source, refresh.fetch)
        except DirectoryError as exc:
            raise CommandError(str(exc)) from None
        fields["saml_metadata_url"] = source.strip()
    elif source:
        fields["saml_metadata"] = _read(source)
    return fields


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CommandError(f"lecture impossible de {path} : {exc.strerror}") from None


@click.command("refresh-metadata")
@click.argument("name", required=False)
@click.option("--loop", is_flag=True, help="Continue jusqu'à Ctrl+C ou SIGTERM.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=None,
    help="Secondes entre deux tours avec --loop (défaut : IDP_SAML_METADATA_INTERVAL).",
)
@json_option
def refresh_metadata(name: str | None, loop: bool, interval: float | None, as_json: bool) -> None:
    """Rafraîchit les métadonnées SAML tirées d'une URL : celles du partenaire NAME tout
    de suite, sinon celles qui sont dues ; avec --loop, un tour toutes les --interval
    secondes. Un document refusé laisse les métadonnées en place et est signalé."""
    from idp.saml.metadata_refresh import refresh_now, refresh_round

    app = ready_app()
    if name is not None:
        if loop:
            raise CommandError("--loop rafraîchit ce qui est dû : sans NAME")
        try:
            outcome = refresh_now(app, name, actor="cli")
        except DirectoryError as exc:
            raise CommandError(str(exc)) from None
        line = _line(outcome.partner, outcome.status, outcome.detail)
        if as_json or outcome.status == "refreshed":
            emit(as_json, asdict(outcome), line)
        if outcome.status != "refreshed":  # recorded, audited, logged: and said here
            raise CommandError(f"métadonnées SAML non rafraîchies : {line}")
        return
    stopping = threading.Event()
    if loop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
    pause = interval or float(app.config["SAML_METADATA_INTERVAL"])
    while True:  # a round in progress ends before the loop stops
        outcomes = [asdict(o) for o in refresh_round(app, actor="cli")]
        lines = [_line(o["partner"], o["status"], o["detail"]) for o in outcomes]
        emit(as_json, {"outcomes": outcomes}, "\n".join(lines) or "aucune métadonnée due")
        if not loop or stopping.wait(pause):
            break


def _line(partner: str, status: str, detail: str | None) -> str:
    return f"{partner} : {status}" + (f" ({detail})" if detail else "")


def register(group: click.Group) -> None:
    group.add_command(refresh_metadata)
