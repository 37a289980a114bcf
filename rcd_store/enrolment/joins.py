"""A person asks to join their company, already enrolled.

:func:`request_join` (SIRET, identity, email, password): a pending account and request,
and a 24-hour verification link; once verified (:func:`email_verified`) the request
waits for the company's administrators, who :func:`accept_join` it (the account is
active, ``MEMBRE`` of the company, with the habilitations chosen) or :func:`refuse_join`
it (the pending account is purged: its personal data goes). Only an administrator of
the request's company decides (:func:`rcd_store.administration.access.require_admin`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rcd_store.administration.access import require_admin
from rcd_store.db import utcnow
from rcd_store.enrolment import codes
from rcd_store.enrolment.models import JoinRequest
from rcd_store.enrolment.people import (
    EMAIL_PENDING,
    Identity,
    Pending,
    administrators,
    locate,
    new_pending_declarant,
    open_request,
    record,
    review,
    set_role,
)
from rcd_store.errors import DirectoryError, NotFound
from rcd_store.models import CompanyRole, Declarant, DeclarantStatus, Establishment
from rcd_store.passwords import PasswordService
from rcd_store.services import grant_habilitation

PREFIX = "join:"
#: habilitations one decision may grant (a form's rows; more through the matrix)
MAX_GRANTS = 50


class JoinStatus:
    EMAIL_PENDING = EMAIL_PENDING
    PENDING = "pending"
    ACCEPTED = "accepted"
    REFUSED = "refused"


class Standing:
    """Where a person who just enrolled, asked to join or accepted an invitation stands."""

    ACTIVE = "active"  # may log in
    EMAIL_PENDING = EMAIL_PENDING  # must open the verification link first
    AWAITING_APPROVAL = "awaiting_approval"  # a join request the administrators must decide
    GONE = "gone"  # refused, removed, expired or suspended: cannot log in


@dataclass(frozen=True)
class JoinView:
    """A pending request as its company's administrators see it."""

    id: int
    declarant_id: str
    last_name: str
    first_name: str
    email: str
    siret: str
    created_at: datetime


@dataclass(frozen=True)
class Decided:
    """A decided request: whom to tell (their email and names, read before any purge)."""

    request_id: int
    email: str
    first_name: str
    last_name: str
    company_name: str
    accepted: bool


def _enrolled(session: Session, establishment: Establishment) -> None:
    if not administrators(session, establishment.company_id):
        raise NotFound(
            "cette entreprise n'est pas encore inscrite : inscrivez-la d'abord "
            "(« Inscrire mon entreprise »)"
        )


def request_join(
    session: Session, *, siret: str, who: Identity, passwords: PasswordService
) -> Pending:
    """A pending account and request for an enrolled company, and the verification link."""
    checked = review(session, siret, who, lambda found: _enrolled(session, found))
    declarant = new_pending_declarant(session, checked, who, passwords)
    establishment = checked.establishment
    assert establishment is not None
    return open_request(
        session,
        JoinRequest,
        prefix=PREFIX,
        event="join.requested",
        declarant=declarant,
        establishment=establishment,
    )


def email_verified(session: Session, request: JoinRequest) -> JoinRequest:
    """After the link: the request waits for the administrators' decision."""
    declarant = session.get(Declarant, request.declarant_id or "")
    if declarant is None or request.status != JoinStatus.EMAIL_PENDING:
        raise codes.InvalidCode("cette demande n'existe plus : recommencez-la")
    declarant.email_verified = True
    request.status = JoinStatus.PENDING
    record(session, "join.email_verified", actor=declarant.id, target=None, request=request.id)
    return request


def standing(session: Session, declarant_id: str) -> str:
    """The :class:`Standing` of ``declarant_id`` (reads only)."""
    declarant = session.get(Declarant, declarant_id) if declarant_id else None
    if declarant is None or declarant.status not in (
        DeclarantStatus.ACTIVE.value,
        DeclarantStatus.PENDING.value,
    ):
        return Standing.GONE
    if declarant.status == DeclarantStatus.ACTIVE.value:
        return Standing.ACTIVE
    if not declarant.email_verified:
        return Standing.EMAIL_PENDING
    waiting = select(JoinRequest.id).where(
        JoinRequest.declarant_id == declarant_id, JoinRequest.status == JoinStatus.PENDING
    )
    found = session.scalars(waiting).first() is not None
    return Standing.AWAITING_APPROVAL if found else Standing.GONE


def pending_joins(session: Session, company_id: int) -> list[JoinView]:
    """The company's requests waiting for a decision, oldest first (one query)."""
    rows = session.execute(
        select(JoinRequest.id, Declarant, Establishment.siret, JoinRequest.created_at)
        .join(Declarant, Declarant.id == JoinRequest.declarant_id)
        .join(Establishment, Establishment.id == JoinRequest.establishment_id)
        .where(JoinRequest.company_id == company_id, JoinRequest.status == JoinStatus.PENDING)
        .order_by(JoinRequest.id)
    )
    return [
        JoinView(rid, d.id, d.last_name, d.first_name, d.email or "", siret, created)
        for rid, d, siret, created in rows
    ]


def _pending(session: Session, request_id: int, actor: str) -> tuple[JoinRequest, Declarant]:
    """The pending request ``request_id`` of a company ``actor`` administers (else the
    same refusal whether it exists or not)."""
    request = session.get(JoinRequest, request_id) if isinstance(request_id, int) else None
    if request is None:
        raise NotFound("demande inconnue")
    company = require_admin(session, actor_id=actor, company_id=request.company_id)
    declarant = session.get(Declarant, request.declarant_id or "")
    if request.status != JoinStatus.PENDING or declarant is None:
        raise DirectoryError("cette demande a déjà été traitée")
    assert company is not None
    return request, declarant


def _decided(request: JoinRequest, declarant: Declarant, company_name: str, ok: bool) -> Decided:
    return Decided(
        request.id,
        declarant.email or "",
        declarant.first_name,
        declarant.last_name,
        company_name,
        ok,
    )


def accept_join(
    session: Session,
    *,
    request_id: int,
    actor: str,
    habilitations: Sequence[tuple[str, str, str]],
) -> Decided:
    """Accept: the person is active, ``MEMBRE`` of the company, with the habilitations
    (SIRET, service code, role) chosen, each on an establishment of the company."""
    request, declarant = _pending(session, request_id, actor)
    if len(habilitations) > MAX_GRANTS:
        raise DirectoryError(f"trop d'habilitations à la fois ({MAX_GRANTS} au plus)")
    company = require_admin(session, actor_id=actor, company_id=request.company_id)
    declarant.status = DeclarantStatus.ACTIVE.value
    set_role(session, declarant_id=declarant.id, company_id=company.id, role=CompanyRole.MEMBRE)
    for siret, service_code, role in habilitations:
        establishment = locate(session, siret)
        if establishment.company_id != company.id:
            raise DirectoryError(
                f"l'établissement {establishment.siret} n'est pas de votre entreprise"
            )
        grant_habilitation(
            session,
            declarant_id=declarant.id,
            siret=siret,
            service_code=service_code,
            role=role,
            actor=actor,
        )
    request.status, request.decided_at, request.decided_by = JoinStatus.ACCEPTED, utcnow(), actor
    record(
        session,
        "join.accepted",
        actor=actor,
        target=declarant.id,
        request=request.id,
        siren=company.siren,
        habilitations=len(habilitations),
    )
    return _decided(request, declarant, company.name, True)


def refuse_join(session: Session, *, request_id: int, actor: str) -> Decided:
    """Refuse: the pending account is purged (the request keeps no personal data)."""
    request, declarant = _pending(session, request_id, actor)
    company = require_admin(session, actor_id=actor, company_id=request.company_id)
    decided = _decided(request, declarant, company.name, False)
    request.status, request.decided_at, request.decided_by = JoinStatus.REFUSED, utcnow(), actor
    request.declarant_id = None
    record(
        session,
        "join.refused",
        actor=actor,
        target=declarant.id,
        request=request.id,
        siren=company.siren,
    )
    session.flush()
    session.delete(declarant)
    session.flush()
    return decided
