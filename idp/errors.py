"""One place where errors become responses: HTML for pages, JSON for APIs."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from idp.i18n import _
from token_suite.errors import InteropsError

_TITLES = {404: "Page introuvable", 400: "Requête invalide"}
_MESSAGES = {404: "La page demandée n'existe pas."}


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/oauth/", "/.well-known/")) or (
        request.accept_mimetypes.best == "application/json"
    )


def handle_http(exc: HTTPException) -> Response | tuple[str, int]:
    status = exc.code or 500
    if _wants_json():
        response = jsonify(
            error=exc.name.lower().replace(" ", "_"), error_description=exc.description
        )
        response.status_code = status
        return response
    title = _(_TITLES.get(status, exc.name))
    message = _(_MESSAGES[status]) if status in _MESSAGES else exc.description
    return render_template("error.html", title=title, message=message), status


def handle_interops(exc: InteropsError) -> Response:
    """Token errors: status and code of INTEROPS_PROFILE.md, WWW-Authenticate for 401."""
    response = jsonify(error=exc.oauth_error, code=exc.code, error_description=exc.reason)
    response.status_code = exc.http_status
    if exc.http_status == 401:
        response.headers["WWW-Authenticate"] = exc.www_authenticate()
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(InteropsError, handle_interops)
