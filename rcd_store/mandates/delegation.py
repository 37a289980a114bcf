"""What administrators do with mandates, each act checked through
:func:`rcd_store.administration.access.require_admin` first (pages and JSON API alike).

- The client company's administrator grants a mandate and ends it.
- The mandataire's administrator habilitates its OWN declarants on the client's
  establishments, only within the mandate's services, establishments and dates, and
  revokes them; it may also renounce (end) the mandate.

A mandate is found by id only within the acting company (as client or as mandataire):
another company's mandate answers as an unknown one (stops reading by id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from rcd_store import services
from rcd_store.administration.access import Forbidden, require_admin
from rcd_store.administration.listing import Page, bounds
from rcd_store.administration.roles import locked_company
from rcd_store.errors import DirectoryError, NotFound
from rcd_store.mandates import lifecycle
from rcd_store.mandates.rules import covers, is_live, moment
from rcd_store.models import (
    Company,
    CompanyRole,
    Declarant,
    Establishment,
    Habilitation,
    Mandate,
    Role,
    Service,
)

Side = Literal["client", "firm"]
SIDES: tuple[Side, ...] = ("client", "firm")
_UNKNOWN = "mandat inconnu"


@dataclass(frozen=True)
class MandateRow:
    """A mandate as an administrator sees it."""

    id: int
    kind: str
    client_siren: str
    client_name: str
    firm_siren: str
    firm_name: str
    services: list[str]
    establishments: list[str]
    starts_at: datetime
    ends_at: datetime | None
    ended_at: datetime | None
    live: bool


def describe(mandate: Mandate, now: datetime | None = None) -> MandateRow:
    """The mandate as an administrator sees it (``live`` at ``now``)."""
    return _row(mandate, moment(now))


def _row(mandate: Mandate, now: datetime) -> MandateRow:
    return MandateRow(
        mandate.id,
        mandate.kind,
        mandate.client.siren,
        mandate.client.name,
        mandate.firm.siren,
        mandate.firm.name,
        list(mandate.services),
        list(mandate.establishments),
        mandate.starts_at,
        mandate.ends_at,
        mandate.ended_at,
        is_live(mandate, now),
    )


def _on_side(side: Side, company_id: int) -> ColumnElement[bool]:
    """SQL: the company is the mandate's client (``client``) or mandataire (``firm``)."""
    if side not in SIDES:
        raise DirectoryError("côté de mandat invalide (client ou firm)")
    column = Mandate.client_company_id if side == "client" else Mandate.firm_company_id
    return column == company_id


def list_mandates(
    session: Session,
    *,
    actor: str,
    company_id: int,
    side: Side,
    page: int = 1,
    per_page: int = 50,
    now: datetime | None = None,
) -> Page[MandateRow]:
    """The mandates the company granted (``client``) or received (``firm``), newest
    first, one page (two statements)."""
    require_admin(session, actor_id=actor, company_id=company_id)
    page, per_page = bounds(page, per_page)
    where = _on_side(side, company_id)
    total = session.scalar(select(func.count(Mandate.id)).where(where)) or 0
    rows = session.scalars(
        select(Mandate)
        .where(where)
        .order_by(Mandate.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    now = moment(now)
    return Page([_row(m, now) for m in rows], page, per_page, int(total))


def find(session: Session, *, actor: str, company_id: int, mandate_id: int, side: Side) -> Mandate:
    """The mandate ``mandate_id`` of which the actor's company is the ``side``, or
    :class:`NotFound` (the same answer for another company's mandate)."""
    require_admin(session, actor_id=actor, company_id=company_id)
    where = _on_side(side, company_id)
    if not isinstance(mandate_id, int) or not 0 < mandate_id < 2**31:
        raise NotFound(_UNKNOWN)
    found = session.scalars(select(Mandate).where(Mandate.id == mandate_id, where)).first()
    if found is None:
        raise NotFound(_UNKNOWN)
    return found


def grant(
    session: Session,
    *,
    actor: str,
    company_id: int,
    firm_siren: str,
    terms: lifecycle.Terms,
    now: datetime | None = None,
) -> Mandate:
    """The client company's administrator grants a mandate (validated whole, audited).
    The client's row is locked first, so that two grants at once to the same mandataire
    leave one mandate in course (the second sees the first)."""
    client = locked_company(session, actor=actor, company_id=company_id)
    return lifecycle.grant_mandate(
        session, client=client, firm_siren=firm_siren, terms=terms, actor=actor, now=now
    )


def end(
    session: Session,
    *,
    actor: str,
    company_id: int,
    mandate_id: int,
    side: Side = "client",
    now: datetime | None = None,
) -> int:
    """End the mandate (the client ends it, or the mandataire renounces it): every
    habilitation it carried is revoked in the same transaction; returns how many."""
    mandate = find(session, actor=actor, company_id=company_id, mandate_id=mandate_id, side=side)
    return lifecycle.end_mandate(session, mandate=mandate, actor=actor, now=now)


def _own_member(session: Session, firm_id: int, declarant_id: str) -> None:
    role = session.scalars(
        select(Role.role).where(Role.company_id == firm_id, Role.declarant_id == declarant_id)
    ).first()
    if role not in (CompanyRole.ADMINISTRATEUR.value, CompanyRole.MEMBRE.value):
        raise Forbidden("ce déclarant n'appartient pas à votre entreprise")


def _checked_scope(
    session: Session, mandate: Mandate, siret: str, service_code: str, now: datetime
) -> tuple[Establishment, Service]:
    if not is_live(mandate, now):
        raise Forbidden("ce mandat n'est pas en cours : aucune habilitation ne peut en naître")
    establishment = services.establishment_by_siret(session, siret)
    service = services.get_service(session, service_code)
    if establishment.company_id != mandate.client_company_id:
        raise Forbidden("cet établissement n'appartient pas à l'entreprise cliente")
    if not covers(mandate, establishment, service.code):
        raise Forbidden("le mandat ne couvre pas ce service sur cet établissement")
    return establishment, service


def habilitate(
    session: Session,
    *,
    actor: str,
    company_id: int,
    mandate_id: int,
    declarant_id: str,
    siret: str,
    service_code: str,
    role: str = "DECLARANT",
    now: datetime | None = None,
) -> services.GrantResult:
    """The mandataire's administrator habilitates one of its own declarants on an
    establishment of the client, within the live mandate's services and establishments
    (:class:`Forbidden` beyond them: stops a mandataire overreaching its mandate)."""
    mandate = find(session, actor=actor, company_id=company_id, mandate_id=mandate_id, side="firm")
    _own_member(session, company_id, declarant_id)
    establishment, service = _checked_scope(session, mandate, siret, service_code, moment(now))
    return services.grant_habilitation(
        session,
        declarant_id=declarant_id,
        siret=establishment.siret,
        service_code=service.code,
        role=role,
        actor=actor,
    )


def unhabilitate(
    session: Session, *, actor: str, company_id: int, mandate_id: int, habilitation_id: int
) -> None:
    """Revoke a habilitation granted under the mandate (by the mandataire's administrator,
    or the client's: either side of the mandate may)."""
    require_admin(session, actor_id=actor, company_id=company_id)
    stmt = select(Mandate).where(Mandate.id == mandate_id)
    mandate = session.scalars(stmt).first() if isinstance(mandate_id, int) else None
    if mandate is None or company_id not in (mandate.client_company_id, mandate.firm_company_id):
        raise NotFound(_UNKNOWN)
    where = and_(Habilitation.id == habilitation_id, Habilitation.mandate_id == mandate.id)
    data: dict[str, object] = {"mandate": mandate.id}
    revoked = services.revoke_rights(session, where=where, actor=actor, now=moment(None), data=data)
    if revoked != 1:
        raise NotFound("habilitation inconnue ou déjà révoquée sous ce mandat")


@dataclass(frozen=True)
class RightRow:
    id: int
    declarant_id: str
    last_name: str
    first_name: str
    siret: str
    service: str
    role: str


def rights_under(session: Session, mandate: Mandate, *, limit: int = 500) -> list[RightRow]:
    """The unrevoked habilitations granted under ``mandate`` (at most ``limit``)."""
    rows = session.execute(
        select(
            Habilitation.id,
            Declarant.id,
            Declarant.last_name,
            Declarant.first_name,
            Establishment.siret,
            Service.code,
            Habilitation.role,
        )
        .join(Declarant, Declarant.id == Habilitation.declarant_id)
        .join(Establishment, Establishment.id == Habilitation.establishment_id)
        .join(Service, Service.id == Habilitation.service_id)
        .where(Habilitation.mandate_id == mandate.id, Habilitation.revoked_at.is_(None))
        .order_by(Habilitation.id)
        .limit(limit)
    ).all()
    return [RightRow(*row) for row in rows]


def company_name(session: Session, company_id: int) -> str:
    """The company's name (for page titles)."""
    company = session.get(Company, company_id)
    if company is None:
        raise NotFound("entreprise inconnue")
    return company.name
