"""The one translation layer: French first, English where a catalogue entry exists.

Pages call ``_("Texte en français")``; the text is its own key. The locale is
French unless the user chose another with ``?lang=en`` (remembered in a cookie)
or the service is configured with ``IDP_LOCALE``: a browser's Accept-Language
alone never switches a French user's page to a partial translation.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask, Response, current_app, has_request_context, request

SUPPORTED = ("fr", "en")

#: Catalogue files, one per language but French: ``translations/<lang>.json``, each
#: mapping the French text (its own key) to its translation. A test checks that every
#: text the pages and code pass to ``_`` has its entry, with the same placeholders.
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def _catalogue(language: str) -> dict[str, str]:
    entries: dict[str, str] = json.loads((TRANSLATIONS / f"{language}.json").read_text("utf-8"))
    return entries


EN = _catalogue("en")
CATALOGUES = {"en": EN}


def current_locale() -> str:
    if has_request_context():
        return locale_of(request.args.get("lang"), request.cookies.get("lang"))
    return "fr"


def locale_of(asked: str | None, remembered: str | None) -> str:
    """The language of a request: ``?lang=`` (``asked``), else the ``lang`` cookie
    (``remembered``), else the service's (in a request or app context)."""
    chosen = asked or remembered
    if chosen in SUPPORTED:
        return chosen
    return str(current_app.config.get("LOCALE") or "fr") if current_app else "fr"


def _remember_choice(response: Response) -> Response:
    chosen = request.args.get("lang")
    if chosen in SUPPORTED and request.cookies.get("lang") != chosen:
        response.set_cookie("lang", chosen, samesite="Lax", httponly=True, max_age=365 * 86400)
    return response


def gettext(message: str, **params: object) -> str:
    """``message`` in the current locale, formatted with ``params``."""
    text = CATALOGUES.get(current_locale(), {}).get(message, message)
    return text.format(**params) if params else text


_ = gettext


def N_(message: str) -> str:
    """Mark a French text kept in a table for the catalogue; ``_`` translates it when shown."""
    return message


def init_app(app: Flask) -> None:
    app.after_request(_remember_choice)
    app.jinja_env.globals["_"] = gettext
    app.jinja_env.globals["current_locale"] = current_locale
