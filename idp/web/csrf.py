"""CSRF protection for every form: a token bound to a per-browser random cookie.

The hidden field carries HMAC-SHA256(secret key, cookie value); a POST whose
field does not match its cookie is refused with 400 before any handler runs.
JSON APIs authenticated otherwise (token endpoint, machine login) are exempt
by blueprint or endpoint, each app its own list (``app.extensions``), filled by
the packages' ``init_app`` through :func:`exempt`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Flask, Response, abort, current_app, g, request
from markupsafe import Markup

from idp.i18n import _

COOKIE = "idp_csrf"
FIELD = "csrf_token"
EXTENSION = "idp.csrf_exempt"


def exempt(app: Flask, *names: str) -> None:
    """Mark blueprint or endpoint names of ``app`` as not needing a form token (for
    that app only: another app in the same process keeps its own list)."""
    exemptions(app).update(names)


def exemptions(app: Flask) -> set[str]:
    """The blueprint and endpoint names ``app`` lets through without a form token."""
    found: set[str] = app.extensions.setdefault(EXTENSION, set())
    return found


def _browser_secret() -> str:
    value = request.cookies.get(COOKIE)
    if not value or len(value) > 100:
        value = g.get("csrf_new_cookie") or secrets.token_urlsafe(32)
        g.csrf_new_cookie = value
    return value


def _token_for(secret: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def token() -> str:
    """The CSRF token of this browser (for hidden fields and JS)."""
    return _token_for(_browser_secret())


def field() -> Markup:
    """The hidden input every POST form carries."""
    return Markup(f'<input type="hidden" name="{FIELD}" value="{token()}">')


def accepted(cookie: str, sent: str) -> bool:
    """``sent`` (the form field, or the ``X-CSRF-Token`` header) is the token of the
    browser whose CSRF cookie is ``cookie``."""
    return bool(cookie and sent and hmac.compare_digest(sent, _token_for(cookie)))


def _check() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    endpoint = request.endpoint or ""
    exempted = exemptions(current_app)
    if endpoint in exempted or endpoint.split(".", 1)[0] in exempted:
        return
    cookie = request.cookies.get(COOKIE, "")
    sent = request.form.get(FIELD, "") or request.headers.get("X-CSRF-Token", "")
    if not accepted(cookie, sent):
        abort(
            400,
            description=_("Jeton anti-CSRF absent ou invalide : rechargez la page et réessayez."),
        )


def _set_cookie(response: Response) -> Response:
    new = g.get("csrf_new_cookie")
    if new:
        response.set_cookie(
            COOKIE,
            new,
            httponly=True,
            samesite="Lax",
            path="/",
            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        )
    return response


def init_app(app: Flask) -> None:
    """Check every unsafe request of ``app``; its exemption list starts empty."""
    app.extensions[EXTENSION] = set()
    app.before_request(_check)
    app.after_request(_set_cookie)
    app.jinja_env.globals["csrf_field"] = field
    app.jinja_env.globals["csrf_token"] = token
