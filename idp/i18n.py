"""The one translation layer: French first, English where a catalogue entry exists.

Pages call ``_("Texte en français")``; the text is its own key. The locale is
the configured one, or the request's ``Accept-Language`` when it prefers English.
"""

from __future__ import annotations

from flask import Flask, has_request_context, request

SUPPORTED = ("fr", "en")

EN: dict[str, str] = {
    "Service d'identité Interops": "Interops identity service",
    "Le service fonctionne.": "The service is up.",
    "Connexion": "Log in",
    "Page introuvable": "Page not found",
    "La page demandée n'existe pas.": "The requested page does not exist.",
    "Erreur interne": "Internal error",
    "Une erreur est survenue ; réessayez plus tard.": "Something went wrong; try again later.",
    "Requête invalide": "Bad request",
}

CATALOGUES = {"en": EN}


def current_locale() -> str:
    if has_request_context():
        best = request.accept_languages.best_match(SUPPORTED, default="fr")
        return best or "fr"
    return "fr"


def gettext(message: str, **params: object) -> str:
    """``message`` in the current locale, formatted with ``params``."""
    text = CATALOGUES.get(current_locale(), {}).get(message, message)
    return text.format(**params) if params else text


_ = gettext


def init_app(app: Flask) -> None:
    app.jinja_env.globals["_"] = gettext
    app.jinja_env.globals["current_locale"] = current_locale
