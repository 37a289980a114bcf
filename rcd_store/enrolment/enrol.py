"""A person enrols their company: candidate administrator, then administrator.

1. :func:`start_enrolment`: SIRET (checked, then a known establishment or SIRENE data),
   identity, email, password; a pending account and a 24-hour verification link.
2. :func:`verify_email` (the link, once): the account is active and ``CANDIDAT_AD`` of the
   company; the legal representative's letter gets an activation code, an objection code
   and an objection link, valid 30 days (:class:`Letter`).
3. :func:`activate` (the code, by the candidate logged in) or :func:`co_opt` (an existing
   administrator): the candidate becomes ``ADMINISTRATEUR``.
4. :mod:`rcd_store.enrolment.objection`: the legal representative refuses the candidate or
   removes the administrator they did not want.

A company with an administrator, or with an enrolment under way (verification link
still valid, or a candidate), cannot be enrolled again: its people ask to join it.
Each step is audited, people named by declarant id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from rcd_store.administration.access import require_admin
from rcd_store.db import utcnow
from rcd_store.enrolment import codes
from rcd_store.enrolment.models import Enrolment
from rcd_store.enrolment.people import (
    EMAIL_PENDING,
    VERIFY_LIFETIME,
    Identity,
    Pending,
    administrators,
    company_of,
    new_pending_declarant,
    open_request,
    record,
    review,
    set_role,
)
from rcd_store.errors import DirectoryError, Duplicate
from rcd_store.models import (
    Company,
    CompanyRole,
    Declarant,
    DeclarantStatus,
    Establishment,
    Role,
)
from rcd_store.passwords import PasswordService

LETTER_LIFETIME = timedelta(days=30)
#: a candidacy lasts as long as its letter's codes (its link verified within a day)
CANDIDACY = LETTER_LIFETIME + VERIFY_LIFETIME
ACTIVATION = "activation"
OBJECTION = "objection"
PREFIX = "enrolment:"


class EnrolmentStatus:
    EMAIL_PENDING = EMAIL_PENDING
    CANDIDATE = "candidate"
    ADMINISTRATOR = "administrator"
    REFUSED = "refused"
    REMOVED = "removed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Letter:
    """What the legal representative's letter carries (secrets in clear, for the letter
    only) and to whom it goes."""

    enrolment_id: int
    company: Company
    candidate: Declarant
    activation_code: str
    objection_code: str
    objection_link: str
    recipient: str


def _under_way(session: Session, company_id: int) -> bool:
    """An enrolment of the company whose link is still valid, or a candidate."""
    fresh = utcnow() - VERIFY_LIFETIME
    return (
        session.scalars(
            select(Enrolment.id).where(
                Enrolment.company_id == company_id,
                Enrolment.declarant_id.is_not(None),
                or_(
                    (Enrolment.status == EnrolmentStatus.CANDIDATE)
                    & (Enrolment.created_at > utcnow() - CANDIDACY),
                    (Enrolment.status == EnrolmentStatus.EMAIL_PENDING)
                    & (Enrolment.created_at > fresh),
                ),
            )
        ).first()
        is not None
    )


def _open_to_enrolment(session: Session, establishment: Establishment) -> None:
    if administrators(session, establishment.company_id):
        raise Duplicate(
            "cette entreprise est déjà inscrite : demandez à la rejoindre "
            "(« Rejoindre mon entreprise »)"
        )
    if _under_way(session, establishment.company_id):
        raise Duplicate(
            "une inscription de cette entreprise est déjà en cours : son représentant légal "
            "a reçu ou va recevoir un courrier"
        )


def start_enrolment(
    session: Session, *, siret: str, who: Identity, passwords: PasswordService
) -> Pending:
    """Step 1: a pending account and enrolment, and the verification link (in clear)."""
    checked = review(session, siret, who, lambda found: _open_to_enrolment(session, found))
    declarant = new_pending_declarant(session, checked, who, passwords)
    establishment = checked.establishment
    assert establishment is not None
    return open_request(
        session,
        Enrolment,
        prefix=PREFIX,
        event="enrolment.started",
        declarant=declarant,
        establishment=establishment,
    )


def representative_address(company: Company, establishment: Establishment) -> str:
    """The letter's recipient: the legal representative at the company's postal address
    (the head office's, or the establishment's when the company has none)."""
    address = company.address or establishment.address
    if not address:
        raise DirectoryError(
            f"adresse postale inconnue pour l'entreprise {company.siren} : le courrier au "
            "représentant légal ne peut pas partir"
        )
    name = company.representative or "Représentant légal"
    return f"{name}\n{company.name}\n{address}"


def _retire_stale_candidates(session: Session, company_id: int) -> None:
    """Candidates whose letter expired unused make way for a new enrolment: their role
    goes, their enrolment ends as expired (a live one would have refused this one)."""
    for enrolment, declarant in candidates(session, company_id):
        session.execute(
            delete(Role).where(Role.declarant_id == declarant.id, Role.company_id == company_id)
        )
        enrolment.status, enrolment.decided_at = EnrolmentStatus.EXPIRED, utcnow()
        record(
            session, "enrolment.expired", actor=None, target=declarant.id, enrolment=enrolment.id
        )


def become_candidate(session: Session, enrolment: Enrolment) -> Letter:
    """Step 2, after the link: candidate administrator, and the letter's codes."""
    declarant = session.get(Declarant, enrolment.declarant_id or "")
    establishment = session.get(Establishment, enrolment.establishment_id)
    if declarant is None or establishment is None:
        raise codes.InvalidCode("cette inscription n'existe plus : recommencez-la")
    company = company_of(session, establishment)
    if administrators(session, company.id):
        raise Duplicate("cette entreprise a été inscrite entre-temps : demandez à la rejoindre")
    recipient = representative_address(company, establishment)
    _retire_stale_candidates(session, company.id)
    declarant.status = DeclarantStatus.ACTIVE.value
    declarant.email_verified = True
    set_role(
        session, declarant_id=declarant.id, company_id=company.id, role=CompanyRole.CANDIDAT_AD
    )
    enrolment.status = EnrolmentStatus.CANDIDATE
    subject = str(enrolment.id)
    letter = Letter(
        enrolment_id=enrolment.id,
        company=company,
        candidate=declarant,
        activation_code=codes.issue(
            session, purpose=ACTIVATION, subject=subject, lifetime=LETTER_LIFETIME, kind="code"
        ),
        objection_code=codes.issue(
            session, purpose=OBJECTION, subject=subject, lifetime=LETTER_LIFETIME, kind="code"
        ),
        # a code too (80 bits), so that the printed link fits on one line of the letter
        objection_link=codes.issue(
            session, purpose=OBJECTION, subject=subject, lifetime=LETTER_LIFETIME, kind="code"
        ),
        recipient=recipient,
    )
    record(
        session,
        "enrolment.candidate",
        actor=declarant.id,
        target=company.siren,
        enrolment=enrolment.id,
        role=CompanyRole.CANDIDAT_AD.value,
    )
    return letter


def _promote(session: Session, enrolment: Enrolment, *, actor: str, how: str) -> Company:
    company = session.get(Company, enrolment.company_id)
    assert company is not None and enrolment.declarant_id is not None
    set_role(
        session,
        declarant_id=enrolment.declarant_id,
        company_id=company.id,
        role=CompanyRole.ADMINISTRATEUR,
    )
    enrolment.status = EnrolmentStatus.ADMINISTRATOR
    enrolment.decided_at = utcnow()
    codes.void(session, purpose=ACTIVATION, subject=str(enrolment.id))
    record(
        session,
        "enrolment.administrator",
        actor=actor,
        target=enrolment.declarant_id,
        siren=company.siren,
        enrolment=enrolment.id,
        by=how,
    )
    return company


def activate(session: Session, *, declarant_id: str, code: str) -> Company:
    """Step 3: the candidate enters the letter's activation code; they administer the
    company. A code of someone else's enrolment is refused as unknown."""
    enrolment = candidate_enrolment(session, declarant_id)
    codes.redeem(session, purpose=ACTIVATION, secret=code, subject=str(enrolment.id))
    return _promote(session, enrolment, actor=declarant_id, how="activation")


def candidate_enrolment(session: Session, declarant_id: str) -> Enrolment:
    """The declarant's enrolment as a candidate, or an error (nothing to activate)."""
    found = session.scalars(
        select(Enrolment)
        .where(
            Enrolment.declarant_id == declarant_id,
            Enrolment.status == EnrolmentStatus.CANDIDATE,
        )
        .order_by(Enrolment.id.desc())
    ).first()
    if found is None:
        raise DirectoryError("vous n'avez aucune inscription d'entreprise en attente d'activation")
    return found


def candidates(session: Session, company_id: int) -> list[tuple[Enrolment, Declarant]]:
    """The company's candidate administrators (for its administrators to co-opt)."""
    rows = session.execute(
        select(Enrolment, Declarant)
        .join(Declarant, Declarant.id == Enrolment.declarant_id)
        .where(
            Enrolment.company_id == company_id,
            Enrolment.status == EnrolmentStatus.CANDIDATE,
        )
        .order_by(Enrolment.id)
    )
    return [(enrolment, declarant) for enrolment, declarant in rows]


def co_opt(session: Session, *, company_id: int, candidate_id: str, actor: str) -> Company:
    """An administrator of the company makes its candidate an administrator."""
    require_admin(session, actor_id=actor, company_id=company_id)
    for enrolment, declarant in candidates(session, company_id):
        if declarant.id == candidate_id:
            return _promote(session, enrolment, actor=actor, how="co-optation")
    raise DirectoryError("ce déclarant n'est pas candidat administrateur de votre entreprise")
