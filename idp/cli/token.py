"""``idp token``: verify a received token (partners), issue one (tests, integration)."""

from __future__ import annotations

import json
import sys
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import click

from idp.cli.common import CommandError, directory_session, emit, json_option, ready_app
from idp.config import load as load_config
from token_suite import Trust
from token_suite import jwt as interops_jwt
from token_suite import saml as interops_saml
from token_suite.errors import InteropsError
from token_suite.vector import IdentityVector

MAX_FETCH = 1024 * 1024


@click.group("token")
def token_group() -> None:
    """Jetons Interops : vérifier (partenaires) et émettre (tests)."""


def read_source(source: str) -> bytes:
    """A file's bytes, or an http(s) URL's body (1 MiB at most, 10 s)."""
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=10) as response:
                data = response.read(MAX_FETCH + 1)
        except OSError as exc:
            raise CommandError(f"lecture impossible de {source} : {exc}") from None
        if len(data) > MAX_FETCH:
            raise CommandError(f"document trop volumineux : {source}")
        return bytes(data)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise CommandError(f"lecture impossible de {source} : {exc.strerror}") from None


def _replay_cache(instance: Path) -> Any:
    """The partner's replay cache: a small SQLite file in its instance folder."""
    from sqlalchemy import Table

    from idp.config import private_sqlite
    from idp.stores.models import SeenToken
    from idp.stores.replay import SqlReplayCache
    from rcd_store.db import make_engine, session_factory

    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_sqlite(instance / "replay.sqlite3")  # seen token IDs: the owner's only
    engine = make_engine(f"sqlite:///{instance / 'replay.sqlite3'}")
    # a local cache, not the directory schema
    cast(Table, SeenToken.__table__).create(engine, checkfirst=True)
    return SqlReplayCache(session_factory(engine)), engine


def _guess_format(data: bytes) -> str:
    text = data.strip()
    if text.startswith((b"<", b"PD")):  # XML, or base64 of "<?xml"/"<samlp"
        return "saml"
    return "jwt" if text.count(b".") == 2 else "saml"


def vector_json(vector: IdentityVector) -> dict[str, Any]:
    """The verified vector as JSON: the subject under ``sub``, then every verified field."""
    claims = {
        k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vector.claims.items()
    }
    return {
        **claims,
        "sub": vector.subject,
        "siret": vector.siret,
        "family_name": vector.family_name,
        "given_name": vector.given_name,
        "email": vector.email,
        "pagm": list(vector.pagm),
        "habilitations": [h.as_claim() for h in vector.habilitations],
        "acr": vector.acr,
        "auth_time": vector.auth_time.isoformat() if vector.auth_time else None,
        "session_index": vector.session_index,
    }


def _trust(metadata: str | None, jwks_source: str | None, issuer: str | None) -> Trust:
    try:
        if metadata:
            return Trust.from_metadata(read_source(metadata))
        return Trust.from_jwks(json.loads(read_source(jwks_source or "")), issuer=issuer)
    except (ValueError, InteropsError) as exc:
        raise CommandError(f"ancre de confiance invalide : {exc}") from None


@token_group.command("verify")
@click.argument("source", default="-")
@click.option(
    "--format", "fmt", type=click.Choice(["saml", "jwt", "auto"]), default="auto", show_default=True
)
@click.option("--audience", required=True, help="Votre identifiant de service (audience attendue).")
@click.option("--metadata", help="Métadonnées SAML de l'opérateur (fichier ou URL).")
@click.option("--jwks", "jwks_source", help="JWKS de l'opérateur (fichier ou URL).")
@click.option("--issuer", help="Émetteur de confiance (obligatoire avec --jwks).")
@click.option(
    "--skew",
    type=click.IntRange(0, 600),
    default=60,
    show_default=True,
    help="Tolérance d'horloge en secondes.",
)
def token_verify(
    source: str,
    fmt: str,
    audience: str,
    metadata: str | None,
    jwks_source: str | None,
    issuer: str | None,
    skew: int,
) -> None:
    """Vérifie un jeton SAML ou un JWT Interops-R (FICHIER ou - pour l'entrée standard).

    Code 0 et les attributs vérifiés en JSON ; code 1 et le code d'erreur Interops sinon."""
    if bool(metadata) == bool(jwks_source):
        raise CommandError("donnez soit --metadata (SAML) soit --jwks (JWT)")
    if jwks_source and not issuer:
        raise CommandError("--issuer est obligatoire avec --jwks (l'émetteur de confiance)")
    trust = _trust(metadata, jwks_source, issuer)  # the trust anchor is chosen first
    data = sys.stdin.buffer.read() if source == "-" else read_source(source)
    fmt = _guess_format(data) if fmt == "auto" else fmt
    replay, engine = _replay_cache(Path(load_config(None)["INSTANCE_PATH"]))
    options: dict[str, Any] = {
        "trust": trust,
        "audience": audience,
        "issuer": issuer,
        "skew": timedelta(seconds=skew),
        "replay": replay,
    }
    try:
        if fmt == "saml":
            vector = interops_saml.verify(data, **options)
        else:
            vector = interops_jwt.verify(data.strip(), **options)
    except InteropsError as exc:
        click.echo(f"{exc.code}: {exc.reason}")
        click.echo(f"erreur : {exc.code}: {exc.reason}", err=True)
        raise SystemExit(1) from None
    finally:
        engine.dispose()
    click.echo(json.dumps(vector_json(vector), ensure_ascii=False, indent=2))


@token_group.command("issue")
@click.option("--declarant", "declarant_id", required=True, help="Identifiant du déclarant.")
@click.option("--partner", required=True, help="Partenaire destinataire (nom).")
@click.option("--service", help="Un seul service du partenaire.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["saml", "jwt"]),
    help="saml ou jwt (par défaut : le réglage du partenaire, sinon saml).",
)
@json_option
def token_issue(
    declarant_id: str, partner: str, service: str | None, fmt: str | None, as_json: bool
) -> None:
    """Émet un jeton signé pour un partenaire (le document samlp:Response ou le JWT seul)."""
    from idp.tokens import issuing as tokens
    from idp.tokens.signing import ensure_keys

    app = ready_app()
    ensure_keys(app)
    with directory_session(app) as session:
        issued = tokens.issue_for_partner(
            tokens.token_service(app),
            session,
            declarant_id=declarant_id,
            partner=partner,
            service=service,
            fmt=fmt,
        )
    emit(
        as_json,
        {
            "token": issued.token,
            "id": issued.token_id,
            "format": issued.format,
            "audience": issued.audience,
            "expires_at": issued.expires_at.isoformat(),
        },
        issued.token,
    )


def register(cli: click.Group) -> None:
    cli.add_command(token_group)
