"""An administrator suspends, reactivates or removes a declarant of the company, and
names, hands over or removes administrators. Each function locks the company, checks
the actor (:mod:`.roles`), validates, audits, and raises a French
:class:`~rcd_store.errors.DirectoryError` with nothing changed. The caller commits.

A suspended declarant (status ``disabled``) can neither log in nor be asserted by a
partner nor obtain a token on any path: every one of them asks for an active declarant.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from rcd_store.administration.roles import keep_an_admin, locked_company, member, record
from rcd_store.db import utcnow
from rcd_store.enrolment import codes
from rcd_store.errors import DirectoryError
from rcd_store.identity import change_names
from rcd_store.models import (
    Company,
    CompanyRole,
    Declarant,
    DeclarantStatus,
    Establishment,
    Habilitation,
    Role,
)
from rcd_store.services.habilitations import revoke_rights

INVITATION = "invitation"


def _not_self(actor: str, declarant_id: str, what: str) -> None:
    if actor == declarant_id:
        raise DirectoryError(f"vous ne pouvez pas vous {what} vous-même")


def _elsewhere(session: Session, declarant_id: str, company_id: int) -> bool:
    """Whether the declarant also belongs to another company."""
    others = select(Role.company_id).where(
        Role.declarant_id == declarant_id, Role.company_id != company_id
    )
    return session.scalars(others).first() is not None


def suspend_declarant(
    session: Session, *, company_id: int, declarant_id: str, actor: str, address: str | None = None
) -> None:
    """Suspend an active declarant of the company. A declarant who also belongs to a
    company the actor does not administer is refused (remove them from this one)."""
    company = locked_company(session, actor=actor, company_id=company_id)
    role, declarant = member(session, company.id, declarant_id)
    _not_self(actor, declarant.id, "suspendre")
    if declarant.status != DeclarantStatus.ACTIVE.value:
        raise DirectoryError("ce déclarant n'est pas actif : il ne peut pas être suspendu")
    if _elsewhere(session, declarant.id, company.id):
        raise DirectoryError(
            "ce déclarant appartient aussi à une autre entreprise : "
            "retirez-le de la vôtre plutôt que de le suspendre"
        )
    if role.role == CompanyRole.ADMINISTRATEUR.value:
        keep_an_admin(session, company.id, declarant.id)
    declarant.status = DeclarantStatus.DISABLED.value
    session.flush()
    record(session, "admin.declarant_suspended", actor, declarant.id, company, address)


def reactivate_declarant(
    session: Session, *, company_id: int, declarant_id: str, actor: str, address: str | None = None
) -> None:
    """Give a suspended declarant of the company back their access."""
    company = locked_company(session, actor=actor, company_id=company_id)
    _, declarant = member(session, company.id, declarant_id)
    if declarant.status != DeclarantStatus.DISABLED.value:
        raise DirectoryError("ce déclarant n'est pas suspendu")
    declarant.status = DeclarantStatus.ACTIVE.value
    session.flush()
    record(session, "admin.declarant_reactivated", actor, declarant.id, company, address)


def remove_declarant(
    session: Session, *, company_id: int, declarant_id: str, actor: str, address: str | None = None
) -> None:
    """Take the declarant out of the company: their role goes, and their habilitations on
    the company's establishments are revoked. An invitee who never accepted and belongs
    nowhere else is deleted (their invitation link dies with them)."""
    company = locked_company(session, actor=actor, company_id=company_id)
    role, declarant = member(session, company.id, declarant_id)
    _not_self(actor, declarant.id, "retirer")
    if role.role == CompanyRole.ADMINISTRATEUR.value:
        keep_an_admin(session, company.id, declarant.id)
    own = select(Establishment.id).where(Establishment.company_id == company.id)
    revoked = revoke_rights(  # each right audited (and told to partners) as any other
        session,
        where=(Habilitation.declarant_id == declarant.id) & Habilitation.establishment_id.in_(own),
        actor=actor,
        now=utcnow(),
        data={"reason": "removed"},
    )
    session.delete(role)
    session.flush()
    remaining = session.scalars(select(Role.id).where(Role.declarant_id == declarant.id)).first()
    pending = declarant.status == DeclarantStatus.PENDING.value and remaining is None
    if pending:
        codes.void(session, purpose=INVITATION, subject=declarant.id)
        session.execute(delete(Declarant).where(Declarant.id == declarant.id))
    record(
        session,
        "admin.declarant_removed",
        actor,
        declarant.id,
        company,
        address,
        habilitations_revoked=revoked,
        invitation_withdrawn=pending,
    )


def correct_names(
    session: Session,
    *,
    company_id: int,
    declarant_id: str,
    actor: str,
    last_name: str,
    first_name: str,
    address: str | None = None,
) -> list[str]:
    """Correct the names of a declarant of the company (an identity change, told to the
    partners sharing a service with them); the claims that changed. A declarant who also
    belongs to another company is refused: their identity is not this company's alone."""
    company = locked_company(session, actor=actor, company_id=company_id)
    _, declarant = member(session, company.id, declarant_id)
    if _elsewhere(session, declarant.id, company.id):
        raise DirectoryError(
            "ce déclarant appartient aussi à une autre entreprise : "
            "lui seul peut corriger son nom, depuis son profil"
        )
    return change_names(
        session,
        declarant_id=declarant.id,
        last_name=last_name,
        first_name=first_name,
        actor=actor,
        siren=company.siren,
        address=address,
    )


def _promote(session: Session, company: Company, declarant_id: str) -> Declarant:
    role, declarant = member(session, company.id, declarant_id)
    if role.role == CompanyRole.ADMINISTRATEUR.value:
        raise DirectoryError("ce déclarant est déjà administrateur")
    if role.role != CompanyRole.MEMBRE.value:
        raise DirectoryError("seul un membre de l'entreprise peut devenir administrateur ici")
    if declarant.status != DeclarantStatus.ACTIVE.value:
        raise DirectoryError("seul un déclarant actif peut devenir administrateur")
    role.role = CompanyRole.ADMINISTRATEUR.value
    return declarant


def add_admin(
    session: Session, *, company_id: int, declarant_id: str, actor: str, address: str | None = None
) -> None:
    """Make an active member of the company one of its administrators."""
    company = locked_company(session, actor=actor, company_id=company_id)
    declarant = _promote(session, company, declarant_id)
    session.flush()
    record(session, "admin.administrator_added", actor, declarant.id, company, address)


def remove_admin(
    session: Session, *, company_id: int, declarant_id: str, actor: str, address: str | None = None
) -> None:
    """An administrator becomes a plain member (the actor may step down), unless the
    company would be left without an active administrator."""
    company = locked_company(session, actor=actor, company_id=company_id)
    role, declarant = member(session, company.id, declarant_id)
    if role.role != CompanyRole.ADMINISTRATEUR.value:
        raise DirectoryError("ce déclarant n'est pas administrateur")
    keep_an_admin(session, company.id, declarant.id)
    role.role = CompanyRole.MEMBRE.value
    session.flush()
    record(session, "admin.administrator_removed", actor, declarant.id, company, address)


def hand_over(
    session: Session, *, company_id: int, declarant_id: str, actor: str, address: str | None = None
) -> None:
    """The actor hands the administration over: the declarant becomes administrator and
    the actor a plain member, in one transaction."""
    company = locked_company(session, actor=actor, company_id=company_id)
    _not_self(actor, declarant_id, "transmettre l'administration à")
    declarant = _promote(session, company, declarant_id)
    mine, _ = member(session, company.id, actor)
    mine.role = CompanyRole.MEMBRE.value
    session.flush()
    record(session, "admin.handed_over", actor, declarant.id, company, address)
