"""One place where errors become responses: HTML for pages, JSON for APIs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, jsonify, make_response, render_template, request
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError as DatabaseUnavailable
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from idp.i18n import N_, _
from idp.web.answers import no_store
from token_suite.errors import InteropsError

log = logging.getLogger(__name__)

#: A store that does not answer (refused, dropped, timed out, pool exhausted): the
#: request cannot be served now, but nothing is wrong with it (503, not 500).
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    PoolTimeout,
    RedisConnectionError,
    RedisTimeoutError,
)
#: Seconds a client is told to wait before trying again after a 503.
RETRY_AFTER = 5

#: The error page's title and message per status, in French (the English ones in the
#: catalogue): never werkzeug's English defaults.
PAGES: dict[int, tuple[str, str]] = {
    400: (
        N_("Requête invalide"),
        N_("La demande est incomplète ou mal formée : revenez en arrière et réessayez."),
    ),
    403: (N_("Accès refusé"), N_("Vous n'avez pas accès à cette page.")),
    404: (N_("Page introuvable"), N_("La page demandée n'existe pas.")),
    405: (
        N_("Méthode non autorisée"),
        N_("Cette adresse ne s'utilise pas ainsi : revenez à l'accueil."),
    ),
    413: (N_("Requête trop volumineuse"), N_("Les données envoyées sont trop volumineuses.")),
    429: (
        N_("Trop de demandes"),
        N_("Trop de demandes en peu de temps : réessayez dans quelques minutes."),
    ),
    500: (N_("Erreur interne"), N_("Une erreur est survenue ; réessayez plus tard.")),
    503: (
        N_("Service momentanément indisponible"),
        N_("Le service est momentanément indisponible : réessayez dans quelques instants."),
    ),
}
OTHER = (N_("Erreur"), N_("La demande n'a pas pu aboutir ; réessayez plus tard."))


def _wants_json() -> bool:
    return request.path.startswith(
        ("/api/", "/oauth/", "/.well-known/", "/authentifier/", "/healthz")
    ) or (request.accept_mimetypes.best == "application/json")


def _render(status: int, error: str, own: str | None = None) -> Response | tuple[str, int]:
    """JSON (``error``, ``error_description``) for APIs, the error page otherwise; the
    message is ``own`` (already translated) or the status's French one."""
    title, message = PAGES.get(status, OTHER)
    if _wants_json():
        response = jsonify(error=error, error_description=own or _(message))
        response.status_code = status
        return response
    return render_template("error.html", title=_(title), message=own or _(message)), status


def handle_http(exc: HTTPException) -> Response | tuple[str, int]:
    status = exc.code or 500
    original = getattr(exc, "original_exception", None)
    if status == 500 and isinstance(original, STORE_UNAVAILABLE):
        # raised where Flask only offers the 500 handler (after_request, teardown)
        return handle_store_unavailable(original)
    # our own descriptions (abort(..., description=_("..."))) are already translated;
    # werkzeug's own (English) ones give way to the status's French message
    own = exc.description if exc.description != type(exc).description else None
    return _render(status, exc.name.lower().replace(" ", "_"), own)


def handle_store_unavailable(exc: Exception) -> Response:
    """503 with a clear message (JSON or page) and ``Retry-After`` while the database or
    Redis does not answer: never a 500 with a traceback, never a hang (the stores'
    timeouts bound how long it takes to get here)."""
    log.warning(
        "stockage indisponible : %s: %s", type(exc).__name__, (str(exc).splitlines() or [""])[0]
    )
    rendered = _render(503, "temporarily_unavailable")
    response = make_response(rendered)
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return no_store(response)


def handle_interops(exc: InteropsError) -> Response:
    """Token errors: status and code of docs/profile.md, WWW-Authenticate for 401."""
    response = jsonify(error=exc.oauth_error, code=exc.code, error_description=exc.reason)
    response.status_code = exc.http_status
    if exc.http_status == 401:
        response.headers["WWW-Authenticate"] = exc.www_authenticate()
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(InteropsError, handle_interops)
    for unavailable in STORE_UNAVAILABLE:
        app.register_error_handler(unavailable, handle_store_unavailable)


def answered_by_the_app(
    app: Flask, environ: dict[str, Any], start_response: Any, error: Exception
) -> Iterable[bytes]:
    """For the WSGI layers in front of Flask: ``error`` answered as a route raising it
    would be, by the app's error handlers (503 and what to do for a store down, the 500
    otherwise) and after-request hooks, in a request context of ``environ``."""
    with app.request_context(environ):
        try:
            answer = app.handle_user_exception(error)
        except Exception as unhandled:  # noqa: BLE001 - the app's 500, as Flask gives it
            answer = app.handle_exception(unhandled)
        response: Response = app.finalize_request(answer)
        return response(environ, start_response)
