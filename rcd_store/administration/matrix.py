"""The habilitation matrix: for one declarant, the establishments of a page (rows)
against the services and their roles (columns); for one establishment, the declarants
of a page against the same columns. Each view costs a bounded number of statements
whatever the company's size (the page's rows, the columns, the page's rights).

:func:`set_habilitations` applies the ticks an administrator changed, each through
:func:`rcd_store.services.grant_habilitation` / ``revoke_habilitation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from rcd_store import services
from rcd_store.administration.listing import (
    DeclarantRow,
    EstablishmentRow,
    Page,
    list_declarants,
    list_establishments,
)
from rcd_store.administration.roles import locked_company, member, record
from rcd_store.errors import DirectoryError, NotFound
from rcd_store.models import (
    Establishment,
    Habilitation,
    PilotCompany,
    Service,
    ServicePagm,
    ServiceState,
)

R = TypeVar("R")
MAX_CHANGES = 2000


@dataclass(frozen=True)
class Column:
    """A service and one of its roles (a role the service has a PAGM for)."""

    service_id: int
    code: str
    name: str
    role: str


@dataclass(frozen=True)
class Matrix(Generic[R]):
    """Rows of a page, columns, and the (row id, service id, role) ticked."""

    rows: Page[R]
    columns: list[Column]
    granted: frozenset[tuple[str, int, str]]

    def has(self, row_id: object, column: Column) -> bool:
        return (str(row_id), column.service_id, column.role) in self.granted


def columns(session: Session, company_id: int) -> list[Column]:
    """Every service open to the company's habilitations (not closed, not identity-only;
    a pilot service only when its pilot is open to the company), by each role it has a
    PAGM for; in code order."""
    pilot_open = exists(
        select(PilotCompany.id).where(
            PilotCompany.service_id == Service.id, PilotCompany.company_id == company_id
        )
    )
    rows = session.execute(
        select(Service.id, Service.code, Service.name, ServicePagm.role)
        .join(ServicePagm, ServicePagm.service_id == Service.id)
        .where(
            Service.state != ServiceState.CLOSED.value,
            Service.identity_only.is_(False),
            or_(Service.state != ServiceState.PILOT.value, pilot_open),
        )
        .order_by(Service.code, ServicePagm.role)
    )
    return [Column(*row) for row in rows]


def _establishment(session: Session, company_id: int, establishment_id: int) -> Establishment:
    found = (
        session.get(Establishment, establishment_id) if isinstance(establishment_id, int) else None
    )
    if found is None or found.company_id != company_id:
        raise NotFound("établissement inconnu dans cette entreprise")
    return found


def declarant_matrix(
    session: Session,
    company_id: int,
    *,
    declarant_id: str,
    query: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Matrix[EstablishmentRow]:
    """One declarant's rights on a page of the company's establishments."""
    member(session, company_id, declarant_id)
    rows = list_establishments(session, company_id, query=query, page=page, per_page=per_page)
    ids = [row.id for row in rows.items]
    found = session.execute(
        select(Habilitation.establishment_id, Habilitation.service_id, Habilitation.role).where(
            Habilitation.declarant_id == declarant_id,
            Habilitation.establishment_id.in_(ids),
            Habilitation.revoked_at.is_(None),
        )
    )
    granted = frozenset((str(e), s, r) for e, s, r in found)
    return Matrix(rows, columns(session, company_id), granted)


def establishment_matrix(
    session: Session,
    company_id: int,
    *,
    establishment_id: int,
    query: str | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[Establishment, Matrix[DeclarantRow]]:
    """A page of the company's declarants and their rights on one establishment."""
    place = _establishment(session, company_id, establishment_id)
    rows = list_declarants(
        session, company_id, query=query, status=status, page=page, per_page=per_page
    )
    ids = [row.id for row in rows.items]
    found = session.execute(
        select(Habilitation.declarant_id, Habilitation.service_id, Habilitation.role).where(
            Habilitation.establishment_id == place.id,
            Habilitation.declarant_id.in_(ids),
            Habilitation.revoked_at.is_(None),
        )
    )
    granted = frozenset((d, s, r) for d, s, r in found)
    return place, Matrix(rows, columns(session, company_id), granted)


@dataclass(frozen=True)
class Change:
    """Whether the declarant should hold ``role`` on ``service_code`` at ``siret``."""

    siret: str
    service_code: str
    role: str
    granted: bool


def _current(
    session: Session, company_id: int, declarant_id: str, changes: Sequence[Change]
) -> set[tuple[str, str, str]]:
    """The (siret, service code, role) the declarant holds now among ``changes``; every
    SIRET must be one of the company's."""
    sirets = {change.siret for change in changes}
    known = set(
        session.scalars(
            select(Establishment.siret).where(
                Establishment.company_id == company_id, Establishment.siret.in_(sirets)
            )
        )
    )
    if sirets - known:
        raise NotFound("établissement inconnu dans cette entreprise")
    held = session.execute(
        select(Establishment.siret, Service.code, Habilitation.role)
        .join(Establishment, Establishment.id == Habilitation.establishment_id)
        .join(Service, Service.id == Habilitation.service_id)
        .where(
            Habilitation.declarant_id == declarant_id,
            Habilitation.revoked_at.is_(None),
            Establishment.siret.in_(sirets),
        )
    )
    return {(siret, code, role) for siret, code, role in held}


def _checked(changes: Sequence[Change], allowed: set[tuple[str, str]]) -> list[Change]:
    if len(changes) > MAX_CHANGES:
        raise DirectoryError(f"trop de changements à la fois ({MAX_CHANGES} au plus)")
    for change in changes:
        if (change.service_code, change.role) not in allowed:
            raise DirectoryError(
                f"service ou rôle inconnu : {change.service_code} {change.role}"[:200]
            )
    return list(changes)


def set_habilitations(
    session: Session,
    *,
    company_id: int,
    actor: str,
    declarant_id: str,
    changes: Sequence[Change],
    address: str | None = None,
) -> int:
    """Make the declarant's rights match ``changes`` (establishments of the company,
    services and roles of :func:`columns`); returns how many rights changed. Any bad
    item refuses the whole change."""
    company = locked_company(session, actor=actor, company_id=company_id)
    _, declarant = member(session, company.id, declarant_id)
    wanted = _checked(changes, {(c.code, c.role) for c in columns(session, company.id)})
    held = _current(session, company.id, declarant.id, wanted) if wanted else set()
    done: list[str] = []
    for change in wanted:
        key = (change.siret, change.service_code, change.role)
        if change.granted == (key in held):
            continue
        step = services.grant_habilitation if change.granted else services.revoke_habilitation
        step(
            session,
            declarant_id=declarant.id,
            siret=change.siret,
            service_code=change.service_code,
            role=change.role,
            actor=actor,
        )
        held.symmetric_difference_update({key})
        done.append(("+" if change.granted else "-") + " ".join(key))
    if done:
        record(
            session,
            "admin.habilitations_changed",
            actor,
            declarant.id,
            company,
            address,
            changes=done,
        )
    return len(done)
