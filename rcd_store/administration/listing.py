"""Paginated, searchable lists of a company's establishments and declarants.

Each list costs two statements whatever the company's size: one count, one page
(offset pagination over an index: ``ix_establishment_company_siret`` for the
establishments, the role's company index for the declarants). Searches are prefix
matches on indexed keys (SIRET, name keys, email) or a substring of the address
(the city is part of it), always within the one company.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from rcd_store.errors import DirectoryError
from rcd_store.models import Declarant, DeclarantStatus, Establishment, Role
from rcd_store.names import name_key

T = TypeVar("T")

MAX_PER_PAGE = 200
MAX_QUERY = 100
#: statuses an administrator filters on
STATUSES = tuple(status.value for status in DeclarantStatus)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, where it is, how many in all."""

    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


@dataclass(frozen=True)
class EstablishmentRow:
    id: int
    siret: str
    address: str | None
    head_office: bool
    active: bool


@dataclass(frozen=True)
class DeclarantRow:
    id: str
    last_name: str
    first_name: str
    email: str | None
    status: str
    role: str


def bounds(page: int, per_page: int) -> tuple[int, int]:
    """``page`` and ``per_page`` checked (positive, at most :data:`MAX_PER_PAGE` a page)."""
    if not isinstance(page, int) or not isinstance(per_page, int):
        raise DirectoryError("numéro de page invalide")
    if page < 1 or page > 1_000_000:
        raise DirectoryError("numéro de page invalide")
    if per_page < 1 or per_page > MAX_PER_PAGE:
        raise DirectoryError(f"taille de page invalide (de 1 à {MAX_PER_PAGE})")
    return page, per_page


def search_text(query: str | None) -> str:
    """The search typed, trimmed; too long is refused."""
    cleaned = " ".join((query or "").split())
    if len(cleaned) > MAX_QUERY:
        raise DirectoryError(f"recherche trop longue ({MAX_QUERY} caractères au plus)")
    return cleaned


def _like(text: str) -> str:
    """``text`` with LIKE's wildcards escaped (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _paged(
    session: Session, stmt: Select[*tuple[Any, ...]], page: int, per_page: int
) -> tuple[list[Any], int]:
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = list(session.execute(stmt.limit(per_page).offset((page - 1) * per_page)))
    return rows, int(total or 0)


def establishments_query(company_id: int, query: str) -> Select[*tuple[Any, ...]]:
    """The company's establishments matching ``query`` (SIRET prefix, or address
    substring), in SIRET order."""
    stmt = select(
        Establishment.id,
        Establishment.siret,
        Establishment.address,
        Establishment.head_office,
        Establishment.active,
    ).where(Establishment.company_id == company_id)
    digits = query.replace(" ", "")
    if digits.isdigit():
        stmt = stmt.where(Establishment.siret.like(_like(digits[:14]) + "%", escape="\\"))
    elif query:
        stmt = stmt.where(Establishment.address.ilike("%" + _like(query) + "%", escape="\\"))
    return stmt.order_by(Establishment.siret)


def list_establishments(
    session: Session,
    company_id: int,
    *,
    query: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[EstablishmentRow]:
    """One page of the company's establishments (the caller checked the actor with
    :func:`~rcd_store.administration.access.require_admin`)."""
    page, per_page = bounds(page, per_page)
    stmt = establishments_query(company_id, search_text(query))
    rows, total = _paged(session, stmt, page, per_page)
    return Page([EstablishmentRow(*row) for row in rows], page, per_page, total)


def declarants_query(company_id: int, query: str, status: str | None) -> Select[*tuple[Any, ...]]:
    """The company's declarants (any role) matching ``query`` (a name's start, or an
    email's start) and ``status``, in name order."""
    stmt = (
        select(
            Declarant.id,
            Declarant.last_name,
            Declarant.first_name,
            Declarant.email,
            Declarant.status,
            Role.role,
        )
        .join(Role, Role.declarant_id == Declarant.id)
        .where(Role.company_id == company_id)
    )
    if status:
        if status not in STATUSES:
            raise DirectoryError(f"statut inconnu : {status!r}")
        stmt = stmt.where(Declarant.status == status)
    if "@" in query:
        stmt = stmt.where(Declarant.email_key.like(_like(query.casefold()) + "%", escape="\\"))
    elif query:
        key = _like(name_key(query)) + "%"
        stmt = stmt.where(
            or_(
                Declarant.last_name_key.like(key, escape="\\"),
                Declarant.first_name_key.like(key, escape="\\"),
            )
        )
    return stmt.order_by(Declarant.last_name_key, Declarant.first_name_key, Declarant.id)


def list_declarants(
    session: Session,
    company_id: int,
    *,
    query: str | None = None,
    status: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[DeclarantRow]:
    """One page of the company's declarants (the caller checked the actor)."""
    page, per_page = bounds(page, per_page)
    stmt = declarants_query(company_id, search_text(query), status or None)
    rows, total = _paged(session, stmt, page, per_page)
    return Page([DeclarantRow(*row) for row in rows], page, per_page, total)
