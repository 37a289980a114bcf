"""``idp operator``: grant, revoke and list the operator role (audited)."""

from __future__ import annotations

import click

from idp.cli.common import directory_session, emit, json_option
from idp.console import operators

_EMAIL = click.option("--email", required=True, help="Adresse électronique du déclarant.")


@click.group("operator")
def operator_group() -> None:
    """Opérateurs du service : seuls eux accèdent à la console (double authentification)."""


@operator_group.command("grant")
@_EMAIL
@json_option
def operator_grant(email: str, as_json: bool) -> None:
    """Donne le rôle d'opérateur au déclarant actif de cette adresse."""
    with directory_session() as session:
        declarant = operators.grant(session, email, actor="cli")
        payload = {"declarant_id": declarant.id, "email": declarant.email, "operator": True}
    emit(as_json, payload, f"{payload['email']} est opérateur ({payload['declarant_id']})")


@operator_group.command("revoke")
@_EMAIL
@json_option
def operator_revoke(email: str, as_json: bool) -> None:
    """Retire le rôle d'opérateur (effet à la requête suivante)."""
    with directory_session() as session:
        declarant = operators.revoke(session, email, actor="cli")
        payload = {"declarant_id": declarant.id, "email": declarant.email, "operator": False}
    emit(as_json, payload, f"{payload['email']} n'est plus opérateur")


@operator_group.command("list")
@json_option
def operator_list(as_json: bool) -> None:
    """Liste les opérateurs."""
    with directory_session() as session:
        rows = operators.listed(session)
    payload = {
        "operators": [
            {
                "declarant_id": r.declarant_id,
                "email": r.email,
                "granted_at": r.granted_at.isoformat(),
                "granted_by": r.granted_by,
            }
            for r in rows
        ]
    }
    lines = [f"{r.email or '-':<40} {r.declarant_id} {r.granted_at:%Y-%m-%d}" for r in rows]
    emit(as_json, payload, "\n".join(lines) or "aucun opérateur")


def register(cli: click.Group) -> None:
    cli.add_command(operator_group)
