"""The legal representative's objection page (``/inscription/opposition``): the code of
their letter typed in, or the letter's link opened (then a button confirms: opening a
link changes nothing). The person concerned loses their role and their sessions end."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from idp.auth.login import client_address, form_field, too_many
from idp.auth.throttle import throttle
from idp.enrolment import forms
from idp.sessions import sso as sessions
from idp.stores import db
from idp.web.answers import no_store
from rcd_store.enrolment import codes, objection
from rcd_store.errors import DirectoryError

bp = Blueprint("objection", __name__)
bp.after_request(no_store)
bp.before_request(forms.remember_address)

PAGE = "enrolment/objection.html"


@bp.get("/inscription/opposition")
def objection_form() -> ResponseReturnValue:
    token = (request.args.get("jeton") or "")[: codes.MAX_SECRET + 1]
    if not token:
        return render_template(PAGE)
    try:
        seen = objection.view(db.session(), secret=token)
    except DirectoryError as exc:
        return render_template(PAGE, error=exc.message), 400
    return render_template(PAGE, token=token, seen=seen)


@bp.post("/inscription/opposition")
def objection_post() -> ResponseReturnValue:
    reservation = throttle().reserve_address("objection:" + client_address())
    if not reservation.allowed:
        return too_many(reservation.retry_after, template=PAGE)
    session = db.session()
    secret = form_field("jeton") or form_field("code")
    try:
        done = objection.object_to(session, secret=secret)
    except DirectoryError as exc:
        session.rollback()
        return render_template(PAGE, error=exc.message, code_error=not form_field("jeton")), 400
    sessions.end_declarant_sessions(session, done.declarant_id)
    session.commit()
    return render_template(PAGE, done=done)
