"""Inviting a declarant by email, and the invitee accepting by choosing a password.

The invitee is created at once as a ``pending`` declarant (no password: no login is
possible) and member of the company; a link (256 random bits, stored hashed, single
use, 24 hours: :mod:`rcd_store.enrolment.codes`, purpose ``invitation``) is queued by
email through the outbox, its body sealed. The link's page shows the invitation
(:func:`invitation_for`) and takes the password (:func:`accept_invitation`): the
declarant becomes active with a verified email.

An address already invited (and not yet accepted) or used by any declarant is refused
with a clear message: nothing is created and no email is queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rcd_store import audit, outbox
from rcd_store.administration.roles import locked_company, record
from rcd_store.enrolment import codes
from rcd_store.errors import DirectoryError, Duplicate
from rcd_store.models import (
    Company,
    CompanyRole,
    Declarant,
    DeclarantStatus,
    Establishment,
    Role,
)
from rcd_store.names import clean_display_name, name_key
from rcd_store.passwords import PasswordService, check_policy
from rcd_store.sealing import Sealer
from rcd_store.services import checked_email

PURPOSE = "invitation"
LIFETIME = timedelta(hours=24)
#: where the link leads (the acceptance page of the web service)
ACCEPT_PATH = "/invitation"
MAX_EMAIL = 254

_BODY = """Bonjour {first} {last},

{company} vous invite à rejoindre son espace sur le service d'identité Interops.
Pour accepter et choisir votre mot de passe, ouvrez ce lien (valable 24 heures,
utilisable une seule fois) :

{link}

Si vous n'attendiez pas cette invitation, ignorez ce message.
"""


def _identity(session: Session, last_name: str, first_name: str, email: str) -> tuple[str, ...]:
    try:
        last, first = clean_display_name(last_name or ""), clean_display_name(first_name or "")
    except ValueError as exc:
        raise DirectoryError(f"nom ou prénom invalide : {exc}") from None
    if len(email or "") > MAX_EMAIL:
        raise DirectoryError(f"adresse électronique trop longue ({MAX_EMAIL} caractères au plus)")
    address = checked_email(email or "")
    existing = session.scalars(
        select(Declarant.status).where(Declarant.email_key == address.casefold())
    ).first()
    if existing == DeclarantStatus.PENDING.value:
        raise Duplicate(f"une invitation est déjà en cours pour {address}")
    if existing is not None:
        raise Duplicate(f"adresse électronique déjà utilisée par un déclarant : {address}")
    return last, first, address


def _head_office(session: Session, company_id: int) -> int | None:
    return session.scalars(
        select(Establishment.id)
        .where(Establishment.company_id == company_id)
        .order_by(Establishment.head_office.desc(), Establishment.siret)
        .limit(1)
    ).first()


def invite_declarant(
    session: Session,
    *,
    company_id: int,
    actor: str,
    last_name: str,
    first_name: str,
    email: str,
    sealer: Sealer,
    base_url: str,
    address: str | None = None,
) -> str:
    """Invite a person into the company; returns the new (pending) declarant's id."""
    company = locked_company(session, actor=actor, company_id=company_id)
    last, first, mail = _identity(session, last_name, first_name, email)
    declarant = Declarant(
        last_name=last,
        first_name=first,
        last_name_key=name_key(last),
        first_name_key=name_key(first),
        email=mail,
        email_key=mail.casefold(),
        home_establishment_id=_head_office(session, company.id),
        password_hash=None,
        status=DeclarantStatus.PENDING.value,
    )
    try:
        with session.begin_nested():  # another company invited the address meanwhile
            session.add(declarant)
    except IntegrityError:
        raise Duplicate(f"une invitation est déjà en cours pour {mail}") from None
    session.add(
        Role(declarant_id=declarant.id, company_id=company.id, role=CompanyRole.MEMBRE.value)
    )
    secret = codes.issue(session, purpose=PURPOSE, subject=declarant.id, lifetime=LIFETIME)
    link = base_url.rstrip("/") + ACCEPT_PATH + "?" + urlencode({"jeton": secret})
    outbox.put(
        session,
        sealer,
        channel="email",
        kind=PURPOSE,
        recipient=mail,
        subject=f"Invitation de {company.name} sur le service d'identité Interops",
        body=_BODY.format(first=first, last=last, company=company.name, link=link),
        lifetime=LIFETIME,
    )
    record(session, "admin.declarant_invited", actor, declarant.id, company, address)
    return declarant.id


@dataclass(frozen=True)
class Invitation:
    """What the acceptance page shows."""

    declarant_id: str
    first_name: str
    last_name: str
    email: str
    company: str


def _invited(session: Session, declarant_id: str) -> Invitation:
    found = session.execute(
        select(Declarant, Company.name)
        .join(Role, Role.declarant_id == Declarant.id)
        .join(Company, Company.id == Role.company_id)
        .where(Declarant.id == declarant_id, Declarant.status == DeclarantStatus.PENDING.value)
    ).first()
    if found is None:
        raise codes.InvalidCode("cette invitation n'est plus valable (retirée ou déjà acceptée)")
    person, company = found
    return Invitation(person.id, person.first_name, person.last_name, person.email or "", company)


def invitation_for(session: Session, secret: str) -> Invitation:
    """The invitation a link carries, without using the link (the page's GET)."""
    return _invited(session, codes.peek(session, purpose=PURPOSE, secret=secret))


def accept_invitation(
    session: Session,
    *,
    secret: str,
    password: str,
    passwords: PasswordService,
    address: str | None = None,
) -> str:
    """Use the link once, set the password (policy checked first: a refused password
    leaves the link usable), activate the declarant; returns their id."""
    invitation = invitation_for(session, secret)
    check_policy(password, context=(invitation.last_name, invitation.first_name, invitation.email))
    codes.redeem(session, purpose=PURPOSE, secret=secret, subject=invitation.declarant_id)
    declarant = session.get(Declarant, invitation.declarant_id)
    assert declarant is not None
    declarant.password_hash = passwords.hash(password)
    declarant.status = DeclarantStatus.ACTIVE.value
    declarant.email_verified = True
    session.flush()
    audit.record(
        session,
        "admin.invitation_accepted",
        actor=declarant.id,
        target=declarant.id,
        data={"address": address},
    )
    return declarant.id
