"""Partner registry services: register, edit and look up partners and their clients.

Every input is validated before anything changes; errors are
:class:`rcd_store.errors.DirectoryError` with a French message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partners.models import TOKEN_FORMATS, OAuthClient, Partner, SamlServiceProvider
from partners.saml_metadata import imported as imported_metadata
from partners.saml_metadata import status as metadata_status
from partners.theme import merge_theme
from partners.urls import checked_url
from rcd_store import audit
from rcd_store.errors import DirectoryError, Duplicate, NotFound
from rcd_store.models import Service, partner_key
from rcd_store.services import get_service
from token_suite.metadata import BINDING_POST

GRANTS = (
    "authorization_code",
    "client_credentials",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:token-exchange",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
)
TOKEN_AUTH = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
CLAIMS = ("email",)
MAX_NAVIGATION_LIFETIME = 300
_NAME = re.compile(r"^[\w][\w .'&()-]{0,99}$")


def default_identifier(name: str) -> str:
    """The identifier of a partner with neither SAML metadata nor client id."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return f"urn:interops:partenaire:{slug}"


def hash_secret(secret: str) -> str:
    """SHA-256 of a generated 256-bit client secret (high entropy: no slow hash needed)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(stored_hash: str | None, secret: str) -> bool:
    """Constant-time comparison of a presented client secret with its stored hash."""
    return stored_hash is not None and hmac.compare_digest(stored_hash, hash_secret(secret))


@dataclass
class ClientSettings:
    client_id: str
    redirect_uris: Sequence[str] = ()
    origins: Sequence[str] = ()
    grants: Sequence[str] = ()
    token_auth: str = "client_secret_basic"
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    scopes: Sequence[str] = ("openid", "profile")
    frontchannel_logout_uri: str | None = None
    #: "" removes it
    backchannel_logout_uri: str | None = None
    #: replace the client's secret by a new one (the old one is refused from then on)
    new_secret: bool = False


@dataclass
class PartnerSettings:
    name: str
    saml_metadata: bytes | None = None
    #: where ``saml_metadata`` was fetched, to fetch it again on a schedule (None: a file)
    saml_metadata_url: str | None = None
    #: the partner's certificates (PEM) for its metadata's signature (None: unchanged)
    metadata_signing_pem: Sequence[str] | None = None
    #: seconds between two fetches of ``saml_metadata_url`` (None: every 6 hours)
    metadata_refresh_seconds: float | None = None
    client: ClientSettings | None = None
    services: Sequence[str] = ()
    landing_url: str | None = None
    token_format: str | None = None
    token_lifetime: int | None = None
    skew: int | None = None
    claims: Sequence[str] = ()
    trusted_portal: bool | None = None
    api_audience: str | None = None
    identifier: str | None = None
    #: RFC 8935 push receiver of its security events ("" removes it: pull only)
    event_receiver_url: str | None = None
    #: the widget theme's changes (partners.theme.merge_theme: "" removes a value)
    theme: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Registered:
    partner: Partner
    client_secret: str | None


def _same_name(a: str, b: str) -> bool:
    return partner_key(a) == partner_key(b)


def get_partner(session: Session, name: str) -> Partner:
    """The partner named ``name``, whatever its case and accents' case (SQLite's lower()
    only folds ASCII, so the comparison is made here)."""
    found = session.scalars(select(Partner).where(Partner.name == name.strip())).first()
    if found is None:
        found = next(
            (p for p in session.scalars(select(Partner)) if _same_name(p.name, name)), None
        )
    if found is None:
        raise NotFound(f"partenaire inconnu : {name!r} (ajoutez-le avec « idp partner add »)")
    return found


def partner_by_identifier(session: Session, identifier: str) -> Partner | None:
    return session.scalars(select(Partner).where(Partner.identifier == identifier)).first()


def client_by_id(session: Session, client_id: str) -> OAuthClient | None:
    return session.scalars(select(OAuthClient).where(OAuthClient.client_id == client_id)).first()


def _saml(partner: Partner, s: PartnerSettings) -> SamlServiceProvider:
    return imported_metadata(
        partner.saml,
        s.saml_metadata,
        url=s.saml_metadata_url,
        signing_pem=s.metadata_signing_pem,
        refresh_seconds=s.metadata_refresh_seconds,
    )


def post_acs(sp: SamlServiceProvider | None) -> list[dict[str, Any]]:
    """The SP's registered HTTP-POST assertion consumer services: the only ones a token
    is ever posted to (never an address taken from a request alone: assertion theft)."""
    return [] if sp is None else [a for a in sp.acs or [] if a.get("binding") == BINDING_POST]


def default_acs(sp: SamlServiceProvider | None) -> str | None:
    """The one ACS chooser: the SP's default HTTP-POST ACS (``isDefault``, else the lowest
    ``index``), or None when it registered none."""
    candidates = post_acs(sp)
    if not candidates:
        return None
    return str(min(candidates, key=lambda a: (not a.get("default"), a.get("index") or 0))["url"])


def _client(
    session: Session, partner: Partner, settings: ClientSettings
) -> tuple[OAuthClient, str | None]:
    client_id = settings.client_id.strip()
    if not re.fullmatch(r"[A-Za-z0-9._:/-]{3,200}", client_id):
        raise DirectoryError(f"identifiant de client invalide : {client_id!r}")
    with session.no_autoflush:
        existing = client_by_id(session, client_id)
    if existing is not None and existing.partner_id != partner.id:
        raise Duplicate(f"client déjà enregistré pour un autre partenaire : {client_id}")
    if settings.token_auth not in TOKEN_AUTH:
        raise DirectoryError(
            f"méthode d'authentification inconnue : {settings.token_auth!r} "
            f"({', '.join(TOKEN_AUTH)})"
        )
    unknown = [g for g in settings.grants if g not in GRANTS]
    if unknown:
        raise DirectoryError(f"type d'autorisation inconnu : {unknown[0]!r}")
    grants = list(dict.fromkeys(settings.grants or ["authorization_code"]))
    if settings.token_auth == "none" and set(grants) - {"authorization_code", "refresh_token"}:
        raise DirectoryError("un client public n'a droit qu'à authorization_code (avec PKCE)")
    if settings.token_auth == "private_key_jwt" and not (settings.jwks or settings.jwks_uri):
        raise DirectoryError("private_key_jwt exige --jwks (fichier ou URL)")
    if "authorization_code" in grants and not settings.redirect_uris:
        raise DirectoryError("authorization_code exige au moins une --redirect-uri")
    client = existing or OAuthClient(client_id=client_id)
    client.redirect_uris = [checked_url(u, "redirect_uri") for u in settings.redirect_uris]
    client.origins = [checked_url(o, "origine", allow_path=False) for o in settings.origins]
    client.grant_types = grants
    client.token_endpoint_auth_method = settings.token_auth
    client.scopes = list(dict.fromkeys(settings.scopes))
    client.jwks = settings.jwks
    client.jwks_uri = checked_url(settings.jwks_uri, "jwks_uri") if settings.jwks_uri else None
    if settings.frontchannel_logout_uri is not None:
        uri = settings.frontchannel_logout_uri.strip()
        client.frontchannel_logout_uri = (
            checked_url(uri, "frontchannel_logout_uri") if uri else None
        )
    if settings.backchannel_logout_uri is not None:
        uri = settings.backchannel_logout_uri.strip()
        client.backchannel_logout_uri = checked_url(uri, "backchannel_logout_uri") if uri else None
    secret = None
    if settings.token_auth in ("client_secret_basic", "client_secret_post") and (
        existing is None or existing.client_secret_hash is None or settings.new_secret
    ):
        secret = secrets.token_urlsafe(32)
        client.client_secret_hash = hash_secret(secret)
    elif settings.token_auth not in ("client_secret_basic", "client_secret_post"):
        client.client_secret_hash = None
    return client, secret


def _apply(session: Session, partner: Partner, s: PartnerSettings) -> str | None:
    if s.saml_metadata is not None or s.metadata_signing_pem is not None:
        partner.saml = _saml(partner, s)
    secret = None
    if s.client is not None:
        client, secret = _client(session, partner, s.client)
        if client not in partner.clients:
            partner.clients.append(client)
    if s.services:
        partner.services = [get_service(session, code) for code in dict.fromkeys(s.services)]
    if s.landing_url is not None:
        partner.landing_url = checked_url(s.landing_url, "URL d'arrivée")
    if s.token_format is not None:
        if s.token_format not in TOKEN_FORMATS:
            raise DirectoryError(f"format de jeton inconnu : {s.token_format!r} (saml ou jwt)")
        partner.token_format = s.token_format
    if s.token_lifetime is not None:
        if not 30 <= s.token_lifetime <= MAX_NAVIGATION_LIFETIME:
            raise DirectoryError("durée de vie des jetons : entre 30 et 300 secondes")
        partner.token_lifetime_seconds = s.token_lifetime
    if s.skew is not None:
        if not 0 <= s.skew <= 300:
            raise DirectoryError("tolérance d'horloge : entre 0 et 300 secondes")
        partner.clock_skew_seconds = s.skew
    if s.claims:
        unknown = [c for c in s.claims if c not in CLAIMS]
        if unknown:
            raise DirectoryError(f"attribut inconnu : {unknown[0]!r} ({', '.join(CLAIMS)})")
        partner.claims = list(dict.fromkeys(s.claims))
    if s.trusted_portal is not None:
        partner.trusted_portal = s.trusted_portal
    if s.api_audience is not None:
        partner.api_audience = s.api_audience.strip() or None
    if s.event_receiver_url is not None:
        url = s.event_receiver_url.strip()
        partner.event_receiver_url = checked_url(url, "récepteur d'événements") if url else None
    if s.theme is not None:
        partner.theme = merge_theme(partner.theme, s.theme) or None
    return secret


def _identifier(partner: Partner, s: PartnerSettings) -> str:
    if s.identifier:
        return s.identifier.strip()
    if partner.saml is not None:
        return partner.saml.entity_id
    if partner.clients:
        return partner.clients[0].client_id
    return default_identifier(partner.name)


def _trail(partner: Partner, address: str | None) -> dict[str, Any]:
    """The audited settings, with the actor's address when a web page made the change."""
    data = describe(partner)
    return data if address is None else {**data, "address": address}


def add_partner(
    session: Session,
    settings: PartnerSettings,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> Registered:
    """Register a partner organism with its SAML SP, OAuth client and services."""
    name = " ".join(settings.name.split())
    if not _NAME.match(name):
        raise DirectoryError(f"nom de partenaire invalide : {settings.name!r}")
    if any(_same_name(existing, name) for existing in session.scalars(select(Partner.name))):
        raise Duplicate(f"partenaire déjà enregistré : {name}")
    partner = Partner(
        name=name,
        identifier="",
        claims=[],
        token_format="saml",
        token_lifetime_seconds=300,
        clock_skew_seconds=60,
        trusted_portal=False,
    )
    session.add(partner)
    secret = _apply(session, partner, settings)
    partner.identifier = _identifier(partner, settings)
    _check_identifier_free(session, partner)
    session.flush()
    audit.record(
        session, "partner.added", actor=actor, target=partner.name, data=_trail(partner, address)
    )
    return Registered(partner, secret)


def edit_partner(
    session: Session,
    name: str,
    settings: PartnerSettings,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> Registered:
    """Change a partner's settings (only what ``settings`` gives)."""
    partner = get_partner(session, name)
    secret = _apply(session, partner, settings)
    if settings.identifier or settings.saml_metadata is not None:
        partner.identifier = _identifier(partner, settings)
    _check_identifier_free(session, partner)
    session.flush()
    audit.record(
        session, "partner.edited", actor=actor, target=partner.name, data=_trail(partner, address)
    )
    return Registered(partner, secret)


def remove_client(
    session: Session,
    name: str,
    client_id: str,
    *,
    actor: str | None = None,
    address: str | None = None,
) -> Partner:
    """Delete one OAuth client of the partner (its tokens are refused from then on)."""
    partner = get_partner(session, name)
    client = next((c for c in partner.clients if c.client_id == client_id), None)
    if client is None:
        raise NotFound(f"client inconnu pour {partner.name} : {client_id!r}")
    partner.clients.remove(client)
    session.flush()
    audit.record(
        session, "partner.edited", actor=actor, target=partner.name, data=_trail(partner, address)
    )
    return partner


def _check_identifier_free(session: Session, partner: Partner) -> None:
    other = partner_by_identifier(session, partner.identifier)
    if other is not None and other is not partner:
        raise Duplicate(f"identifiant déjà utilisé par {other.name} : {partner.identifier}")
    if partner.saml is not None:
        clash = session.scalars(
            select(SamlServiceProvider).where(
                SamlServiceProvider.entity_id == partner.saml.entity_id
            )
        ).first()
        if clash is not None and clash is not partner.saml:
            raise Duplicate(f"entityID déjà enregistré : {partner.saml.entity_id}")
    _check_api_audience(session, partner)


def _check_api_audience(session: Session, partner: Partner) -> None:
    """An API audience names an API only: never a partner's identifier (navigation
    tokens carry those) nor a client id (ID tokens carry those), never another
    partner's API. Stops a token minted for one use from being accepted for another."""
    audience = partner.api_audience
    if audience and (
        audience == partner.identifier
        or audience in {c.client_id for c in partner.clients}
        or session.scalar(select(Partner.id).where(Partner.identifier == audience)) is not None
        or session.scalar(select(OAuthClient.id).where(OAuthClient.client_id == audience))
        is not None
    ):
        raise DirectoryError(
            f"audience d'API invalide : {audience} est déjà l'identifiant d'un partenaire "
            "ou d'un client ; choisissez l'adresse de l'API"
        )
    for value, what in (
        (audience, "audience d'API déjà utilisée par"),
        (partner.identifier, "identifiant déjà utilisé comme audience d'API par"),
    ):
        if not value:
            continue
        other = session.scalars(select(Partner).where(Partner.api_audience == value)).first()
        if other is not None and other is not partner:
            raise Duplicate(f"{what} {other.name} : {value}")


def describe(partner: Partner) -> dict[str, Any]:
    """The partner's settings as JSON (no secret)."""
    return {
        "name": partner.name,
        "identifier": partner.identifier,
        "landing_url": partner.landing_url,
        "token_format": partner.token_format,
        "token_lifetime": partner.token_lifetime_seconds,
        "skew": partner.clock_skew_seconds,
        "claims": list(partner.claims or []),
        "trusted_portal": partner.trusted_portal,
        "api_audience": partner.api_audience,
        "services": [s.code for s in partner.services],
        "event_receiver_url": partner.event_receiver_url,
        "theme": partner.theme,
        "saml": None
        if partner.saml is None
        else {
            "entity_id": partner.saml.entity_id,
            "acs": partner.saml.acs,
            "slo": partner.saml.slo,
            "authn_requests_signed": partner.saml.authn_requests_signed,
            **metadata_status(partner.saml),
        },
        "clients": [
            {
                "client_id": c.client_id,
                "token_auth": c.token_endpoint_auth_method,
                "redirect_uris": c.redirect_uris,
                "origins": c.origins,
                "grants": c.grant_types,
                "frontchannel_logout_uri": c.frontchannel_logout_uri,
                "backchannel_logout_uri": c.backchannel_logout_uri,
            }
            for c in partner.clients
        ],
    }


def list_partners(session: Session) -> list[Partner]:
    return list(session.scalars(select(Partner).order_by(Partner.name)))


def services_of(session: Session, partner: Partner) -> list[Service]:
    """The services whose habilitations and PAGM the partner may receive: those named at
    registration, and those it hosts (``idp service add --partner NAME``)."""
    hosted = session.scalars(
        select(Service).where(Service.partner_key == partner_key(partner.name))
    )
    merged = {s.id: s for s in [*partner.services, *hosted]}
    return sorted(merged.values(), key=lambda s: s.code)
