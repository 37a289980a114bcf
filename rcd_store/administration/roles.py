"""The rules every change of the administration shares: the company locked while it
changes, the actor checked after the lock, the target found within the company, and
the company never left without an active administrator.

Two administrators removing each other at once: each change locks the company's row
first (``SELECT ... FOR UPDATE``; on SQLite a no-op write that takes its write lock), then checks the
actor is still an administrator and counts who would remain. The second one waits,
then finds it no longer administers the company: one administrator remains.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from rcd_store import audit
from rcd_store.administration.access import require_admin
from rcd_store.errors import DirectoryError, NotFound
from rcd_store.models import Company, CompanyRole, Declarant, DeclarantStatus, Role

LAST_ADMIN = (
    "une entreprise garde toujours au moins un administrateur actif : nommez-en un autre avant"
)


def locked_company(session: Session, *, actor: str, company_id: int) -> Company:
    """Lock the company's row for this transaction, then check ``actor`` administers it."""
    if isinstance(company_id, int):
        if session.get_bind().dialect.name == "sqlite":
            # SQLite ignores FOR UPDATE: a no-op write takes the database's write lock
            # before anything is read, so the next writer waits and then reads afresh
            session.execute(update(Company).where(Company.id == company_id).values(id=Company.id))
        else:
            session.execute(select(Company.id).where(Company.id == company_id).with_for_update())
    return require_admin(session, actor_id=actor, company_id=company_id)


def member(session: Session, company_id: int, declarant_id: str) -> tuple[Role, Declarant]:
    """The declarant's role in the company and the declarant, or :class:`NotFound` (one
    answer for an unknown id and a declarant of another company)."""
    found = (
        session.execute(
            select(Role, Declarant)
            .join(Declarant, Declarant.id == Role.declarant_id)
            .where(Role.company_id == company_id, Role.declarant_id == declarant_id)
        ).first()
        if isinstance(declarant_id, str) and declarant_id
        else None
    )
    if found is None:
        raise NotFound("déclarant inconnu dans cette entreprise")
    return found[0], found[1]


def active_admins(session: Session, company_id: int, *, excluding: str | None = None) -> int:
    """How many active administrators the company has (without ``excluding``)."""
    stmt = (
        select(func.count())
        .select_from(Role)
        .join(Declarant, Declarant.id == Role.declarant_id)
        .where(
            Role.company_id == company_id,
            Role.role == CompanyRole.ADMINISTRATEUR.value,
            Declarant.status == DeclarantStatus.ACTIVE.value,
        )
    )
    if excluding is not None:
        stmt = stmt.where(Role.declarant_id != excluding)
    return int(session.scalar(stmt) or 0)


def keep_an_admin(session: Session, company_id: int, losing: str) -> None:
    """Refuse a change that would leave the company without an active administrator
    (``losing`` stops being one)."""
    if active_admins(session, company_id, excluding=losing) < 1:
        raise DirectoryError(LAST_ADMIN)


def record(
    session: Session,
    kind: str,
    actor: str,
    target: str,
    company: Company,
    address: str | None,
    **data: Any,
) -> None:
    """Audit an administration change: who, for whom, what, in which company, from where."""
    audit.record(
        session,
        kind,
        actor=actor,
        target=target,
        data={"siren": company.siren, "address": address, **data},
    )
