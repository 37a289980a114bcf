"""What every administration page shares: the blueprint, the login gate, the company
checked against the actor on every request, form and query readers, and the messages
shown after an action."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse

from idp.auth.login import authenticated_declarant, client_address, login_required
from idp.i18n import N_, _
from idp.stores import db
from idp.web.answers import no_store
from rcd_store.administration.access import Forbidden, require_admin
from rcd_store.models import Company, Declarant

bp = Blueprint("administration", __name__, url_prefix="/administration")
bp.after_request(no_store)

PER_PAGE = 50
MAX_FIELD = 254
#: the message shown after an action (``?fait=<key>``); nothing else is ever echoed
DONE = {
    "invitation": N_(
        "Invitation envoyée : le déclarant a 24 heures pour choisir son mot de passe."
    ),
    "habilitations": N_("Habilitations enregistrées."),
    "suspendre": N_("Déclarant suspendu : il ne peut plus se connecter."),
    "reactiver": N_("Déclarant réactivé."),
    "retirer": N_("Déclarant retiré de l'entreprise ; ses habilitations sont révoquées."),
    "administrateur": N_("Déclarant nommé administrateur."),
    "fin-administrateur": N_("Ce déclarant n'est plus administrateur."),
    "identite": N_("Nom et prénom corrigés."),
    "passation": N_("Administration transmise : vous n'êtes plus administrateur."),
}


@bp.before_request
def _gate() -> BaseResponse | None:
    """Anonymous visitors go to the login page (and come back here)."""
    who = authenticated_declarant()
    if who is None:
        return login_required(request.full_path if request.query_string else request.path)
    g.actor = who[1]
    return None


def actor() -> Declarant:
    found: Declarant = g.actor
    return found


def address() -> str:
    return client_address()


def company(company_id: int) -> Company:
    """The company of the URL, if the actor administers it; 403 otherwise (an unknown id
    the same: ids reveal nothing)."""
    try:
        return require_admin(db.session(), actor_id=actor().id, company_id=company_id)
    except Forbidden:
        abort(403)


def number(name: str, default: int = 1) -> int:
    """A page number from the query string; anything but a small positive number is 400."""
    raw = request.args.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or len(raw) > 6 or int(raw) < 1:
        abort(400, description=_("Numéro de page invalide."))
    return int(raw)


def text(name: str, *, source: str = "args", limit: int = 100) -> str:
    """A query or form field, stripped; longer than ``limit`` is 400 (never cut silently)."""
    values = request.args if source == "args" else request.form
    value = (values.get(name) or "").strip()
    if len(value) > limit:
        abort(400, description=_("Champ trop long : {limit} caractères au plus.", limit=limit))
    return value


def done_message() -> str | None:
    key = request.args.get("fait", "")
    return _(DONE[key]) if key in DONE else None


def refused(reason: str) -> str:
    """The French (or English) sentence shown for a refused change."""
    return _("Opération refusée : {reason}.", reason=reason)


def join_requests_url(company_id: int) -> str | None:
    """The company's join requests (the enrolment pages), when they are installed."""
    if "enrolment_admin.requests_page" not in current_app.view_functions:
        return None
    return url_for("enrolment_admin.requests_page", entreprise=company_id)


def back(endpoint: str, key: str, **values: Any) -> ResponseReturnValue:
    """Post/redirect/get: back to ``endpoint`` with the message ``key``."""
    return redirect(url_for(endpoint, fait=key, **values), code=303)


def finished(key: str) -> ResponseReturnValue:
    """A page saying the action ``key`` is done, for actions after which the actor may
    administer nothing any more (no page of the administration to go back to)."""
    return render_template("admin/done.html", message=_(DONE[key]))
