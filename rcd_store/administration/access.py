"""Who may administer which company: the one check every administration path calls.

An administrator is an active declarant holding the ``ADMINISTRATEUR`` role in the
company. A suspended, locked or pending declarant administers nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from rcd_store.errors import DirectoryError
from rcd_store.models import Company, CompanyRole, Declarant, DeclarantStatus, Role


class Forbidden(DirectoryError):
    """The actor does not administer the company (or it does not exist: the same
    answer, so an id reveals nothing)."""

    http_status = 403


_REFUSED = "accès refusé : vous n'administrez pas cette entreprise"


def admin_company_ids(session: Session, declarant_id: str) -> set[int]:
    """The ids of the companies ``declarant_id`` administers (empty unless active)."""
    stmt = (
        select(Role.company_id)
        .join(Declarant, Declarant.id == Role.declarant_id)
        .where(
            Role.declarant_id == declarant_id,
            Role.role == CompanyRole.ADMINISTRATEUR.value,
            Declarant.status == DeclarantStatus.ACTIVE.value,
        )
    )
    return set(session.scalars(stmt))


def require_admin(session: Session, *, actor_id: str, company_id: int) -> Company:
    """The company ``actor_id`` administers, or :class:`Forbidden`."""
    if not isinstance(company_id, int) or not actor_id:
        raise Forbidden(_REFUSED)
    stmt = (
        select(Company)
        .join(Role, Role.company_id == Company.id)
        .join(Declarant, Declarant.id == Role.declarant_id)
        .where(
            Company.id == company_id,
            Role.declarant_id == actor_id,
            Role.role == CompanyRole.ADMINISTRATEUR.value,
            Declarant.status == DeclarantStatus.ACTIVE.value,
        )
    )
    company = session.scalars(stmt).first()
    if company is None:
        raise Forbidden(_REFUSED)
    return company
