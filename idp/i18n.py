"""The one translation layer: French first, English where a catalogue entry exists.

Pages call ``_("Texte en français")``; the text is its own key. The locale is
French unless the user chose another with ``?lang=en`` (remembered in a cookie)
or the service is configured with ``IDP_LOCALE``: a browser's Accept-Language
alone never switches a French user's page to a partial translation.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, has_request_context, request

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
    # dashboard, portal navigation
    "Tableau de bord": "Dashboard",
    "Bonjour {first} {last}.": "Hello {first} {last}.",
    "Voici les services auxquels vous êtes habilité.": "These are the services you are authorised for.",
    "Vous n'êtes habilité à aucun service pour le moment : demandez à l'administrateur de votre entreprise de vous habiliter.": "You are not authorised for any service yet: ask your company's administrator to authorise you.",
    "SIRET": "SIRET",
    "Entreprise cliente (mandat)": "Client company (mandate)",
    "Siège": "Head office",
    "Rôle": "Role",
    "Consultation": "Read only",
    "Déclarant": "Declarant",
    "Accéder à {service} chez {partner}": "Go to {service} at {partner}",
    "Pas d'accès en ligne à ce service depuis le portail.": "This service cannot be reached online from the portal.",
    "Se déconnecter": "Log out",
    "Redirection vers {partner}": "Redirecting to {partner}",
    "Vous accédez au service « {service} » chez {partner}.": "You are going to the service “{service}” at {partner}.",
    "Continuer vers {partner}": "Continue to {partner}",
    "Choisissez le partenaire depuis le tableau de bord.": "Choose the partner from the dashboard.",
    "Vous n'êtes pas habilité à ce service.": "You are not authorised for this service.",
}

CATALOGUES = {"en": EN}


def current_locale() -> str:
    if has_request_context():
        chosen = request.args.get("lang") or request.cookies.get("lang")
        if chosen in SUPPORTED:
            return chosen
        return str(current_app.config.get("LOCALE") or "fr") if current_app else "fr"
    return "fr"


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


def init_app(app: Flask) -> None:
    app.after_request(_remember_choice)
    app.jinja_env.globals["_"] = gettext
    app.jinja_env.globals["current_locale"] = current_locale
