"""``idp keys``: list, rotate, import and export signing keys; make a master key."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from idp.cli.common import CommandError, directory_session, emit, json_option, ready_app
from idp.tokens.signing import ensure_keys, keyring, max_token_lifetime
from keys import io as key_io
from keys.crypto import MasterKey
from keys.keyring import Rotation
from keys.model import KeyState, KeyUse
from keys.store import KeyStoreConflict
from rcd_store import audit

USES = click.Choice([u.value for u in KeyUse])


@click.group("keys")
def keys_group() -> None:
    """Clés de signature (SAML et JWT) : rotation, import, export."""


@keys_group.command("list")
@json_option
def keys_list(as_json: bool) -> None:
    """Affiche les clés et leur état (next, active, retiring, retired)."""
    app = ready_app()
    ensure_keys(app)
    rows = [row for use in KeyUse for row in keyring(app).rows(use)]
    payload = {
        "keys": [
            {
                "kid": r.kid,
                "use": r.use.value,
                "alg": r.alg,
                "state": r.state.value,
                "created_at": r.created_at.isoformat(),
                "publish_until": r.publish_until.isoformat() if r.publish_until else None,
            }
            for r in rows
        ]
    }
    lines = [
        f"{r.use.value:<5} {r.state.value:<9} {r.alg:<6} {r.kid}"
        + (
            f"  (publiée jusqu'au {r.publish_until:%Y-%m-%d %H:%M} UTC)"
            if r.state is KeyState.RETIRING and r.publish_until
            else ""
        )
        for r in rows
    ]
    emit(as_json, payload, "\n".join(lines))


def audit_rotations(app: object, rotations: list[Rotation]) -> None:
    """One ``keys.rotated`` audit event per rotation that changed something."""
    with directory_session(app) as session:  # type: ignore[arg-type]
        for rotation in rotations:
            if rotation.changed:
                audit.record(
                    session,
                    "keys.rotated",
                    actor="cli",
                    target=rotation.use.value,
                    data=rotation.as_dict(),
                )


@keys_group.command("rotate")
@click.option("--use", "uses", type=USES, multiple=True, help="saml ou jwt (les deux par défaut).")
@json_option
def keys_rotate(uses: tuple[str, ...], as_json: bool) -> None:
    """Fait avancer chaque clé d'un état et crée une nouvelle clé « next ».

    Les jetons signés avant la rotation restent vérifiables jusqu'à leur expiration."""
    app = ready_app()
    ensure_keys(app)
    now = datetime.now(UTC)
    rotations = []
    try:
        for use in uses or tuple(u.value for u in KeyUse):
            rotations.append(
                keyring(app).rotate(
                    KeyUse(use), now=now, max_token_lifetime=max_token_lifetime(app)
                )
            )
    except KeyStoreConflict as exc:
        raise CommandError(f"rotation concurrente refusée, réessayez : {exc}") from None
    audit_rotations(app, rotations)
    emit(
        as_json,
        {"rotations": [r.as_dict() for r in rotations]},
        "\n".join(line for r in rotations for line in r.describe()),
    )


@keys_group.command("master-key")
def keys_master_key() -> None:
    """Imprime une nouvelle clé maîtresse (valeur pour IDP_MASTER_KEY)."""
    click.echo(MasterKey.generate().to_text())


def _passphrase(flag: bool) -> bytes | None:
    if not flag:
        return None
    line = sys.stdin.readline()
    return (line.removesuffix("\n")).encode("utf-8")


@keys_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--use", type=USES, required=True, help="Usage de la clé : saml ou jwt.")
@click.option(
    "--format", "fmt", type=click.Choice(["pem", "pkcs12"]), default="pem", show_default=True
)
@click.option(
    "--certificate",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Certificat PEM (clés PEM SAML ; généré s'il manque).",
)
@click.option(
    "--passphrase-stdin", is_flag=True, help="Lit la phrase de passe sur l'entrée standard."
)
@json_option
def keys_import(
    file: Path, use: str, fmt: str, certificate: Path | None, passphrase_stdin: bool, as_json: bool
) -> None:
    """Importe une clé privée (PEM PKCS#8 ou PKCS#12) comme prochaine clé (« next »)."""
    passphrase = _passphrase(passphrase_stdin)
    app = ready_app()
    now = datetime.now(UTC)
    try:
        if fmt == "pkcs12":
            if passphrase is None:
                raise CommandError("PKCS#12 : passez la phrase de passe avec --passphrase-stdin")
            key = key_io.import_pkcs12(
                file.read_bytes(), passphrase=passphrase, use=KeyUse(use), now=now
            )
        else:
            key = key_io.import_pem(
                file.read_bytes(),
                use=KeyUse(use),
                now=now,
                passphrase=passphrase,
                certificate_pem=certificate.read_bytes() if certificate else None,
            )
        keyring(app).add(key)
    except (key_io.KeyImportError, ValueError, KeyStoreConflict) as exc:
        raise CommandError(f"import refusé : {exc}") from None
    with directory_session(app) as session:
        audit.record(
            session, "keys.imported", actor="cli", target=key.kid, data={"use": use, "alg": key.alg}
        )
    emit(
        as_json,
        {"kid": key.kid, "use": use, "alg": key.alg, "state": "next"},
        f"clé {key.kid} importée ({use}, {key.alg}) comme prochaine clé",
    )


@keys_group.command("export")
@click.option("--kid", required=True, help="Identifiant de la clé.")
@click.option(
    "--format", "fmt", type=click.Choice(["pem", "pkcs12"]), default="pem", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Fichier à écrire (créé avec les droits 0600).",
)
@click.option(
    "--passphrase-stdin", is_flag=True, help="Chiffre l'export avec cette phrase de passe."
)
def keys_export(kid: str, fmt: str, out: Path, passphrase_stdin: bool) -> None:
    """Exporte une clé privée (sauvegarde, migration) ; PKCS#12 exige une phrase de passe."""
    passphrase = _passphrase(passphrase_stdin)
    app = ready_app()
    try:
        key = keyring(app).key(kid)
    except KeyError:
        raise CommandError(f"clé inconnue : {kid}") from None
    if fmt == "pkcs12":
        if not passphrase:
            raise CommandError("PKCS#12 : passez une phrase de passe avec --passphrase-stdin")
        data = key_io.export_pkcs12(key, passphrase=passphrase)
    else:
        data = key_io.export_pem(key, passphrase=passphrase, include_certificate=True)
    import os

    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandError(f"le fichier existe déjà : {out}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    with directory_session(app) as session:
        audit.record(session, "keys.exported", actor="cli", target=kid, data={"format": fmt})
    click.echo(f"clé {kid} exportée dans {out}")


def register(cli: click.Group) -> None:
    cli.add_command(keys_group)
