"""The invitee's page (``/invitation?jeton=...``): shows who invites them, takes the
password they choose (the service's password rules), and activates their account. The
link is checked on the GET without being used, and used once by the POST that succeeds;
an unknown, used or expired link gets a clear French message and changes nothing."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from idp.auth.login import client_address
from idp.auth.passwords import passwords
from idp.i18n import _
from idp.oidc import registration
from idp.stores import db
from idp.web.answers import no_store
from rcd_store import administration as adm
from rcd_store.errors import DirectoryError
from rcd_store.passwords import PasswordPolicyError

bp = Blueprint("invitation", __name__)
bp.after_request(no_store)

PAGE = "admin/invitation.html"
MAX_TOKEN = 100
MAX_PASSWORD = 1024


def _token(source: str) -> str:
    values = request.args if source == "args" else request.form
    return (values.get("jeton") or "").strip()[: MAX_TOKEN + 1]


def _invalid(exc: DirectoryError) -> tuple[str, int]:
    db.session().rollback()
    return render_template(
        PAGE, invalid=True, error=_("Lien refusé : {reason}.", reason=exc.message)
    ), 400


@bp.get("/invitation")
def accept() -> ResponseReturnValue:
    token = _token("args")
    try:
        shown = adm.invitation_for(db.session(), token)
    except DirectoryError as exc:
        return _invalid(exc)
    return render_template(PAGE, token=token, invitation=shown)


@bp.post("/invitation")
def accept_post() -> ResponseReturnValue:
    session = db.session()
    token = _token("form")
    try:
        shown = adm.invitation_for(session, token)
    except DirectoryError as exc:
        return _invalid(exc)
    password = (request.form.get("mot_de_passe") or "")[:MAX_PASSWORD]
    if password != (request.form.get("confirmation") or "")[:MAX_PASSWORD]:
        error = _("Les deux mots de passe ne sont pas identiques.")
        return render_template(PAGE, token=token, invitation=shown, error=error), 400
    try:
        declarant_id = adm.accept_invitation(
            session,
            secret=token,
            password=password,
            passwords=passwords(),
            address=client_address(),
        )
    except PasswordPolicyError as exc:
        session.rollback()
        error = _("Mot de passe refusé : {reason}.", reason=str(exc))
        return render_template(PAGE, token=token, invitation=shown, error=error), 400
    except DirectoryError as exc:
        return _invalid(exc)
    session.commit()
    return registration.note_declarant(render_template(PAGE, done=True), declarant_id)
