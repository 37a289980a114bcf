"""Who is an operator: grant, revoke and list the role, each change audited
(``operator.granted`` / ``operator.revoked``, the declarant as target)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.console.models import Operator
from rcd_store import audit
from rcd_store.db import rows_affected
from rcd_store.errors import Duplicate, NotFound
from rcd_store.models import Declarant, DeclarantStatus


@dataclass(frozen=True)
class Listed:
    declarant_id: str
    email: str | None
    granted_at: datetime
    granted_by: str


def is_operator(session: Session, declarant_id: str) -> bool:
    found = session.scalar(select(Operator.id).where(Operator.declarant_id == declarant_id))
    return found is not None


def _by_email(session: Session, email: str) -> Declarant:
    key = email.strip().casefold()
    found = session.scalars(select(Declarant).where(Declarant.email_key == key)).first()
    if found is None:
        raise NotFound(f"aucun déclarant avec l'adresse {email.strip()!r}")
    return found


def grant(session: Session, email: str, *, actor: str) -> Declarant:
    """Make the active declarant with this address an operator."""
    declarant = _by_email(session, email)
    if declarant.status != DeclarantStatus.ACTIVE.value:
        raise NotFound(f"le compte {email.strip()!r} n'est pas actif")
    if is_operator(session, declarant.id):
        raise Duplicate(f"{email.strip()} est déjà opérateur")
    session.add(Operator(declarant_id=declarant.id, granted_by=actor))
    session.flush()
    audit.record(session, "operator.granted", actor=actor, target=declarant.id)
    return declarant


def revoke(session: Session, email: str, *, actor: str) -> Declarant:
    """Withdraw the role; the console refuses the declarant from its next request."""
    declarant = _by_email(session, email)
    removed = session.execute(delete(Operator).where(Operator.declarant_id == declarant.id))
    if rows_affected(removed) == 0:
        raise NotFound(f"{email.strip()} n'est pas opérateur")
    audit.record(session, "operator.revoked", actor=actor, target=declarant.id)
    return declarant


def listed(session: Session) -> list[Listed]:
    rows = session.execute(
        select(Operator.declarant_id, Declarant.email, Operator.granted_at, Operator.granted_by)
        .join(Declarant, Declarant.id == Operator.declarant_id)
        .order_by(Declarant.email)
    )
    return [Listed(*row) for row in rows]
