"""What every console page shares: the blueprint and its gate, the operator's id and
address, form readers, errors attributed to their fields, messages after an action.

The gate, before every console route: an anonymous visitor goes to the login page; a
declarant who is not an operator gets 403; an operator without a second factor is sent
to enrol one; an operator whose session was opened without the code (``amr`` lacks
``otp``) logs in again, with the code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as BaseResponse

from idp.auth.login import authenticated_declarant, client_address, login_required
from idp.console.operators import is_operator
from idp.i18n import N_, _
from idp.stores import db
from idp.web.answers import no_store
from rcd_store.models import Declarant

bp = Blueprint("console", __name__, url_prefix="/console")
bp.after_request(no_store)

#: the method reference of a login made with the second factor (idp.auth.login)
SECOND_FACTOR = "otp"
MAX_FIELD = 2000
MAX_LIST = 20
DONE = {
    "ajout": N_("Partenaire enregistré."),
    "modification": N_("Réglages du partenaire enregistrés."),
    "client": N_("Client enregistré."),
    "client-supprime": N_("Client supprimé : ses jetons ne sont plus acceptés."),
    "saml": N_("Métadonnées SAML enregistrées."),
    "theme": N_("Thème du widget enregistré."),
}


@bp.before_request
def _gate() -> BaseResponse | None:
    where = request.full_path if request.query_string else request.path
    found = authenticated_declarant()
    if found is None:
        return login_required(where)
    record, declarant = found
    if not is_operator(db.session(), declarant.id):
        abort(403)
    if not declarant.totp_secret:
        return redirect(url_for("totp.enrol"), code=303)
    if SECOND_FACTOR not in record.amr:
        return login_required(where, force=True)
    g.operator = declarant
    return None


def operator() -> Declarant:
    found: Declarant = g.operator
    return found


def address() -> str:
    return client_address()


def field_text(name: str, *, limit: int = MAX_FIELD) -> str:
    """A form field, stripped; longer than ``limit`` is 400 (never cut silently)."""
    value = (request.form.get(name) or "").strip()
    if len(value) > limit:
        abort(400, description=_("Champ trop long : {limit} caractères au plus.", limit=limit))
    return value


def field_lines(name: str) -> list[str]:
    """A textarea of one value per line (blank lines dropped), at most :data:`MAX_LIST`."""
    lines = [line.strip() for line in field_text(name, limit=20_000).splitlines()]
    found = [line for line in lines if line]
    if len(found) > MAX_LIST:
        abort(400, description=_("Trop de valeurs : {limit} au plus.", limit=MAX_LIST))
    return found


@dataclass
class Errors:
    """Refusals of a form: by field (shown beside it) and for the whole form."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, message: str, where: str | None) -> None:
        if where is None:
            self.general.append(message)
        else:
            self.fields.setdefault(where, message)


def attributed(message: str, prefixes: dict[str, str]) -> str | None:
    """The field a registry refusal is about, by the start of its French message."""
    return next((name for start, name in prefixes.items() if message.startswith(start)), None)


def done_message() -> str | None:
    key = request.args.get("fait", "")
    return _(DONE[key]) if key in DONE else None


def back(endpoint: str, key: str, **values: Any) -> ResponseReturnValue:
    """Post/redirect/get: back to ``endpoint`` with the message ``key``."""
    return redirect(url_for(endpoint, fait=key, **values), code=303)
