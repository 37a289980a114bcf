"""A declarant's identity changes: their names corrected (by themselves, by an
administrator of their company, or by the operator's CLI) and their email address
changed, from the portal only once the new address is verified by a link sent to it.

Every change that takes effect is audited as :data:`IDENTITY_CHANGED` (target: the
declarant; data: the OpenID Connect names of the changed claims, never their values) in
the change's transaction, so the partners sharing a service with the declarant are told
(``idp.events.emit``). Everything is checked before anything is written: bad input raises
a French :class:`~rcd_store.errors.DirectoryError` with nothing changed, and a value
given again unchanged records nothing. The caller commits.

The new address of a pending change is not stored: the link's one-time code is about
``<declarant id>:<SHA-256 of the address>``, and the address comes back with the link
(the web service seals it there); a link whose address is not the one it was issued for
is refused. A new request voids the live links of the previous ones.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rcd_store import audit
from rcd_store.db import utcnow
from rcd_store.enrolment import codes
from rcd_store.enrolment.models import OneTimeCode
from rcd_store.enrolment.people import FormRefused
from rcd_store.errors import DirectoryError, Duplicate, NotFound
from rcd_store.models import Declarant, DeclarantStatus
from rcd_store.names import clean_display_name, name_key
from rcd_store.services import checked_email

IDENTITY_CHANGED = "declarant.identity_changed"
EMAIL_CHANGE = "email_change"
CHANGE_LIFETIME = timedelta(hours=24)
#: claim names of what changed, as the audit data and the partners' events say it
FAMILY_NAME, GIVEN_NAME, EMAIL = "family_name", "given_name", "email"


@dataclass(frozen=True)
class EmailChange:
    """A change of address waiting for its link: the new address and the link's secret
    (in clear, for the email only)."""

    declarant: Declarant
    email: str
    secret: str


def declarant(session: Session, declarant_id: str) -> Declarant:
    """The declarant ``declarant_id``, or :class:`NotFound`."""
    found = session.get(Declarant, declarant_id) if isinstance(declarant_id, str) else None
    if found is None:
        raise NotFound(f"déclarant inconnu : {str(declarant_id)[:40]}")
    return found


def _name(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise DirectoryError(f"{what} manquant")
    if any(unicodedata.category(c).startswith("C") for c in value if c not in "\t"):
        raise DirectoryError(f"{what} invalide : caractère non imprimable")
    try:
        return clean_display_name(value)
    except ValueError as exc:
        raise DirectoryError(f"{what} invalide : {exc}") from None


def checked_names(last_name: str | None, first_name: str | None) -> tuple[str, str]:
    """Both names as they will be shown; :class:`FormRefused` names each bad one
    (fields ``nom`` and ``prenom``)."""
    errors: dict[str, DirectoryError] = {}
    names: list[str] = []
    for field, value, what in (("nom", last_name, "nom"), ("prenom", first_name, "prénom")):
        try:
            names.append(_name(value, what))
        except DirectoryError as exc:
            errors[field] = exc
    if errors:
        raise FormRefused(errors)
    return names[0], names[1]


def free_email(session: Session, value: str | None, person: Declarant) -> str:
    """``value`` checked (syntax only), not ``person``'s address already, and used by
    no other declarant."""
    if value is None or not value.strip():
        raise DirectoryError("adresse électronique manquante")
    email = checked_email(value)
    if email.casefold() == person.email_key and email == person.email:
        raise DirectoryError("c'est déjà votre adresse électronique")
    taken = session.scalars(
        select(Declarant.id).where(
            Declarant.email_key == email.casefold(), Declarant.id != person.id
        )
    ).first()
    if taken is not None:
        raise Duplicate(f"adresse électronique déjà utilisée : {email}")
    return email


def _apply(
    session: Session,
    person: Declarant,
    changes: dict[str, str],
    *,
    actor: str | None,
    **data: Any,
) -> list[str]:
    """Write the checked ``changes`` (claim name -> value) that differ; audit them."""
    changed: list[str] = []
    if FAMILY_NAME in changes and changes[FAMILY_NAME] != person.last_name:
        person.last_name = changes[FAMILY_NAME]
        person.last_name_key = name_key(person.last_name)
        changed.append(FAMILY_NAME)
    if GIVEN_NAME in changes and changes[GIVEN_NAME] != person.first_name:
        person.first_name = changes[GIVEN_NAME]
        person.first_name_key = name_key(person.first_name)
        changed.append(GIVEN_NAME)
    if EMAIL in changes and changes[EMAIL] != person.email:
        person.email, person.email_key = changes[EMAIL], changes[EMAIL].casefold()
        changed.append(EMAIL)
    if changed:
        session.flush()
        audit.record(
            session,
            IDENTITY_CHANGED,
            actor=actor,
            target=person.id,
            data={"fields": changed, **data},
        )
    return changed


def change_names(
    session: Session,
    *,
    declarant_id: str,
    last_name: str | None,
    first_name: str | None,
    actor: str | None,
    **data: Any,
) -> list[str]:
    """Correct the declarant's names; the claims that changed (none: nothing recorded)."""
    person = declarant(session, declarant_id)
    last, first = checked_names(last_name, first_name)
    return _apply(session, person, {FAMILY_NAME: last, GIVEN_NAME: first}, actor=actor, **data)


def edit(
    session: Session,
    *,
    declarant_id: str,
    last_name: str | None = None,
    first_name: str | None = None,
    email: str | None = None,
    actor: str | None = "cli",
) -> list[str]:
    """The operator's correction (CLI): any of the names and the address, set at once
    (the address not verified by its owner: ``email_verified`` false, and the pending
    links of a change from the portal void). Only the fields given are changed."""
    person = declarant(session, declarant_id)
    if last_name is None and first_name is None and email is None:
        raise DirectoryError("rien à modifier : donnez --last-name, --first-name ou --email")
    changes: dict[str, str] = {}
    if last_name is not None:
        changes[FAMILY_NAME] = _name(last_name, "nom")
    if first_name is not None:
        changes[GIVEN_NAME] = _name(first_name, "prénom")
    if email is not None and email.strip() != person.email:
        changes[EMAIL] = free_email(session, email, person)
    changed = _apply(session, person, changes, actor=actor)
    if EMAIL in changed:
        person.email_verified = False
        _void_changes(session, person.id)
    return changed


def _digest(email: str) -> str:
    return hashlib.sha256(email.encode("utf-8")).hexdigest()


def _void_changes(session: Session, declarant_id: str) -> None:
    """Use up the live links of the declarant's earlier address changes."""
    session.execute(
        update(OneTimeCode)
        .where(
            OneTimeCode.purpose == EMAIL_CHANGE,
            OneTimeCode.subject.startswith(f"{declarant_id}:", autoescape=True),
            OneTimeCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def request_email_change(
    session: Session, *, declarant_id: str, email: str | None, actor: str | None, **data: Any
) -> EmailChange:
    """Start a change of the active declarant's address to ``email``: a 24-hour link
    for the new address (the caller sends it); nothing changes until it is used."""
    person = declarant(session, declarant_id)
    if person.status != DeclarantStatus.ACTIVE.value:
        raise DirectoryError("ce compte n'est pas actif")
    new = free_email(session, email, person)
    _void_changes(session, person.id)
    secret = codes.issue(
        session,
        purpose=EMAIL_CHANGE,
        subject=f"{person.id}:{_digest(new)}",
        lifetime=CHANGE_LIFETIME,
    )
    audit.record(
        session, "declarant.email_change_requested", actor=actor, target=person.id, data=data
    )
    return EmailChange(person, new, secret)


def pending_change(session: Session, *, secret: str, email: str) -> Declarant:
    """The declarant whose live link ``secret`` was issued for ``email`` (nothing used),
    or :class:`~rcd_store.enrolment.codes.InvalidCode`."""
    subject = codes.peek(session, purpose=EMAIL_CHANGE, secret=secret)
    declarant_id, _, digest = subject.partition(":")
    if not isinstance(email, str) or _digest(email) != digest:
        raise codes.InvalidCode("ce lien n'est pas valable (inconnu ou déjà utilisé)")
    return declarant(session, declarant_id)


def confirm_email_change(session: Session, *, secret: str, email: str, **data: Any) -> Declarant:
    """Use the link: the address becomes ``email`` (verified) if it is still free and
    the account still active; the link stays unused when the change is refused."""
    person = pending_change(session, secret=secret, email=email)
    if person.status != DeclarantStatus.ACTIVE.value:
        raise DirectoryError("ce compte n'est pas actif")
    new = free_email(session, email, person)
    codes.redeem(
        session, purpose=EMAIL_CHANGE, secret=secret, subject=f"{person.id}:{_digest(new)}"
    )
    _apply(session, person, {EMAIL: new}, actor=person.id, **data)
    person.email_verified = True
    session.flush()
    return person
