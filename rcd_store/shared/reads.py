"""Paginated reads of the rights in force on a set of services, and of the
establishments and declarants they concern (each list: one count and one page).

A right counts as :func:`rcd_store.services.rights_counting` says (the one rule), so a
revoked right, a right past its mandate or on a pilot closed to the company is never
shown. Nothing outside the given services is reachable, by list or by id (stops an
organism reading declarants of services it does not share).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from rcd_store.administration.listing import Page, bounds
from rcd_store.errors import NotFound
from rcd_store.mandates.rules import rights_select
from rcd_store.models import Company, Declarant, Establishment, Habilitation, Service
from rcd_store.services import rights_counting


@dataclass(frozen=True)
class SharedRight:
    id: int
    declarant_id: str
    siret: str
    service: str
    role: str
    granted_at: datetime


@dataclass(frozen=True)
class SharedEstablishment:
    siret: str
    siren: str
    company_name: str
    head_office: bool
    active: bool


@dataclass(frozen=True)
class SharedDeclarant:
    id: str
    last_name: str
    first_name: str


def _counting(service_ids: Collection[int], now: datetime | None) -> Any:
    """SQL: a habilitation joined to its service, in force, on one of ``service_ids``."""
    return (Habilitation.service_id.in_(list(service_ids)), rights_counting(now))


def _paged(
    session: Session, stmt: Select[*tuple[Any, ...]], page: int, per_page: int
) -> tuple[list[Any], int]:
    page, per_page = bounds(page, per_page)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = list(session.execute(stmt.limit(per_page).offset((page - 1) * per_page)))
    return rows, int(total or 0)


def rights(
    session: Session,
    service_ids: Collection[int],
    *,
    page: int = 1,
    per_page: int = 50,
    service_code: str | None = None,
    siret: str | None = None,
    now: datetime | None = None,
) -> Page[SharedRight]:
    """The rights in force on ``service_ids`` (optionally one service, one SIRET)."""
    stmt = (
        rights_select(Habilitation.granted_at)
        .where(*_counting(service_ids, now))
        .order_by(Habilitation.id)
    )
    if service_code:
        stmt = stmt.where(Service.code == service_code)
    if siret:
        stmt = stmt.where(Establishment.siret == siret)
    rows, total = _paged(session, stmt, page, per_page)
    return Page([SharedRight(*row) for row in rows], *bounds(page, per_page), total)


def _any_right(service_ids: Collection[int], now: datetime | None, *where: Any) -> Any:
    return exists(
        select(Habilitation.id)
        .join(Service, Service.id == Habilitation.service_id)
        .where(*_counting(service_ids, now), *where)
    )


def establishments(
    session: Session,
    service_ids: Collection[int],
    *,
    page: int = 1,
    per_page: int = 50,
    now: datetime | None = None,
) -> Page[SharedEstablishment]:
    """The establishments where someone holds a right in force on ``service_ids``."""
    stmt = (
        select(
            Establishment.siret,
            Company.siren,
            Company.name,
            Establishment.head_office,
            Establishment.active,
        )
        .join(Company, Company.id == Establishment.company_id)
        .where(_any_right(service_ids, now, Habilitation.establishment_id == Establishment.id))
        .order_by(Establishment.siret)
    )
    rows, total = _paged(session, stmt, page, per_page)
    return Page([SharedEstablishment(*row) for row in rows], *bounds(page, per_page), total)


def _declarants_stmt(
    service_ids: Collection[int], now: datetime | None
) -> Select[*tuple[Any, ...]]:
    return select(Declarant.id, Declarant.last_name, Declarant.first_name).where(
        _any_right(service_ids, now, Habilitation.declarant_id == Declarant.id)
    )


def declarants(
    session: Session,
    service_ids: Collection[int],
    *,
    page: int = 1,
    per_page: int = 50,
    now: datetime | None = None,
) -> Page[SharedDeclarant]:
    """The declarants holding a right in force on ``service_ids``."""
    stmt = _declarants_stmt(service_ids, now).order_by(Declarant.id)
    rows, total = _paged(session, stmt, page, per_page)
    return Page([SharedDeclarant(*row) for row in rows], *bounds(page, per_page), total)


def declarant(
    session: Session,
    service_ids: Collection[int],
    declarant_id: str,
    *,
    now: datetime | None = None,
) -> SharedDeclarant:
    """One declarant holding a right in force on ``service_ids``, or :class:`NotFound`
    (the same answer for one who exists but holds none: an id reveals nothing)."""
    row = session.execute(
        _declarants_stmt(service_ids, now).where(Declarant.id == declarant_id)
    ).first()
    if row is None:
        raise NotFound("déclarant inconnu")
    return SharedDeclarant(*row)
