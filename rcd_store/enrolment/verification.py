"""The email verification link of an enrolment or a join request (24 hours, once)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from rcd_store.enrolment import codes, enrol, joins
from rcd_store.enrolment.models import Enrolment, JoinRequest
from rcd_store.enrolment.people import EMAIL_VERIFICATION

_GONE = "cette demande n'existe plus : recommencez-la"


def check(session: Session, *, secret: str) -> str:
    """``"enrolment"`` or ``"join"``: what a live link verifies (nothing used)."""
    subject = codes.peek(session, purpose=EMAIL_VERIFICATION, secret=secret)
    return "enrolment" if subject.startswith(enrol.PREFIX) else "join"


def verify_email(session: Session, *, secret: str) -> enrol.Letter | JoinRequest:
    """Use the link: an enrolment's candidate and their letter, or a join request now
    waiting for the administrators."""
    subject = codes.redeem(session, purpose=EMAIL_VERIFICATION, secret=secret)
    kind, _, number = subject.partition(":")
    if not number.isdigit():
        raise codes.InvalidCode(_GONE)
    if f"{kind}:" == enrol.PREFIX:
        enrolment = session.get(Enrolment, int(number))
        if enrolment is None or enrolment.status != enrol.EnrolmentStatus.EMAIL_PENDING:
            raise codes.InvalidCode(_GONE)
        return enrol.become_candidate(session, enrolment)
    request = session.get(JoinRequest, int(number))
    if request is None:
        raise codes.InvalidCode(_GONE)
    return joins.email_verified(session, request)
