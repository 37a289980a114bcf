"""Application-to-application grants at the token endpoint (Interops-A over OAuth 2).

Registered on the Authlib server of :mod:`idp.oidc.server` by :func:`register`:

- ``client_credentials`` (RFC 6749 4.4): a machine token, ``sub`` = the client_id.
- ``refresh_token`` (RFC 6749 6) with rotation and reuse detection.
- token exchange (RFC 8693) and JWT bearer (RFC 7523 2.1), in :mod:`idp.oidc.exchange`,
  built on the targets, scopes and token helpers here.

Every access token is an Interops-R JWT from :func:`idp.oidc.server.issue_access_token`.

Decisions (documented here, tested in tests/idp/test_oauth_a2a*.py):

*Service agreement.* A client acts under its partner's agreement: the services the
partner may receive (:func:`partners.services.services_of`). A token may be aimed
(RFC 8707 ``resource``, or RFC 8693 ``audience``) at the client's own audiences (its
partner's ``api_audience``, or ``<issuer>/api``), speaking of all those services; or at
another partner B's API (B's ``api_audience``) when both partners receive at least one
common service, and then speaking of the common services only. Anything else is
``invalid_target`` (stops a client from minting tokens for APIs it has no business
calling), a partner identifier or a client id above all: those are the audiences of
navigation, DSN login and ID tokens, and an access token carrying one could pass for
them (token confusion).

*Machine tokens* (``client_credentials``): ``sub`` = client_id; no habilitations (a
machine holds no establishment); ``pagm`` = the PAGM agreed for the role DECLARANT on
the target's services (the agreement lets the machine do what a declarant of those
services may); ``acr`` = :data:`MACHINE_ACR`, no ``auth_time``: no person was
authenticated, so a service demanding a human level of authentication (check 6 of the
profile) refuses it.

*JWT bearer*: the declarant was authenticated by the partner, not by us: ``acr`` =
:data:`ASSERTED_ACR`, no ``auth_time``; the declarant must be one the partner may
assert (:mod:`idp.auth.asserted`, the rule inbound trust applies too: active, not locked,
holding an active habilitation on one of the partner's services; stops a partner from
obtaining tokens for people it does not serve).

``amr`` is empty for these two ``acr`` values (no person authenticated here).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidScopeError,
)
from authlib.oauth2.rfc6749.grants import (
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from idp.auth.asserted import NotAssertable, acting
from idp.oidc import registry
from idp.oidc.clients import (
    AUTH_METHODS,
    Client,
    default_audience,
    digest,
    issuer,
)
from idp.oidc.server import OAuthServer, ResourceOwner, issue_access_token
from idp.stores import db
from idp.stores.models import IssuedToken
from idp.tokens.issuing import MACHINE_ACR, AccessRecord, token_service
from partners.models import OAuthClient, Partner
from rcd_store import audit
from rcd_store.db import rows_affected
from rcd_store.models import Declarant, Service
from token_suite.vector import ACR_LEVELS, IdentityVector

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
#: ``acr`` of a JWT-bearer token: a person authenticated by the asserting partner
ASSERTED_ACR = "urn:interops:acr:partner-assertion"
DEFAULT_REFRESH_LIFETIME = timedelta(hours=24)
#: clients that prove who they are (no public client at these grants)
CONFIDENTIAL_METHODS = [m for m in AUTH_METHODS if m != "none"]


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707 2: the requested resource is unknown or not allowed for this client."""

    error = "invalid_target"
    status_code = 400


# ------------------------------------------------------------------------ targets


@dataclass(frozen=True)
class Target:
    """Where a token is aimed: its ``aud`` and the services it may speak of."""

    audience: str
    services: tuple[Service, ...]
    partner: Partner


def requested_target(form: MultiDict[str, str], *names: str) -> str | None:
    """The one audience asked for (RFC 8707 ``resource``, RFC 8693 ``audience``) in the
    request's ``form``."""
    values = {v.strip() for name in names for v in form.getlist(name) if v.strip()}
    if len(values) > 1:
        raise InvalidTargetError("Une seule ressource par jeton.")
    return values.pop() if values else None


def resolve_target(client: OAuthClient, requested: str | None) -> Target:
    """The audience a token of ``client`` may carry, by its service agreement (module
    docstring): a registered API audience (``<issuer>/api`` or a partner's
    ``api_audience``) only; ``invalid_target`` for anything else (a partner identifier or
    a client id above all: stops token confusion) or an API without agreement."""
    own = client.partner
    own_services = registry.partner_services(own)
    if requested is None:
        return Target(default_audience(own), own_services, own)
    if registry.names_a_party(requested):
        raise InvalidTargetError("Ressource inconnue : seules les API enregistrees sont permises.")
    if requested in (default_audience(own), f"{issuer()}/api"):
        return Target(requested, own_services, own)
    other = registry.partner_by_api(requested)
    if other is None:
        raise InvalidTargetError("Ressource inconnue.")
    if other.id == own.id:
        return Target(requested, own_services, own)
    theirs = {s.id for s in registry.partner_services(other)}
    shared = tuple(s for s in own_services if s.id in theirs)
    if not shared:
        raise InvalidTargetError("Aucun accord de service avec cette ressource.")
    return Target(requested, shared, other)


def checked_scope(client: OAuthClient, requested: str | None, *, within: str | None = None) -> str:
    """The requested scope, each value registered for the client (and granted before,
    ``within``); ``invalid_scope`` otherwise."""
    wanted = list(dict.fromkeys(scope_to_list(requested) or []))
    allowed = set(client.scopes or [])
    if within is not None:
        allowed &= set(scope_to_list(within) or [])
    if not set(wanted) <= allowed:
        raise InvalidScopeError()
    return " ".join(wanted)


# ------------------------------------------------------------------------- tokens


def now_utc() -> datetime:
    """The current instant (timezone-aware)."""
    return datetime.now(UTC)


def bearer(token: str, row: IssuedToken | AccessRecord, now: datetime) -> dict[str, Any]:
    """The token response body (``_jti`` is taken out by ``save_token``)."""
    return {
        "token_type": "Bearer",
        "access_token": token,
        "scope": row.scope,
        "expires_in": int((row.expires_at - now).total_seconds()),
        "_jti": row.jti,
    }


def refresh_lifetime() -> timedelta:
    seconds = current_app.config.get("REFRESH_TOKEN_LIFETIME_SECONDS")
    return timedelta(seconds=int(seconds)) if seconds else DEFAULT_REFRESH_LIFETIME


def issue_refresh_token(
    session: Session,
    client: OAuthClient,
    owner: ResourceOwner,
    *,
    scope: str,
    audience: str,
    family: str,
    expires_at: datetime,
    now: datetime,
) -> tuple[str, IssuedToken]:
    """An opaque refresh token (256 random bits), stored as its SHA-256 only."""
    token = secrets.token_urlsafe(32)
    row = IssuedToken(
        jti=secrets.token_urlsafe(18),
        kind="refresh",
        client_id=client.client_id,
        subject=owner.declarant_id,
        scope=scope,
        audience=audience,
        family=family,
        token_hash=digest(token),
        issued_at=now,
        expires_at=expires_at,
        acr=owner.acr,
        auth_time=owner.auth_time,
    )
    session.add(row)
    audit.record(
        session,
        "token.issued",
        actor=owner.declarant_id,
        target=client.client_id,
        data={"kind": "refresh", "id": row.jti, "client_id": client.client_id, "family": family},
    )
    return token, row


def generate_tokens(
    grant_type: str,
    client: Client,
    user: ResourceOwner | None = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = True,
) -> dict[str, Any]:
    """Authlib's token generator (the code grant): an access token, and a refresh token
    opening a new family when the client has the ``refresh_token`` grant."""
    session, now = db.session(), now_utc()
    family = secrets.token_urlsafe(16) if include_refresh_token and user is not None else None
    token, row = issue_access_token(session, client.row, user, scope or "", now=now, family=family)
    body = bearer(token, row, now)
    if family is not None and user is not None:
        refresh, refresh_row = issue_refresh_token(
            session,
            client.row,
            user,
            scope=row.scope,
            audience=row.audience or default_audience(client.row.partner),
            family=family,
            expires_at=now + refresh_lifetime(),
            now=now,
        )
        body["refresh_token"] = refresh
        body["_refresh_jti"] = refresh_row.jti
    return body


def revoke_family(session: Session, family: str, *, reason: str, now: datetime) -> int:
    """Revoke every refresh and access token of ``family``."""
    result = session.execute(
        update(IssuedToken)
        .where(IssuedToken.family == family, IssuedToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    audit.record(session, "token.revoked", data={"reason": reason, "family": family})
    return rows_affected(result)


# ------------------------------------------------------------- client credentials


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    """Machine to machine: ``sub`` = client_id, PAGM of the service agreement, aud per
    RFC 8707 (see the module docstring)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        body = machine_token(self.request.client.row, self.request.payload.scope, self.request.form)
        self.save_token(body)
        return 200, body, self.TOKEN_RESPONSE_HEADER


def machine_token(
    client: OAuthClient, scope: str | None, form: MultiDict[str, str]
) -> dict[str, Any]:
    """The token response of a ``client_credentials`` request of the authenticated
    ``client`` (its grant allowed): the requested ``scope`` checked, the ``resource`` of
    ``form`` resolved, the machine vector, one access token whose trace the group commit
    has committed. The one rule of this grant, for :class:`ClientCredentials` and for the
    lean path in front of Flask (:mod:`idp.oidc.lean_token`)."""
    now = now_utc()
    checked = checked_scope(client, scope)
    target = resolve_target(client, requested_target(form, "resource"))
    vector = IdentityVector(
        subject=client.client_id,
        acr=MACHINE_ACR,
        pagm=registry.declarant_pagm(target.services),
    )
    # the request writes nothing else: its token and trace go to the group commit
    token, record = token_service().issue_grouped_access(
        vector, client_id=client.client_id, scope=checked, audience=target.audience, now=now
    )
    return bearer(token, record, now)


# ------------------------------------------------------------------ refresh token


class StoredRefresh:
    """Authlib's view of a refresh :class:`IssuedToken`."""

    def __init__(self, row: IssuedToken) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.row.scope


class RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    """Refresh with rotation: each use marks the token rotated (one atomic UPDATE, so of
    two concurrent uses one wins) and returns a new one of the same family, which keeps
    the family's absolute expiry. A rotated token presented again revokes the whole
    family, refresh and access tokens (stops a stolen refresh token: RFC 9700 4.14)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> StoredRefresh | None:
        session, now = db.session(), now_utc()
        row = session.scalars(
            select(IssuedToken).where(
                IssuedToken.token_hash == digest(refresh_token), IssuedToken.kind == "refresh"
            )
        ).first()
        if row is None or row.expires_at <= now:
            return None
        if row.rotated_at is not None or row.revoked_at is not None:
            if row.family:
                revoke_family(session, row.family, reason="refresh_token_reuse", now=now)
            raise InvalidGrantError("Jeton de rafraichissement deja utilise : famille revoquee.")
        return StoredRefresh(row)

    def authenticate_user(self, refresh_token: StoredRefresh) -> ResourceOwner:
        session, now, row = db.session(), now_utc(), refresh_token.row
        claimed = session.execute(
            update(IssuedToken)
            .where(
                IssuedToken.jti == row.jti,
                IssuedToken.rotated_at.is_(None),
                IssuedToken.revoked_at.is_(None),
            )
            .values(rotated_at=now)
            .execution_options(synchronize_session=False)
        )
        if rows_affected(claimed) != 1:
            if row.family:
                revoke_family(session, row.family, reason="refresh_token_reuse", now=now)
            raise InvalidGrantError("Jeton de rafraichissement deja utilise : famille revoquee.")
        try:
            acting(session.get(Declarant, row.subject))  # active, not locked
        except NotAssertable as refused:
            raise InvalidGrantError(refused.description) from None
        return ResourceOwner(
            row.subject, row.auth_time or row.issued_at, row.acr or ACR_LEVELS[0], None
        )

    def issue_token(self, user: ResourceOwner, refresh_token: StoredRefresh) -> dict[str, Any]:
        old, session, now = refresh_token.row, db.session(), now_utc()
        client: OAuthClient = self.request.client.row
        scope = self.request.payload.scope or old.scope
        token, row = issue_access_token(
            session, client, user, scope, now=now, audience=old.audience, family=old.family
        )
        body = bearer(token, row, now)
        refresh, refresh_row = issue_refresh_token(
            session,
            client,
            user,
            scope=old.scope,
            audience=row.audience or default_audience(client.partner),
            family=old.family or secrets.token_urlsafe(16),
            expires_at=old.expires_at,
            now=now,
        )
        body["refresh_token"] = refresh
        body["_refresh_jti"] = refresh_row.jti
        return body

    def revoke_old_credential(self, refresh_token: StoredRefresh) -> None:
        pass  # rotated atomically in authenticate_user


# ------------------------------------------------------------------------ wiring


def register(server: OAuthServer) -> OAuthServer:
    """Add client credentials, refresh tokens and the refresh-token generator
    (:func:`idp.oidc.exchange.register` adds token exchange and JWT bearer)."""
    server.register_token_generator("default", generate_tokens)
    for grant in (ClientCredentials, RefreshGrant):
        server.register_grant(grant)
    return server
