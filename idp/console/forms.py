"""The console's forms read into the registry's settings (:mod:`partners.services` holds
every rule: these functions only parse what a browser sends and say which field a
refusal is about)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.console.common import Errors, address, attributed, field_lines, field_text, operator
from idp.i18n import _
from idp.stores import db
from partners import services as registry
from partners.models import OAuthClient, Partner
from partners.services import GRANTS, ClientSettings, PartnerSettings
from rcd_store.errors import DirectoryError, NotFound

T = TypeVar("T")

#: start of a registry refusal -> the partner form's field it is about
PARTNER_FIELDS = {
    "nom de partenaire": "nom",
    "partenaire déjà enregistré": "nom",
    "URL d'arrivée": "url_arrivee",
    "format de jeton": "format",
    "durée de vie des jetons": "duree",
    "récepteur d'événements": "recepteur",
    "service inconnu": "services",
}
#: the same for the client form
CLIENT_FIELDS = {
    "identifiant de client": "client_id",
    "client déjà enregistré": "client_id",
    "méthode d'authentification": "authentification",
    "type d'autorisation": "autorisations",
    "un client public": "autorisations",
    "private_key_jwt": "jwks_uri",
    "jwks_uri": "jwks_uri",
    "authorization_code exige": "redirections",
    "redirect_uri": "redirections",
    "origine": "origines",
    "backchannel_logout_uri": "deconnexion",
}
#: and the SAML form
SAML_FIELDS = {
    "certificat de signature": "certificat",
    "métadonnées SAML": "metadonnees",
    "AuthnRequestsSigned": "metadonnees",
    "URL AssertionConsumerService": "metadonnees",
    "entityID": "metadonnees",
}


@dataclass
class Filled:
    """What the form held (shown again on refusal) and the refusals found reading it."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: Errors = field(default_factory=Errors)


def partner_form(*, adding: bool) -> tuple[PartnerSettings | None, Filled]:
    """The partner's name (when adding), landing URL, token format and lifetime, the
    services it shares and its event receiver."""
    filled = Filled(
        {
            "nom": field_text("nom", limit=200) if adding else "",
            "url_arrivee": field_text("url_arrivee"),
            "format": field_text("format", limit=10),
            "duree": field_text("duree", limit=10),
            "services": [s[:40] for s in request.form.getlist("services")][:200],
            "recepteur": field_text("recepteur"),
        }
    )
    values = filled.values
    lifetime = None
    if values["duree"]:
        if not values["duree"].isdigit():
            filled.errors.add(_("Nombre entier de secondes attendu."), "duree")
        else:
            lifetime = int(values["duree"])
    if filled.errors:
        return None, filled
    settings = PartnerSettings(
        name=values["nom"],
        services=values["services"],
        landing_url=values["url_arrivee"] or None,
        token_format=values["format"] or None,
        token_lifetime=lifetime,
        event_receiver_url=values["recepteur"],
    )
    return settings, filled


def partner_values(partner: Partner) -> dict[str, Any]:
    """The partner form filled with the partner's settings."""
    return {
        "nom": partner.name,
        "url_arrivee": partner.landing_url or "",
        "format": partner.token_format,
        "duree": str(partner.token_lifetime_seconds),
        "services": [s.code for s in partner.services],
        "recepteur": partner.event_receiver_url or "",
    }


def client_form(existing: OAuthClient | None) -> tuple[ClientSettings | None, Filled]:
    """An OAuth client's redirect URIs, widget origins, grants, authentication method,
    JWKS URL and back-channel logout URL (its id when it is new)."""
    grants = request.form.getlist("autorisations")
    filled = Filled(
        {
            "client_id": existing.client_id if existing else field_text("client_id", limit=200),
            "redirections": field_lines("redirections"),
            "origines": field_lines("origines"),
            "autorisations": [g for g in grants if g in GRANTS] if len(grants) <= 10 else [],
            "authentification": field_text("authentification", limit=40),
            "jwks_uri": field_text("jwks_uri"),
            "deconnexion": field_text("deconnexion"),
        }
    )
    values = filled.values
    if len(values["autorisations"]) != len(grants):
        filled.errors.add(_("Type d'autorisation inconnu."), "autorisations")
    if not values["autorisations"]:
        filled.errors.add(_("Choisissez au moins un type d'autorisation."), "autorisations")
    if filled.errors:
        return None, filled
    settings = ClientSettings(
        client_id=values["client_id"],
        redirect_uris=values["redirections"],
        origins=values["origines"],
        grants=values["autorisations"],
        token_auth=values["authentification"],
        jwks=existing.jwks if existing else None,
        jwks_uri=values["jwks_uri"] or None,
        scopes=tuple(existing.scopes) if existing else ("openid", "profile"),
        backchannel_logout_uri=values["deconnexion"],
    )
    return settings, filled


def client_values(client: OAuthClient | None) -> dict[str, Any]:
    """The client form filled with the client's settings (a new client's defaults)."""
    if client is None:
        return {"autorisations": ["authorization_code"], "authentification": "none"}
    return {
        "client_id": client.client_id,
        "redirections": list(client.redirect_uris or []),
        "origines": list(client.origins or []),
        "autorisations": list(client.grant_types or []),
        "authentification": client.token_endpoint_auth_method,
        "jwks_uri": client.jwks_uri or "",
        "deconnexion": client.backchannel_logout_uri or "",
    }


def same_client(client: OAuthClient, *, new_secret: bool) -> ClientSettings:
    """The client's own settings (to give it a new secret and change nothing else)."""
    return ClientSettings(
        client_id=client.client_id,
        redirect_uris=list(client.redirect_uris or []),
        origins=list(client.origins or []),
        grants=list(client.grant_types or []),
        token_auth=client.token_endpoint_auth_method,
        jwks=client.jwks,
        jwks_uri=client.jwks_uri,
        scopes=list(client.scopes or []),
        new_secret=new_secret,
    )


def applied(
    session: Session, change: Callable[[], T], filled: Filled, prefixes: dict[str, str]
) -> T | None:
    """Run a registry change; on refusal roll everything back and note the reason beside
    its field (or for the whole form). The caller commits on success."""
    try:
        return change()
    except DirectoryError as exc:
        session.rollback()
        reason = _("Opération refusée : {reason}.", reason=exc.message)
        filled.errors.add(reason, attributed(exc.message, prefixes))
        # a name in the form that names nothing is bad input, not a missing page
        filled.values["status"] = 400 if isinstance(exc, NotFound) else exc.http_status
        return None
    except IntegrityError:  # another change took the same name or id meanwhile
        session.rollback()
        filled.errors.add(_("Opération refusée : conflit avec un autre changement."), None)
        filled.values["status"] = 409
        return None


def edited(
    name: str, settings: PartnerSettings, filled: Filled, prefixes: dict[str, str]
) -> registry.Registered | None:
    """:func:`partners.services.edit_partner` by the operator (see :func:`applied`)."""
    session = db.session()
    return applied(
        session,
        lambda: registry.edit_partner(
            session, name, settings, actor=operator().id, address=address()
        ),
        filled,
        prefixes,
    )
