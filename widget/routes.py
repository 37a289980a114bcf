"""The widget's endpoints: the script partner pages include, its SRI hash, the per-client
settings it fetches, and the IdP page that hands the popup's result back.

- ``GET /widget/v1/widget.js``: the script, cached for a year (``immutable``: the
  version is in the path); CORS only for registered origins (SRI needs it);
- ``GET /widget/v1/widget.js.sri``: its ``sha384-`` integrity value;
- ``GET /widget/v1/config?client_id=&lang=``: endpoints, wording and the partner's theme,
  CORS for the client's own origins only; any other origin gets 403 and no CORS grant;
- ``GET /widget/v1/callback/<client_id>``: the popup's redirect URI; posts the code
  (with its ``state`` and ``iss``) to the opener, addressed to each registered origin
  of the client in turn, so a page on any other origin receives nothing (code theft).
  Never framed (:mod:`idp.web.security_headers`).
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, jsonify, render_template, request

from idp.i18n import N_, _
from idp.oidc.clients import issuer
from idp.stores import db
from idp.web.answers import no_store
from partners.theme import effective_theme
from widget import registry

bp = Blueprint("widget", __name__, template_folder="templates")
SCRIPT = Path(__file__).resolve().parent / "static" / "widget.js"
CALLBACK_SCRIPT = Path(__file__).resolve().parent / "static" / "callback.js"
YEAR = "public, max-age=31536000, immutable"
#: what the widget shows, through the translation layer (``lang`` of the config request)
LABELS = {
    "button": N_("Se connecter avec Interops"),
    "busy": N_("Connexion en cours dans la fenêtre ouverte…"),
    "redirect": N_("Redirection vers la page de connexion…"),
    "success": N_("Connexion réussie."),
    "error": N_("La connexion n'a pas abouti."),
    "closed": N_("Fenêtre de connexion fermée avant la fin."),
    # mode "register" (prompt=create)
    "register_button": N_("Créer un compte"),
    "register_busy": N_("Création du compte en cours dans la fenêtre ouverte…"),
    "register_success": N_("Compte créé : vous êtes connecté."),
    "registration_pending": N_(
        "Votre compte n'est pas encore actif : vous pourrez vous connecter quand un "
        "administrateur de votre entreprise aura accepté votre demande."
    ),
}


@cache
def _bytes(path: Path) -> bytes:
    return path.read_bytes()


def script_bytes() -> bytes:
    """The widget's source, exactly as served."""
    return _bytes(SCRIPT)


def integrity() -> str:
    """The Subresource Integrity value of the served script (``sha384-`` + base64)."""
    return "sha384-" + base64.b64encode(hashlib.sha384(script_bytes()).digest()).decode()


def _script(body: bytes, *, cors: bool) -> Response:
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = YEAR
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Vary"] = "Origin"
    origin = request.headers.get("Origin")
    if cors and registry.any_client_origin(db.session(), origin):
        response.headers["Access-Control-Allow-Origin"] = str(origin)
    return response


@bp.get("/widget/v1/widget.js")
def script() -> Response:
    """The widget (dependency-free, one file); its SRI value is published beside it."""
    return _script(script_bytes(), cors=True)


@bp.get("/widget/v1/widget.js.sri")
def script_integrity() -> Response:
    """``sha384-…`` of the bytes of :func:`script`, for the ``integrity`` attribute."""
    response = Response(integrity() + "\n", mimetype="text/plain")
    response.headers["Cache-Control"] = YEAR
    return response


@bp.get("/widget/v1/callback.js")
def callback_script() -> Response:
    """The callback page's script (same origin: the page allows no inline script)."""
    return _script(_bytes(CALLBACK_SCRIPT), cors=False)


def _refused(status: int, error: str, description: str) -> Response:
    response = jsonify(error=error, error_description=description)
    response.status_code = status
    response.headers["Vary"] = "Origin"
    return no_store(response)


@bp.get("/widget/v1/config")
def config() -> Response:
    """The client's widget settings, readable (CORS) by its registered origins only."""
    client = registry.widget_client(db.session(), request.args.get("client_id", ""))
    origin = request.headers.get("Origin")
    if client is None or not registry.origin_registered(client, origin):
        return _refused(403, "origin_not_registered", _("Origine non enregistrée pour ce client."))
    base = issuer()
    response = jsonify(
        issuer=base,
        authorization_endpoint=f"{base}/oauth/authorize",
        redirect_uri=registry.callback_url(client.client_id),
        labels={name: _(text) for name, text in LABELS.items()},
        theme={**effective_theme(client.partner), "name": client.partner.name},
    )
    response.headers["Access-Control-Allow-Origin"] = str(origin)
    response.headers["Vary"] = "Origin"
    return no_store(response)


def _callback_message(client_id: str) -> dict[str, Any] | None:
    """What the popup hands back: the response's ``state`` and ``iss`` with either a
    code of this client for this page, or an error; None when nothing may be sent."""
    session = db.session()
    client = registry.widget_client(session, client_id)
    if client is None:
        return None
    message = {"type": "interops-widget", "state": request.args.get("state", ""), "iss": issuer()}
    code, error = request.args.get("code"), request.args.get("error")
    if code:
        if not registry.code_for_callback(session, client, code):
            return None
        message["code"] = code
    elif error:
        message["error"] = error[:100]
        message["error_description"] = request.args.get("error_description", "")[:500]
    else:
        return None
    return {"message": message, "targets": list(client.origins)}


@bp.get("/widget/v1/callback/<path:client_id>")
def callback(client_id: str) -> Response:
    """The popup's last page: the result goes to the opener, to registered origins only."""
    payload = _callback_message(client_id)
    failed = payload is None or "error" in payload["message"]
    html = render_template(
        "widget/callback.html",
        payload=payload,
        title=_("La connexion n'a pas abouti.") if failed else _("Connexion réussie."),
    )
    response = no_store(Response(html, status=400 if payload is None else 200))
    response.headers["Content-Security-Policy"] = "script-src 'self'"
    return response


def init_app(app: Flask) -> None:
    """Serve the widget from ``app``."""
    app.register_blueprint(bp)
