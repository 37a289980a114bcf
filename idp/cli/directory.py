"""Directory administration commands: companies, declarants, services, rights."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from idp.auth.passwords import passwords
from idp.cli.common import CommandError, F, directory_session, emit, json_option, ready_app
from rcd_store import identity, services
from rcd_store.mandates import lifecycle, pilots


@click.group("company")
def company() -> None:
    """Entreprises (SIREN) et établissements (SIRET)."""


@company.command("add")
@click.option("--siret", required=True, help="SIRET de l'établissement (14 chiffres).")
@click.option("--name", required=True, help="Raison sociale.")
@click.option("--representative", help="Représentant légal.")
@click.option("--address", help="Adresse postale.")
@json_option
def company_add(
    siret: str, name: str, representative: str | None, address: str | None, as_json: bool
) -> None:
    """Enregistre un établissement et, s'il est nouveau, son entreprise."""
    with directory_session() as session:
        establishment = services.add_company(
            session,
            siret=siret,
            name=name,
            representative=representative,
            address=address,
            actor="cli",
        )
        payload = {
            "siret": establishment.siret,
            "siren": establishment.siret[:9],
            "head_office": establishment.head_office,
        }
    emit(
        as_json, payload, f"établissement {payload['siret']} enregistré (SIREN {payload['siren']})"
    )


@click.group("declarant")
def declarant() -> None:
    """Déclarants."""


def _read_password(password_stdin: bool) -> str:
    if not password_stdin:
        raise CommandError(
            "mot de passe manquant : passez-le sur l'entrée standard avec --password-stdin"
        )
    line = sys.stdin.readline()
    return line.removesuffix("\n")


@declarant.command("add")
@click.option("--siret", required=True, help="SIRET de l'établissement de rattachement.")
@click.option("--last-name", required=True, help="Nom.")
@click.option("--first-name", required=True, help="Prénom.")
@click.option("--email", help="Adresse électronique.")
@click.option("--admin", is_flag=True, help="Administrateur de l'entreprise.")
@click.option(
    "--password-stdin", is_flag=True, help="Lit le mot de passe (une ligne) sur l'entrée standard."
)
@json_option
def declarant_add(
    siret: str,
    last_name: str,
    first_name: str,
    email: str | None,
    admin: bool,
    password_stdin: bool,
    as_json: bool,
) -> None:
    """Crée un déclarant actif ; affiche son identifiant (sujet des jetons)."""
    password = _read_password(password_stdin)
    app = ready_app()
    with directory_session(app) as session:
        person = services.add_declarant(
            session,
            siret=siret,
            last_name=last_name,
            first_name=first_name,
            email=email,
            password=password,
            passwords=passwords(app),
            admin=admin,
            actor="cli",
        )
        payload = {
            "declarant_id": person.id,
            "siret": siret,
            "email": person.email,
            "role": "ADMINISTRATEUR" if admin else "MEMBRE",
        }
    emit(as_json, payload, person.id)


@declarant.command("edit")
@click.argument("declarant_id")
@click.option("--last-name", help="Nouveau nom.")
@click.option("--first-name", help="Nouveau prénom.")
@click.option("--email", help="Nouvelle adresse électronique (à faire vérifier par son titulaire).")
@json_option
def declarant_edit(
    declarant_id: str,
    last_name: str | None,
    first_name: str | None,
    email: str | None,
    as_json: bool,
) -> None:
    """Corrige le nom, le prénom ou l'adresse d'un déclarant ; les partenaires qui
    partagent un service avec lui en sont informés."""
    with directory_session() as session:
        changed = identity.edit(
            session,
            declarant_id=declarant_id,
            last_name=last_name,
            first_name=first_name,
            email=email,
        )
    payload = {"declarant_id": declarant_id, "changed": changed}
    text = (
        f"déclarant {declarant_id} modifié ({', '.join(changed)})"
        if changed
        else (f"déclarant {declarant_id} inchangé")
    )
    emit(as_json, payload, text)


@click.group("habilitation")
def habilitation() -> None:
    """Habilitations par établissement et service."""


def _habilitation_options(func: F) -> F:
    func = click.option(
        "--role", default="DECLARANT", show_default=True, help="DECLARANT ou CONSULTATION."
    )(func)
    func = click.option("--service", "service_code", required=True, help="Code du service.")(func)
    func = click.option("--siret", required=True, help="SIRET de l'établissement.")(func)
    func = click.option(
        "--declarant", "declarant_id", required=True, help="Identifiant du déclarant."
    )(func)
    return json_option(func)


@habilitation.command("grant")
@_habilitation_options
def habilitation_grant(
    declarant_id: str, siret: str, service_code: str, role: str, as_json: bool
) -> None:
    """Accorde une habilitation (sans doublon, même en concurrence)."""
    with directory_session() as session:
        result = services.grant_habilitation(
            session,
            declarant_id=declarant_id,
            siret=siret,
            service_code=service_code,
            role=role,
            actor="cli",
        )
    payload = {"habilitation_id": result.habilitation_id, "created": result.created}
    text = "habilitation accordée" if result.created else "habilitation déjà accordée"
    emit(
        as_json,
        payload,
        f"{text} ({declarant_id}, {siret}, {service_code.upper()}, {role.upper()})",
    )


@habilitation.command("revoke")
@_habilitation_options
def habilitation_revoke(
    declarant_id: str, siret: str, service_code: str, role: str, as_json: bool
) -> None:
    """Révoque une habilitation."""
    with directory_session() as session:
        habilitation_id = services.revoke_habilitation(
            session,
            declarant_id=declarant_id,
            siret=siret,
            service_code=service_code,
            role=role,
            actor="cli",
        )
    emit(
        as_json,
        {"habilitation_id": habilitation_id, "revoked": True},
        f"habilitation révoquée ({declarant_id}, {siret}, {service_code.upper()}, {role.upper()})",
    )


@click.group("service")
def service() -> None:
    """Services déclaratifs et leurs PAGM."""


@service.command("add")
@click.option("--code", required=True, help="Code du service (DSN, ATMP...).")
@click.option("--name", required=True, help="Libellé.")
@click.option("--partner", required=True, help="Organisme partenaire qui héberge le service.")
@click.option(
    "--pagm", multiple=True, help="RÔLE=CODE, par exemple DECLARANT=DSN_DECL (répétable)."
)
@click.option("--numeric-id", type=int, help="Identifiant numérique (clients machine).")
@click.option("--mission", help="Mission : social, fiscal, paie.")
@click.option("--identity-only", is_flag=True, help="Service d'identité seule (aucun PAGM).")
@json_option
def service_add(
    code: str,
    name: str,
    partner: str,
    pagm: tuple[str, ...],
    numeric_id: int | None,
    mission: str | None,
    identity_only: bool,
    as_json: bool,
) -> None:
    """Enregistre un service et ses codes PAGM par rôle."""
    with directory_session() as session:
        created = services.add_service(
            session,
            code=code,
            name=name,
            partner=partner,
            pagm=services.parse_pagm(pagm),
            numeric_id=numeric_id,
            mission=mission,
            identity_only=identity_only,
            actor="cli",
        )
        payload = {
            "code": created.code,
            "partner": created.partner_name,
            "pagm": {p.role: p.pagm for p in created.pagm},
        }
    emit(as_json, payload, f"service {payload['code']} enregistré ({payload['partner']})")


@service.command("pilot")
@click.option("--code", required=True, help="Code du service.")
@click.option("--siren", required=True, help="SIREN de l'entreprise pilote.")
@click.option("--remove", is_flag=True, help="Retire l'entreprise de la liste du pilote.")
@json_option
def service_pilot(code: str, siren: str, remove: bool, as_json: bool) -> None:
    """Ouvre un service pilote à une entreprise (le service passe à l'état pilote), ou
    l'en retire (--remove) : les autres ne le voient pas et n'en reçoivent aucun jeton."""
    with directory_session() as session:
        change = pilots.close_to if remove else pilots.open_to
        found = change(session, code=code, siren=siren, actor="cli")
        payload = {
            "code": found.code,
            "state": found.state,
            "companies": pilots.companies(session, found.code),
        }
    done = "retiré du" if remove else "ajouté au"
    emit(as_json, payload, f"SIREN {siren.strip()} {done} pilote {payload['code']}")


@click.group("mandate")
def mandate() -> None:
    """Mandats des cabinets comptables, CGA/AGA et concentrateurs DSN."""


@mandate.command("add")
@click.option("--client-siren", required=True, help="SIREN de l'entreprise cliente.")
@click.option("--firm-siren", required=True, help="SIREN du mandataire.")
@click.option(
    "--service", "service_codes", multiple=True, required=True, help="Service (répétable)."
)
@click.option(
    "--kind",
    type=click.Choice(lifecycle.KINDS),
    default="cabinet",
    show_default=True,
    help="Nature du mandataire.",
)
@click.option("--siret", "sirets", multiple=True, help="Établissement du client (répétable).")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="Début (AAAA-MM-JJ, UTC).")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), help="Fin, exclue (AAAA-MM-JJ, UTC).")
@json_option
def mandate_add(
    client_siren: str,
    firm_siren: str,
    service_codes: tuple[str, ...],
    kind: str,
    sirets: tuple[str, ...],
    start: datetime | None,
    end: datetime | None,
    as_json: bool,
) -> None:
    """Enregistre un mandat accepté d'une entreprise cliente à un mandataire."""
    with directory_session() as session:
        created = lifecycle.add_mandate(
            session,
            client_siren=client_siren,
            firm_siren=firm_siren,
            services=service_codes,
            actor="cli",
            kind=kind,
            establishments=sirets,
            starts_at=start.replace(tzinfo=UTC) if start else None,
            ends_at=end.replace(tzinfo=UTC) if end else None,
        )
        payload = {
            "mandate_id": created.id,
            "services": created.services,
            "kind": created.kind,
            "establishments": created.establishments,
        }
    emit(as_json, payload, f"mandat enregistré ({client_siren} -> {firm_siren})")


@mandate.command("sweep")
@json_option
def mandate_sweep(as_json: bool) -> None:
    """Clôt les mandats arrivés à leur date de fin et révoque leurs habilitations."""
    with directory_session() as session:
        revoked = lifecycle.sweep(session)
    emit(as_json, {"revoked": revoked}, f"{revoked} habilitation(s) révoquée(s)")


def register(cli: click.Group) -> None:
    for group in (company, declarant, habilitation, service, mandate):
        cli.add_command(group)
    from idp.cli import imports as cli_import

    cli.add_command(cli_import.import_group)
