"""Plugging the JSON API into the app: its blueprints, no CSRF form token (bearer
tokens, no cookie), and problem objects for what fails before a view of the API runs
(an unknown path or method under ``/api/``, a body too large)."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from idp.api import admin, members, openapi, problems, rcd
from idp.web import csrf, errors

BLUEPRINTS = (admin.bp, members.bp, rcd.bp, openapi.bp)


def _routed(exc: HTTPException) -> Response | tuple[str, int]:
    if request.path.startswith("/api/"):
        return problems.from_http(exc)
    return errors.handle_http(exc)


def init_app(app: Flask) -> None:
    """Register the API's blueprints and its error answers."""
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    csrf.exempt(app, *(blueprint.name for blueprint in BLUEPRINTS))
    for status in (400, 404, 405, 413):
        app.register_error_handler(status, _routed)
