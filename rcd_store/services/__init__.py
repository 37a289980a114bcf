"""Directory services: companies, establishments, declarants, services, rights (the rights
in :mod:`rcd_store.services.habilitations`, read through here as well).

Each function validates its input before it changes anything, records an audit
event in the same transaction, and raises a :class:`DirectoryError` (French
message) on bad input. The caller commits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rcd_store import audit
from rcd_store.errors import DirectoryError, Duplicate, NotFound
from rcd_store.identifiers import InvalidIdentifier, validate_siren, validate_siret
from rcd_store.mandates import lifecycle
from rcd_store.models import (
    Company,
    CompanyRole,
    Declarant,
    DeclarantStatus,
    Establishment,
    HabilitationRole,
    Mandate,
    Role,
    Service,
    ServicePagm,
    partner_key,
)
from rcd_store.names import clean_display_name, name_key
from rcd_store.passwords import PasswordPolicyError, PasswordService, check_policy

# the rights (rcd_store/services/habilitations.py), read through here too
from rcd_store.services.habilitations import ACCESS_DELAY as ACCESS_DELAY
from rcd_store.services.habilitations import GrantResult as GrantResult
from rcd_store.services.habilitations import access_delay as access_delay
from rcd_store.services.habilitations import active_habilitations as active_habilitations
from rcd_store.services.habilitations import grant_habilitation as grant_habilitation
from rcd_store.services.habilitations import revoke_habilitation as revoke_habilitation
from rcd_store.services.habilitations import revoke_rights as revoke_rights
from rcd_store.services.habilitations import rights_counting as rights_counting

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_SERVICE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,39}$")


def checked_email(value: str) -> str:
    """The address trimmed, or an error; syntax only (no DNS look-up)."""
    email = value.strip()
    if not _EMAIL.match(email) or ".." in email:
        raise DirectoryError(f"adresse électronique invalide : {value!r}")
    return email


def _siret(value: str) -> str:
    try:
        return validate_siret(value)
    except InvalidIdentifier as exc:
        raise DirectoryError(str(exc)) from None


def establishment_by_siret(session: Session, siret: str) -> Establishment:
    found = session.scalars(
        select(Establishment).where(Establishment.siret == _siret(siret))
    ).first()
    if found is None:
        raise NotFound(
            f"établissement inconnu : SIRET {siret} (ajoutez-le avec « idp company add »)"
        )
    return found


def get_declarant(session: Session, declarant_id: str) -> Declarant:
    found = session.get(Declarant, declarant_id) if declarant_id else None
    if found is None:
        raise NotFound(f"déclarant inconnu : {declarant_id!r}")
    return found


def get_service(session: Session, code: str) -> Service:
    found = session.scalars(select(Service).where(Service.code == code.strip().upper())).first()
    if found is None:
        raise NotFound(f"service inconnu : {code!r} (ajoutez-le avec « idp service add »)")
    return found


def _text(value: str | None, label: str, *, required: bool, limit: int = 200) -> str | None:
    cleaned = " ".join(value.split()) if value else ""
    if not cleaned:
        if required:
            raise DirectoryError(f"{label} manquant")
        return None
    if len(cleaned) > limit:
        raise DirectoryError(f"{label} trop long ({limit} caractères au plus)")
    return cleaned


def add_company(
    session: Session,
    *,
    siret: str,
    name: str,
    representative: str | None = None,
    address: str | None = None,
    actor: str | None = None,
) -> Establishment:
    """Register an establishment, and its company (by SIREN) if it is new.

    The first establishment of a company is its head office. A SIRET already
    registered is a :class:`Duplicate`.
    """
    siret = _siret(siret)
    company_name = _text(name, "raison sociale", required=True)
    address = _text(address, "adresse", required=False, limit=400)
    representative = _text(representative, "représentant légal", required=False)
    if session.scalars(select(Establishment.id).where(Establishment.siret == siret)).first():
        raise Duplicate(f"établissement déjà enregistré : SIRET {siret}")
    siren = validate_siren(siret[:9])
    company = session.scalars(select(Company).where(Company.siren == siren)).first()
    if company is None:
        company = Company(
            siren=siren, name=company_name, representative=representative, address=address
        )
        session.add(company)
        session.flush()
    establishment = Establishment(
        siret=siret, company_id=company.id, head_office=not company.establishments, address=address
    )
    session.add(establishment)
    session.flush()
    audit.record(
        session, "company.establishment_added", actor=actor, target=siret, data={"siren": siren}
    )
    return establishment


def add_declarant(
    session: Session,
    *,
    siret: str,
    last_name: str,
    first_name: str,
    email: str | None,
    password: str | None,
    passwords: PasswordService,
    admin: bool = False,
    actor: str | None = None,
) -> Declarant:
    """Create an active declarant attached to the establishment ``siret``.

    The declarant becomes ``ADMINISTRATEUR`` (``admin``) or ``MEMBRE`` of the
    company. The password must pass the policy; an email belongs to one
    declarant only.
    """
    establishment = establishment_by_siret(session, siret)
    last, first, email = _checked_identity(session, last_name, first_name, email)
    if password is None:
        raise DirectoryError("mot de passe manquant")
    try:
        check_policy(password, context=(last, first, email or ""))
    except PasswordPolicyError as exc:
        raise DirectoryError(str(exc)) from None
    declarant = Declarant(
        last_name=last,
        first_name=first,
        last_name_key=name_key(last),
        first_name_key=name_key(first),
        email=email,
        email_key=email.casefold() if email else None,
        home_establishment_id=establishment.id,
        password_hash=passwords.hash(password),
        status=DeclarantStatus.ACTIVE.value,
    )
    session.add(declarant)
    session.flush()
    role = CompanyRole.ADMINISTRATEUR if admin else CompanyRole.MEMBRE
    session.add(
        Role(declarant_id=declarant.id, company_id=establishment.company_id, role=role.value)
    )
    audit.record(
        session,
        "declarant.created",
        actor=actor,
        target=declarant.id,
        data={"siret": establishment.siret, "role": role.value},
    )
    return declarant


def _checked_identity(
    session: Session, last_name: str, first_name: str, email: str | None
) -> tuple[str, str, str | None]:
    """The names as they will be shown and the email checked, or a :class:`DirectoryError`
    (an email already used by another declarant is a :class:`Duplicate`)."""
    try:
        last, first = clean_display_name(last_name), clean_display_name(first_name)
    except ValueError as exc:
        raise DirectoryError(f"nom ou prénom invalide : {exc}") from None
    email = checked_email(email) if email else None
    if (
        email
        and session.scalars(
            select(Declarant.id).where(Declarant.email_key == email.casefold())
        ).first()
    ):
        raise Duplicate(f"adresse électronique déjà utilisée : {email}")
    return last, first, email


def parse_pagm(values: Sequence[str]) -> dict[str, str]:
    """``ROLE=PAGM`` pairs into a mapping; roles are DECLARANT or CONSULTATION."""
    result: dict[str, str] = {}
    for value in values:
        role, sep, pagm = value.partition("=")
        role = role.strip().upper()
        if not sep or not pagm.strip() or role not in HabilitationRole.__members__:
            raise DirectoryError(
                f"PAGM invalide : {value!r} (attendu RÔLE=CODE, rôle DECLARANT ou CONSULTATION)"
            )
        if role in result:
            raise DirectoryError(f"PAGM en double pour le rôle {role}")
        result[role] = pagm.strip()
    return result


def add_service(
    session: Session,
    *,
    code: str,
    name: str,
    partner: str | None,
    pagm: Mapping[str, str],
    mission: str | None = None,
    numeric_id: int | None = None,
    min_acr: str | None = None,
    identity_only: bool = False,
    actor: str | None = None,
) -> Service:
    """Register a service with its PAGM per habilitation role."""
    code = code.strip().upper()
    if not _SERVICE_CODE.match(code):
        raise DirectoryError(f"code de service invalide : {code!r} (lettres, chiffres, - et _)")
    label = _text(name, "nom du service", required=True)
    partner_name = _text(partner, "partenaire", required=False, limit=100)
    if not pagm and not identity_only:
        raise DirectoryError("au moins un PAGM est requis (--pagm DECLARANT=CODE)")
    if session.scalars(select(Service.id).where(Service.code == code)).first():
        raise Duplicate(f"service déjà enregistré : {code}")
    if (
        numeric_id is not None
        and session.scalars(select(Service.id).where(Service.numeric_id == numeric_id)).first()
    ):
        raise Duplicate(f"identifiant numérique déjà utilisé : {numeric_id}")
    service = Service(
        code=code,
        name=label,
        partner_name=partner_name,
        partner_key=partner_key(partner_name) if partner_name else None,
        mission=mission,
        numeric_id=numeric_id,
        min_acr=min_acr,
        identity_only=identity_only,
    )
    service.pagm = [ServicePagm(role=role, pagm=value) for role, value in sorted(pagm.items())]
    session.add(service)
    session.flush()
    audit.record(
        session,
        "service.added",
        actor=actor,
        target=code,
        data={"partner": partner_name, "pagm": dict(pagm)},
    )
    return service


def add_mandate(
    session: Session,
    *,
    client_siren: str,
    firm_siren: str,
    services: Sequence[str],
    actor: str | None = None,
) -> Mandate:
    """An accepted, open-ended mandate: the firm may act for the client on ``services``
    (:func:`rcd_store.mandates.lifecycle.add_mandate` takes kinds, establishments, dates)."""
    return lifecycle.add_mandate(
        session, client_siren=client_siren, firm_siren=firm_siren, services=services, actor=actor
    )


def check_password(
    session: Session, declarant: Declarant, password: str, *, passwords: PasswordService
) -> bool:
    """True when ``password`` is the declarant's; on success a hash made with other
    argon2id parameters is replaced by one with the current parameters (rehash on login)."""
    if not declarant.password_hash or not passwords.verify(declarant.password_hash, password):
        return False
    if passwords.needs_rehash(declarant.password_hash):
        session.execute(
            update(Declarant)
            .where(Declarant.id == declarant.id)
            .values(password_hash=passwords.hash(password))
        )
    return True
