"""The public pages: enrol a company (``/inscription``), ask to join one
(``/rejoindre``), verify the address (``/inscription/verifier``), and the candidate's
activation (``/inscription/activation``, logged in).

Each POST carries the CSRF token (``idp.web.csrf``); a refused form changes nothing
(the transaction is rolled back) and says what is wrong beside each field; 20
requests per client address per 15 minutes (no mail bombing through the form).
The verification link is used by a button, not by opening it (a mail scanner that
fetches links uses nothing).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from idp.auth.login import (
    authenticated_declarant,
    client_address,
    form_field,
    login_required,
    too_many,
)
from idp.auth.passwords import passwords
from idp.auth.throttle import throttle
from idp.enrolment import forms, messages
from idp.oidc import registration
from idp.stores import db
from idp.web.answers import no_store
from rcd_store.enrolment import codes, enrol, joins, verification
from rcd_store.enrolment.enrol import Letter
from rcd_store.enrolment.people import Pending
from rcd_store.errors import DirectoryError

bp = Blueprint("enrolment", __name__)
bp.after_request(no_store)
bp.before_request(forms.remember_address)

FORM = "enrolment/form.html"
Start = Callable[..., Pending]


def _form_page(
    joining: bool, form: forms.Form | None = None, status: int = 200
) -> ResponseReturnValue:
    form = form or forms.Form()
    return render_template(FORM, joining=joining, form=form, values=form.shown), status


def _submit(joining: bool, start: Start) -> ResponseReturnValue:
    reservation = throttle().reserve_address("enrolment:" + client_address())
    if not reservation.allowed:
        return too_many(
            reservation.retry_after, template=FORM, joining=joining, form=forms.Form(), values={}
        )
    session = db.session()
    form = forms.read()
    pending = None
    try:
        pending = start(
            session, siret=form.values["siret"], who=forms.identity(form), passwords=passwords()
        )
    except DirectoryError as exc:
        form.refuse(exc)
    if form.errors or form.general or pending is None:
        session.rollback()
        return _form_page(joining, form, 400)
    messages.verification_email(session, pending, joining=joining)
    session.commit()
    page = render_template("enrolment/sent.html", joining=joining, email=pending.declarant.email)
    return registration.note_declarant(page, pending.declarant.id)  # prompt=create under way


@bp.get("/inscription")
def enrol_form() -> ResponseReturnValue:
    return _form_page(joining=False)


@bp.post("/inscription")
def enrol_post() -> ResponseReturnValue:
    return _submit(False, enrol.start_enrolment)


@bp.get("/rejoindre")
def join_form() -> ResponseReturnValue:
    return _form_page(joining=True)


@bp.post("/rejoindre")
def join_post() -> ResponseReturnValue:
    return _submit(True, joins.request_join)


def _bad_link(exc: DirectoryError) -> ResponseReturnValue:
    return render_template("enrolment/verify.html", error=exc.message), 400


@bp.get("/inscription/verifier")
def verify_form() -> ResponseReturnValue:
    token = (request.args.get("jeton") or "")[: codes.MAX_SECRET + 1]
    try:
        kind = verification.check(db.session(), secret=token)
    except DirectoryError as exc:
        return _bad_link(exc)
    return render_template("enrolment/verify.html", token=token, joining=kind == "join")


@bp.post("/inscription/verifier")
def verify_post() -> ResponseReturnValue:
    session = db.session()
    try:
        verified = verification.verify_email(session, secret=form_field("jeton"))
    except DirectoryError as exc:
        session.rollback()
        return _bad_link(exc)
    if isinstance(verified, Letter):
        messages.representative_letter(session, verified)
    session.commit()
    return render_template(
        "enrolment/verify.html", done=True, joining=not isinstance(verified, Letter)
    )


@bp.get("/inscription/activation")
def activation_form() -> ResponseReturnValue:
    if authenticated_declarant() is None:
        return login_required("/inscription/activation")
    return render_template("enrolment/activation.html")


@bp.post("/inscription/activation")
def activation_post() -> ResponseReturnValue:
    who = authenticated_declarant()
    if who is None:
        return login_required("/inscription/activation")
    session: Session = db.session()
    try:
        company = enrol.activate(session, declarant_id=who[1].id, code=form_field("code"))
    except DirectoryError as exc:
        session.rollback()
        return render_template("enrolment/activation.html", error=exc.message), 400
    session.commit()
    return render_template("enrolment/activation.html", company=company)
