"""The emails and the letter of enrolment, queued in the outbox in the caller's
transaction (their links and codes sealed there, purged once sent or expired)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import current_app, render_template
from sqlalchemy.orm import Session

from idp.i18n import _
from idp.stores.sealing import app_sealer
from rcd_store import outbox
from rcd_store.enrolment.enrol import LETTER_LIFETIME, Letter
from rcd_store.enrolment.joins import Decided
from rcd_store.enrolment.people import VERIFY_LIFETIME, Pending


def page_link(path: str, **params: str) -> str:
    """An absolute link to a page of the service (``IDP_BASE_URL``)."""
    query = "?" + urlencode(params) if params else ""
    return f"{current_app.config['BASE_URL']}{path}{query}"


def _queue(session: Session, **message: Any) -> None:
    """Queue ``message`` (``outbox.put``'s fields), its body sealed under the master key."""
    outbox.put(session, app_sealer(), **message)


def verification_email(session: Session, pending: Pending, *, joining: bool) -> None:
    """The 24-hour link that verifies the address of an enrolment or a join request."""
    body = render_template(
        "enrolment/verify_email.txt",
        link=page_link("/inscription/verifier", jeton=pending.secret),
        hours=int(VERIFY_LIFETIME.total_seconds()) // 3600,
        joining=joining,
        siret=pending.establishment.siret,
    )
    kind = "join_verification" if joining else "enrolment_verification"
    subject = _("Vérifiez votre adresse électronique")
    recipient = pending.declarant.email or ""
    _queue(
        session,
        channel="email",
        kind=kind,
        recipient=recipient,
        subject=subject,
        body=body,
        lifetime=VERIFY_LIFETIME,
    )


def representative_letter(session: Session, letter: Letter) -> None:
    """The legal representative's letter: the activation code (for the candidate), the
    objection code and link (for the representative), valid 30 days."""
    body = render_template(
        "enrolment/letter.txt",
        letter=letter,
        days=LETTER_LIFETIME.days,
        objection_link=page_link("/inscription/opposition", jeton=letter.objection_link),
        objection_page=page_link("/inscription/opposition"),
        activation_page=page_link("/inscription/activation"),
    )
    subject = _("Inscription de votre entreprise aux services en ligne")
    _queue(
        session,
        channel="letter",
        kind="enrolment_letter",
        recipient=letter.recipient,
        subject=subject,
        body=body,
        lifetime=LETTER_LIFETIME,
    )


def join_decision_email(session: Session, decided: Decided) -> None:
    """The person who asked to join is told of the administrators' decision."""
    body = render_template(
        "enrolment/decision_email.txt", decided=decided, login=page_link("/connexion")
    )
    subject = _("Votre demande pour rejoindre votre entreprise")
    _queue(
        session,
        channel="email",
        kind="join_decision",
        recipient=decided.email,
        subject=subject,
        body=body,
    )
