"""Pages of the second factor (:mod:`idp.auth.second_factor` holds its rules).

- Enrolment at ``/compte/double-authentification``: the secret is shown as text
  and as an ``otpauth://`` URI, and is kept only once a code from it is confirmed;
  the pending secret rides in a signed, 10-minute hidden field bound to the
  declarant (a forged or swapped field is refused).
- Disabling takes a code under the same attempt budgets as the login's code step.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from idp.auth.login import (
    authenticated_declarant,
    client_address,
    login_required,
    too_many,
)
from idp.auth.second_factor import (
    ENROL_MAX_AGE,
    check_second_factor,
    new_recovery_codes,
    new_secret,
    provisioning_uri,
    seal_secret,
    verify_totp,
)
from idp.auth.throttle import throttle
from idp.i18n import _
from idp.stores import db
from idp.stores.models import OneTimeSecret
from idp.web.answers import no_store
from rcd_store import audit
from rcd_store.models import Declarant

bp = Blueprint("totp", __name__)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="idp.auth.totp.enrol")


bp.after_request(no_store)  # pages that take a code or show a secret are never cached


@bp.get("/compte/double-authentification")
def enrol() -> BaseResponse | tuple[str, int]:
    found = authenticated_declarant()
    if found is None:
        return login_required(request.path)
    declarant = found[1]
    if declarant.totp_secret:
        return render_template("totp_status.html"), 200
    secret = new_secret()
    pending = _serializer().dumps({"d": declarant.id, "s": secret})
    return render_template(
        "totp_enrol.html", secret=secret, pending=pending, uri=provisioning_uri(secret, declarant)
    ), 200


@bp.post("/compte/double-authentification")
def enrol_post() -> BaseResponse | tuple[str, int]:
    found = authenticated_declarant()
    if found is None:
        return login_required(request.path)
    declarant = found[1]
    session = db.session()
    if request.form.get("action") == "desactiver":
        return _disable(session, declarant)
    try:
        data = _serializer().loads(request.form.get("attente", ""), max_age=ENROL_MAX_AGE)
    except BadSignature:
        return render_template(
            "totp_status.html", error=_("La demande d'activation a expiré : recommencez.")
        ), 400
    if not isinstance(data, dict) or data.get("d") != declarant.id:
        return render_template(
            "totp_status.html", error=_("La demande d'activation a expiré : recommencez.")
        ), 400
    secret = str(data["s"])
    if not verify_totp(session, declarant.id, secret, request.form.get("code", "")):
        session.rollback()
        return render_template(
            "totp_enrol.html",
            secret=secret,
            pending=request.form.get("attente"),
            uri=provisioning_uri(secret, declarant),
            error=_(
                "Code incorrect : vérifiez l'heure de votre téléphone et saisissez le code affiché."
            ),
        ), 200
    session.execute(
        update(Declarant)
        .where(Declarant.id == declarant.id)
        .values(totp_secret=seal_secret(declarant.id, secret))
    )
    codes = new_recovery_codes(session, declarant.id)
    audit.record(session, "totp.enabled", actor=declarant.id)
    session.commit()
    return render_template("totp_codes.html", codes=codes), 200


def _disable(session: Session, declarant: Declarant) -> Response | tuple[str, int]:
    """Turn the second factor off with a code (TOTP or recovery), under the same budgets as
    the login's code step (:meth:`idp.auth.throttle.Throttle.reserve_code`): stops a stolen
    session from guessing its way to removing the factor."""

    session.commit()  # hand the connection back before the throttle takes its own
    guard = throttle()
    attempt = guard.reserve_code(declarant.id, client_address())
    if not attempt.allowed:
        return too_many(attempt.retry_after, template="totp_status.html")
    if not check_second_factor(session, declarant, request.form.get("code", "")):
        session.rollback()
        guard.code_failed(attempt)
        return render_template(
            "totp_status.html", error=_("Code incorrect : la double authentification reste active.")
        ), 200
    session.execute(update(Declarant).where(Declarant.id == declarant.id).values(totp_secret=None))
    session.execute(
        delete(OneTimeSecret).where(
            OneTimeSecret.declarant_id == declarant.id, OneTimeSecret.purpose == "recovery"
        )
    )
    audit.record(session, "totp.disabled", actor=declarant.id)
    session.commit()
    guard.code_succeeded(attempt)
    return render_template("totp_status.html", disabled=True), 200
