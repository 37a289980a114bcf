"""What enrolment and join requests share: finding the establishment a person names,
creating their account pending until their email is verified, and the company's
administrators.

A pending account (``DeclarantStatus.PENDING``) cannot log in. One whose verification
link expired unused (after :data:`VERIFY_LIFETIME`) holds its email no longer: the
same address may start again, and the stale account and its request are purged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, delete, exists, select
from sqlalchemy.orm import Session

from rcd_store import audit
from rcd_store.db import utcnow
from rcd_store.enrolment import codes
from rcd_store.enrolment.models import Enrolment, JoinRequest
from rcd_store.errors import DirectoryError, Duplicate, NotFound
from rcd_store.identifiers import validate_siret
from rcd_store.models import (
    Company,
    CompanyRole,
    Declarant,
    DeclarantStatus,
    Establishment,
    Role,
)
from rcd_store.names import clean_display_name, name_key
from rcd_store.passwords import PasswordPolicyError, PasswordService, check_policy
from rcd_store.services import checked_email

T = TypeVar("T")
#: ``Session.info`` key: the client address the web service serves (audited with each change)
CLIENT_ADDRESS = "client_address"
VERIFY_LIFETIME = timedelta(hours=24)
EMAIL_VERIFICATION = "email_verification"
#: a request whose email is not verified yet (enrolments and join requests)
EMAIL_PENDING = "email_pending"


@dataclass(frozen=True)
class Identity:
    """What a person types: their names, email and password."""

    last_name: str
    first_name: str
    email: str
    password: str


@dataclass(frozen=True)
class Pending:
    """A request waiting for its email to be verified: the link's secret in clear (for
    the email only), the request's id and the new account."""

    request_id: int
    declarant: Declarant
    establishment: Establishment
    secret: str


def record(
    session: Session, kind: str, *, actor: str | None, target: str | None, **data: Any
) -> None:
    """Audit an enrolment change: who, for whom, what, from which address (the session's
    :data:`CLIENT_ADDRESS`, when a web request set it); people by declarant id only."""
    address = session.info.get(CLIENT_ADDRESS)
    audit.record(session, kind, actor=actor, target=target, data={**data, "address": address})


def locate(session: Session, siret: str) -> Establishment:
    """The establishment of ``siret`` (checked: Luhn, La Poste's rule), known to the
    directory or to the SIRENE data it imported; an open one."""
    siret = validate_siret(siret if isinstance(siret, str) else "")
    found = session.scalars(select(Establishment).where(Establishment.siret == siret)).first()
    if found is None:
        raise NotFound(
            f"SIRET {siret} inconnu : aucun établissement ni donnée SIRENE ne porte ce numéro ; "
            "vérifiez-le sur votre avis de situation SIRENE"
        )
    if not found.active:
        raise DirectoryError(
            f"l'établissement {siret} est fermé : indiquez un établissement ouvert"
        )
    return found


def administrators(session: Session, company_id: int) -> list[Declarant]:
    """The company's active administrators."""
    return list(
        session.scalars(
            select(Declarant)
            .join(Role, Role.declarant_id == Declarant.id)
            .where(
                Role.company_id == company_id,
                Role.role == CompanyRole.ADMINISTRATEUR.value,
                Declarant.status == DeclarantStatus.ACTIVE.value,
            )
            .order_by(Declarant.id)
        )
    )


def company_of(session: Session, establishment: Establishment) -> Company:
    company = session.get(Company, establishment.company_id)
    assert company is not None
    return company


def _stale() -> ColumnElement[bool]:
    """SQL: a pending account whose verification link expired unused."""
    return and_(
        Declarant.status == DeclarantStatus.PENDING.value,
        Declarant.created_at < utcnow() - VERIFY_LIFETIME,
        ~exists().where(Role.declarant_id == Declarant.id),
    )


class FormRefused(DirectoryError):
    """A form refused: ``errors`` maps each refused field (``siret``, ``nom``, ``prenom``,
    ``courriel``, ``mot_de_passe``) to its error; the message is the first one's."""

    def __init__(self, errors: dict[str, DirectoryError]) -> None:
        self.first = next(iter(errors.values()))
        super().__init__(self.first.message)
        self.errors = errors
        self.http_status = self.first.http_status  # type: ignore[misc]


@dataclass
class Review:
    """A form checked field by field (every error, not only the first)."""

    establishment: Establishment | None = None
    names: tuple[str, str] = ("", "")
    email: str = ""
    errors: dict[str, DirectoryError] = field(default_factory=dict)

    def check(self, name: str, step: Callable[[], T]) -> T | None:
        try:
            return step()
        except DirectoryError as exc:
            self.errors.setdefault(name, exc)
        except ValueError as exc:
            self.errors.setdefault(name, DirectoryError(f"valeur invalide : {exc}"))
        return None


def _free_email(session: Session, value: str) -> str:
    if not value or not value.strip():
        raise DirectoryError("adresse électronique manquante")
    email = checked_email(value)
    taken = select(Declarant.id).where(Declarant.email_key == email.casefold(), ~_stale())
    if session.scalars(taken).first() is not None:
        raise Duplicate(
            f"adresse électronique déjà utilisée : {email} (connectez-vous, ou "
            "réinitialisez votre mot de passe)"
        )
    return email


def _policy(who: Identity, context: tuple[str, ...]) -> None:
    try:
        check_policy(who.password, context=context)
    except PasswordPolicyError as exc:
        raise DirectoryError(f"mot de passe refusé : {exc}") from None


def review(
    session: Session,
    siret: str,
    who: Identity,
    company_check: Callable[[Establishment], None],
) -> Review:
    """Check every field of a request (SIRET then ``company_check``, names, email free,
    password policy) without writing; :class:`FormRefused` lists what is wrong."""
    found = Review()
    found.establishment = found.check("siret", lambda: locate(session, siret))
    if found.establishment is not None:
        found.check("siret", lambda: company_check(found.establishment))  # type: ignore[arg-type]
    last = found.check("nom", lambda: clean_display_name(who.last_name))
    first = found.check("prenom", lambda: clean_display_name(who.first_name))
    email = found.check("courriel", lambda: _free_email(session, who.email))
    found.check("mot_de_passe", lambda: _policy(who, (last or "", first or "", email or "")))
    if found.errors:
        raise FormRefused(found.errors)
    found.names, found.email = (last or "", first or ""), email or ""
    return found


def new_pending_declarant(
    session: Session, checked: Review, who: Identity, passwords: PasswordService
) -> Declarant:
    """A pending account for a reviewed request (a stale pending account of the same
    email is purged first; its request rows lose it by ``ON DELETE SET NULL``)."""
    assert checked.establishment is not None and not checked.errors
    session.execute(
        delete(Declarant)
        .where(Declarant.email_key == checked.email.casefold(), _stale())
        .execution_options(synchronize_session=False)
    )
    last, first = checked.names
    declarant = Declarant(
        last_name=last,
        first_name=first,
        last_name_key=name_key(last),
        first_name_key=name_key(first),
        email=checked.email,
        email_key=checked.email.casefold(),
        email_verified=False,
        home_establishment_id=checked.establishment.id,
        password_hash=passwords.hash(who.password),
        status=DeclarantStatus.PENDING.value,
        created_at=utcnow(),
    )
    session.add(declarant)
    session.flush()
    return declarant


def set_role(session: Session, *, declarant_id: str, company_id: int, role: CompanyRole) -> None:
    """The declarant's one role in the company becomes ``role`` (created if absent)."""
    row = session.scalars(
        select(Role).where(Role.declarant_id == declarant_id, Role.company_id == company_id)
    ).first()
    if row is None:
        session.add(Role(declarant_id=declarant_id, company_id=company_id, role=role.value))
    else:
        row.role = role.value
    session.flush()


def open_request(
    session: Session,
    model: type[Enrolment | JoinRequest],
    *,
    prefix: str,
    event: str,
    declarant: Declarant,
    establishment: Establishment,
) -> Pending:
    """A new request (``email_pending``) of ``declarant`` at ``establishment``, its
    verification link issued and ``event`` audited."""
    row = model(
        company_id=establishment.company_id,
        establishment_id=establishment.id,
        declarant_id=declarant.id,
        status=EMAIL_PENDING,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    secret = codes.issue(
        session, purpose=EMAIL_VERIFICATION, subject=f"{prefix}{row.id}", lifetime=VERIFY_LIFETIME
    )
    record(session, event, actor=declarant.id, target=establishment.siret, request=row.id)
    return Pending(row.id, declarant, establishment, secret)
