"""The legal representative's objection (the code or the link of their letter).

It refuses a candidate (their role and pending activation codes void), or removes an
administrator the company did not want, even its only one: the person who enrolled
the company without its consent must not keep it, and the company is then open to a
new enrolment (another letter to the representative). The removed person loses their
habilitations on the company; an account left with no role anywhere is disabled.
The objection stays usable for the letter's 30 days, whatever happened meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from rcd_store.db import utcnow
from rcd_store.enrolment import codes
from rcd_store.enrolment.enrol import ACTIVATION, OBJECTION, EnrolmentStatus
from rcd_store.enrolment.models import Enrolment
from rcd_store.enrolment.people import record
from rcd_store.models import (
    Company,
    Declarant,
    DeclarantStatus,
    Establishment,
    Habilitation,
    Role,
)
from rcd_store.services.habilitations import revoke_rights

_GONE = "cette inscription a déjà fait l'objet d'une opposition ou n'existe plus"


@dataclass(frozen=True)
class Objection:
    """What the objection page shows, and what the objection did."""

    enrolment_id: int
    company: Company
    declarant_id: str
    person: str
    status: str


def _view(session: Session, subject: str) -> tuple[Enrolment, Objection]:
    enrolment = session.get(Enrolment, int(subject)) if subject.isdigit() else None
    declarant = session.get(Declarant, enrolment.declarant_id or "") if enrolment else None
    live = (EnrolmentStatus.CANDIDATE, EnrolmentStatus.ADMINISTRATOR)
    if enrolment is None or declarant is None or enrolment.status not in live:
        raise codes.InvalidCode(_GONE)
    company = session.get(Company, enrolment.company_id)
    assert company is not None
    person = f"{declarant.first_name} {declarant.last_name}"
    return enrolment, Objection(enrolment.id, company, declarant.id, person, enrolment.status)


def view(session: Session, *, secret: str) -> Objection:
    """The enrolment a live objection code or link is about (nothing used)."""
    return _view(session, codes.peek(session, purpose=OBJECTION, secret=secret))[1]


def object_to(session: Session, *, secret: str) -> Objection:
    """Use the objection: the candidate is refused, or the unwanted administrator removed;
    every other code of the letter is void. Returns what it was about."""
    subject = codes.redeem(session, purpose=OBJECTION, secret=secret)
    enrolment, found = _view(session, subject)
    codes.void(session, purpose=OBJECTION, subject=subject)
    codes.void(session, purpose=ACTIVATION, subject=subject)
    session.execute(
        delete(Role).where(
            Role.declarant_id == found.declarant_id, Role.company_id == found.company.id
        )
    )
    now = utcnow()
    establishments = select(Establishment.id).where(Establishment.company_id == found.company.id)
    revoke_rights(  # each right audited (and told to partners) as any other revocation
        session,
        where=(Habilitation.declarant_id == found.declarant_id)
        & Habilitation.establishment_id.in_(establishments),
        actor="objection",
        now=now,
        data={"reason": "objection"},
    )
    if (
        session.scalars(select(Role.id).where(Role.declarant_id == found.declarant_id)).first()
        is None
    ):
        session.execute(
            update(Declarant)
            .where(Declarant.id == found.declarant_id)
            .values(status=DeclarantStatus.DISABLED.value)
        )
    refused = found.status == EnrolmentStatus.CANDIDATE
    enrolment.status = EnrolmentStatus.REFUSED if refused else EnrolmentStatus.REMOVED
    enrolment.decided_at = now
    record(
        session,
        "enrolment.refused" if refused else "enrolment.administrator_removed",
        actor=None,
        target=found.declarant_id,
        siren=found.company.siren,
        enrolment=enrolment.id,
        by="objection",
    )
    return found
