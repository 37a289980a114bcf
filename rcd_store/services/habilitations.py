"""A declarant's rights (habilitations): granted and revoked one by one, revoked in bulk
(:func:`revoke_rights`, when a mandate ends or a person leaves), and the one definition of a
right in force (:func:`rights_counting`). Each change is audited in the caller's
transaction; the caller commits. Read through :mod:`rcd_store.services` as well."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from rcd_store import audit, services  # services: the look-ups, read when called
from rcd_store.db import rows_affected, upsert, utcnow
from rcd_store.errors import DirectoryError, NotFound
from rcd_store.mandates.rules import covering_mandate, moment, rights_in_force, rights_select
from rcd_store.models import (
    Declarant,
    Establishment,
    Habilitation,
    HabilitationRole,
    Role,
    Service,
)


def _role(value: str) -> str:
    role = value.strip().upper()
    if role not in HabilitationRole.__members__:
        raise DirectoryError(f"rôle inconnu : {value!r} (DECLARANT ou CONSULTATION)")
    return role


def _may_act_for(
    session: Session, declarant: Declarant, establishment: Establishment, service: Service
) -> tuple[bool, int | None]:
    """Whether the declarant holds a role in the establishment's company (no mandate
    needed), or in a firm holding a live mandate of that company covering ``service`` and
    the establishment (:func:`rcd_store.mandates.rules.covering_mandate`: its id)."""
    companies = set(
        session.scalars(select(Role.company_id).where(Role.declarant_id == declarant.id))
    )
    if establishment.company_id in companies:
        return True, None
    mandate = covering_mandate(session, companies, establishment, service)
    return mandate is not None, mandate.id if mandate else None


def _resolve(
    session: Session, declarant_id: str, siret: str, service_code: str, role: str
) -> tuple[Declarant, Establishment, Service, str]:
    """The four parts of a habilitation, each validated (NotFound / DirectoryError)."""
    return (
        services.get_declarant(session, declarant_id),
        services.establishment_by_siret(session, siret),
        services.get_service(session, service_code),
        _role(role),
    )


#: what a grant renews on a revoked row it brings back
_RENEWED = ("granted_by", "granted_at", "effective_at", "mandate_id")


@dataclass(frozen=True)
class GrantResult:
    habilitation_id: int
    created: bool


def grant_habilitation(
    session: Session,
    *,
    declarant_id: str,
    siret: str,
    service_code: str,
    role: str = "DECLARANT",
    actor: str | None = None,
    delay: timedelta | None = None,
) -> GrantResult:
    """Grant a habilitation; concurrent grants leave one row (unique constraint + ON CONFLICT).
    It takes effect after ``delay`` (by default the session's :func:`access_delay`)."""
    declarant, establishment, service, role = _resolve(
        session, declarant_id, siret, service_code, role
    )
    allowed, mandate_id = _may_act_for(session, declarant, establishment, service)
    if not allowed:
        raise DirectoryError(
            f"le déclarant {declarant.id} n'a aucun rôle dans l'entreprise {establishment.siret[:9]} "
            f"ni mandat pour elle sur le service {service.code}"
        )
    values: dict[str, Any] = {
        "declarant_id": declarant.id,
        "establishment_id": establishment.id,
        "service_id": service.id,
        "role": role,
        "granted_by": actor,
        "granted_at": utcnow(),
        "mandate_id": mandate_id,
    }
    values["effective_at"] = values["granted_at"] + (
        access_delay(session) if delay is None else delay
    )
    stmt = (
        upsert(session, Habilitation)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(Habilitation.id)
    )
    new_id: int | None = session.execute(stmt).scalar()
    if new_id is None:
        row = _habilitation_row(session, declarant.id, establishment.id, service.id, role)
        if row.revoked_at is None:
            return GrantResult(row.id, False)
        session.execute(
            update(Habilitation)
            .where(Habilitation.id == row.id)
            .values(revoked_at=None, revoked_by=None, **{k: values[k] for k in _RENEWED})
        )
        new_id = row.id
    audit.record(
        session,
        "habilitation.granted",
        actor=actor,
        target=declarant.id,
        data={"siret": establishment.siret, "service": service.code, "role": role},
    )
    return GrantResult(new_id, True)


#: ``Session.info`` key: seconds before a new habilitation takes effect (the web service
#: sets it from ``IDP_HABILITATION_DELAY_SECONDS``; 0 when absent)
ACCESS_DELAY = "habilitation_delay_seconds"


def access_delay(session: Session) -> timedelta:
    return timedelta(seconds=int(session.info.get(ACCESS_DELAY, 0)))


def _habilitation_row(
    session: Session, declarant_id: str, establishment_id: int, service_id: int, role: str
) -> Habilitation:
    stmt = select(Habilitation).where(
        Habilitation.declarant_id == declarant_id,
        Habilitation.establishment_id == establishment_id,
        Habilitation.service_id == service_id,
        Habilitation.role == role,
    )
    row = session.scalars(stmt).first()
    if row is None:
        raise NotFound("habilitation inexistante")
    return row


def revoke_habilitation(
    session: Session,
    *,
    declarant_id: str,
    siret: str,
    service_code: str,
    role: str = "DECLARANT",
    actor: str | None = None,
) -> int:
    """Revoke an active habilitation; an absent or already revoked one is an error."""
    declarant, establishment, service, role = _resolve(
        session, declarant_id, siret, service_code, role
    )
    row = _habilitation_row(session, declarant.id, establishment.id, service.id, role)
    result = session.execute(
        update(Habilitation)
        .where(Habilitation.id == row.id, Habilitation.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_by=actor)
    )
    if rows_affected(result) != 1:
        raise DirectoryError("habilitation déjà révoquée")
    audit.record(
        session,
        "habilitation.revoked",
        actor=actor,
        target=declarant.id,
        data={"siret": establishment.siret, "service": service.code, "role": role},
    )
    return row.id


def revoke_rights(
    session: Session,
    *,
    where: ColumnElement[bool],
    actor: str,
    now: datetime,
    data: dict[str, object],
) -> int:
    """Revoke the unrevoked habilitations matching ``where``; each revocation is audited
    as any other (``siret``, ``service``, ``role``) with ``data``. Returns how many."""
    rows = session.execute(rights_select().where(where, Habilitation.revoked_at.is_(None))).all()
    if not rows:
        return 0
    result = session.execute(
        update(Habilitation)
        .where(Habilitation.id.in_([r.id for r in rows]), Habilitation.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=actor)
        .execution_options(synchronize_session=False)
    )
    for row in rows:
        audit.record(
            session,
            "habilitation.revoked",
            actor=actor,
            target=row.declarant_id,
            data={"siret": row.siret, "service": row.code, "role": row.role}
            | {"habilitation": row.id, **data},
        )
    return rows_affected(result)


def rights_counting(now: datetime | None = None) -> ColumnElement[bool]:
    """SQL on a query of :class:`Habilitation` joined to its :class:`Service`: the right
    counts at ``now``: unrevoked, past its access delay (``effective_at``), on a service
    that is not closed, and obeying :func:`rcd_store.mandates.rules.rights_in_force` (a
    right under a mandate counts only while it lives; a pilot service only for the
    companies it is open to). The one definition of a right in force."""
    at = moment(now)
    return and_(
        Habilitation.revoked_at.is_(None),
        Service.state != "closed",
        or_(Habilitation.effective_at.is_(None), Habilitation.effective_at <= at),
        rights_in_force(at),
    )


def active_habilitations(
    session: Session, declarant_id: str, *, now: datetime | None = None
) -> list[Habilitation]:
    """The declarant's rights in force at ``now`` (:func:`rights_counting`). Every path
    that reads rights (dashboard, navigation, SAML, OpenID Connect, token exchange,
    machine login) goes through here."""
    stmt = (
        select(Habilitation)
        .join(Service, Service.id == Habilitation.service_id)
        .where(Habilitation.declarant_id == declarant_id, rights_counting(now))
        .order_by(Habilitation.id)
    )
    return list(session.scalars(stmt))
