"""One place where errors become responses: HTML for pages, JSON for APIs."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from idp.i18n import N_, _
from token_suite.errors import InteropsError

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
}
OTHER = (N_("Erreur"), N_("La demande n'a pas pu aboutir ; réessayez plus tard."))


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
    title, message = PAGES.get(status, OTHER)
    # our own descriptions (abort(..., description=_("..."))) are already translated
    own = exc.description if exc.description != type(exc).description else None
    return render_template("error.html", title=_(title), message=own or _(message)), status


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
