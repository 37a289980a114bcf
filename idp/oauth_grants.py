"""Application-to-application grants at the token endpoint (Interops-A over OAuth 2).

Registered on the Authlib server of :mod:`idp.oauth_server` by :func:`register`:

- ``client_credentials`` (RFC 6749 4.4): a machine token, ``sub`` = the client_id.
- ``refresh_token`` (RFC 6749 6) with rotation and reuse detection.
- token exchange (RFC 8693): a partner API trades the declarant's token it received for
  one aimed at another partner's API, narrowed, with ``act``.
- JWT bearer (RFC 7523 2.1): a partner asserts a declarant it has authenticated.

Every access token is an Interops-R JWT from :func:`idp.oauth_server.issue_access_token`.

Decisions (documented here, tested in tests/idp/test_oauth_a2a*.py):

*Service agreement.* A client acts under its partner's agreement: the services the
partner may receive (:func:`partners.services.services_of`). A token may be aimed
(RFC 8707 ``resource``, or RFC 8693 ``audience``) at the client's own audiences (its
partner's ``api_audience`` or identifier, or ``<issuer>/api``), speaking of all those
services; or at another partner B (by B's ``api_audience`` or identifier) when both
partners receive at least one common service, and then speaking of the common services
only. Anything else is ``invalid_target`` (stops a client from minting tokens for APIs
it has no business calling).

*Machine tokens* (``client_credentials``): ``sub`` = client_id; no habilitations (a
machine holds no establishment); ``pagm`` = the PAGM agreed for the role DECLARANT on
the target's services (the agreement lets the machine do what a declarant of those
services may); ``acr`` = :data:`MACHINE_ACR`, no ``auth_time``: no person was
authenticated, so a service demanding a human level of authentication (check 6 of the
profile) refuses it.

*JWT bearer*: the declarant was authenticated by the partner, not by us: ``acr`` =
:data:`ASSERTED_ACR`, no ``auth_time``; the declarant must hold an active habilitation
on one of the partner's services (stops a partner from obtaining tokens for people it
does not serve).

``amr`` is empty for these two ``acr`` values (no person authenticated here).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import (
    BaseGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    TokenEndpointMixin,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7523 import JWTBearerGrant
from flask import current_app
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from idp import db
from idp.models import IssuedToken
from idp.oauth_clients import (
    ASSERTION_MAX_LIFETIME,
    AUTH_METHODS,
    SIGNING_ALGS,
    Client,
    default_audience,
    digest,
    issuer,
    query_client,
)
from idp.oauth_server import OAuthServer, ResourceOwner, issue_access_token, owner_vector
from idp.replay import replay_cache
from idp.signing import keyring
from idp.tokens import vector_for
from keys.jwks import jwks
from keys.model import KeyUse
from partners.models import OAuthClient, Partner
from partners.services import services_of
from rcd_store import audit
from rcd_store.db import rows_affected
from rcd_store.models import Declarant, DeclarantStatus, Service, ServicePagm
from rcd_store.services import active_habilitations
from token_suite import jwt as interops_jwt
from token_suite.errors import InteropsError
from token_suite.jwt import trust_from_jwks
from token_suite.trust import Trust
from token_suite.vector import ACR_LEVELS, IdentityVector

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
#: ``acr`` of a machine token: no person authenticated
MACHINE_ACR = "urn:interops:acr:machine"
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


def requested_target(request: OAuth2Request, *names: str) -> str | None:
    """The one audience asked for (RFC 8707 ``resource``, RFC 8693 ``audience``)."""
    values = {v.strip() for name in names for v in request.form.getlist(name) if v.strip()}
    if len(values) > 1:
        raise InvalidTargetError("Une seule ressource par jeton.")
    return values.pop() if values else None


def _partner_for(session: Session, audience: str) -> Partner | None:
    return session.scalars(
        select(Partner).where(or_(Partner.api_audience == audience, Partner.identifier == audience))
    ).first()


def resolve_target(session: Session, client: OAuthClient, requested: str | None) -> Target:
    """The audience a token of ``client`` may carry, by its service agreement (module
    docstring); ``invalid_target`` for an unknown resource or one without agreement."""
    own = client.partner
    own_services = tuple(services_of(session, own))
    if requested is None or requested in (default_audience(own), f"{issuer()}/api"):
        return Target(requested or default_audience(own), own_services, own)
    other = _partner_for(session, requested)
    if other is None:
        raise InvalidTargetError("Ressource inconnue.")
    if other.id == own.id:
        return Target(requested, own_services, own)
    theirs = {s.id for s in services_of(session, other)}
    shared = tuple(s for s in own_services if s.id in theirs)
    if not shared:
        raise InvalidTargetError("Aucun accord de service avec cette ressource.")
    return Target(requested, shared, other)


def declarant_pagm(session: Session, services: tuple[Service, ...]) -> tuple[str, ...]:
    """The PAGM agreed for the role DECLARANT on ``services`` (identity-only ones excluded)."""
    ids = [s.id for s in services if not s.identity_only]
    if not ids:
        return ()
    rows = session.scalars(
        select(ServicePagm.pagm).where(
            ServicePagm.service_id.in_(ids), ServicePagm.role == "DECLARANT"
        )
    )
    return tuple(sorted(set(rows)))


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


def _now() -> datetime:
    return datetime.now(UTC)


def bearer(token: str, row: IssuedToken, now: datetime) -> dict[str, Any]:
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
    session, now = db.session(), _now()
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
        client: OAuthClient = self.request.client.row
        session, now = db.session(), _now()
        scope = checked_scope(client, self.request.payload.scope)
        target = resolve_target(session, client, requested_target(self.request, "resource"))
        vector = IdentityVector(
            subject=client.client_id,
            acr=MACHINE_ACR,
            pagm=declarant_pagm(session, target.services),
        )
        token, row = issue_access_token(
            session, client, None, scope, now=now, audience=target.audience, vector=vector
        )
        body = bearer(token, row, now)
        self.save_token(body)
        return 200, body, self.TOKEN_RESPONSE_HEADER


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
        session, now = db.session(), _now()
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
        session, now, row = db.session(), _now(), refresh_token.row
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
        declarant = session.get(Declarant, row.subject)
        if declarant is None or declarant.status != DeclarantStatus.ACTIVE.value:
            raise InvalidGrantError("Declarant inactif.")
        return ResourceOwner(
            row.subject, row.auth_time or row.issued_at, row.acr or ACR_LEVELS[0], None
        )

    def issue_token(self, user: ResourceOwner, refresh_token: StoredRefresh) -> dict[str, Any]:
        old, session, now = refresh_token.row, db.session(), _now()
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


# ------------------------------------------------------------------ token exchange


class _NoReplay:
    """An access token is presented many times until it expires: no replay check."""

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        return False


def own_trust() -> Trust:
    """Our published JWT keys, as any partner sees them."""
    return trust_from_jwks(jwks(keyring().published(KeyUse.JWT)), issuer=issuer())


def verify_own_access_token(session: Session, token: str) -> tuple[IdentityVector, IssuedToken]:
    """One of our live access tokens: recorded, not revoked, and verified by
    :func:`token_suite.jwt.verify` against our JWKS (stops forged, foreign, expired
    and revoked subject tokens); ``invalid_grant`` otherwise."""
    row = session.scalars(
        select(IssuedToken).where(IssuedToken.token_hash == digest(token))
    ).first()
    if (
        row is None
        or row.kind != "access"
        or row.revoked_at is not None
        or not row.audience
        or row.expires_at <= _now()
    ):
        raise InvalidGrantError("subject_token inconnu, expire ou revoque.")
    try:
        vector = interops_jwt.verify(
            token,
            trust=own_trust(),
            audience=row.audience,
            issuer=issuer(),
            typ="at+jwt",
            replay=_NoReplay(),
        )
    except InteropsError as exc:
        raise InvalidGrantError(f"subject_token refuse : {exc.reason}") from exc
    return vector, row


def _may_exchange(session: Session, client: OAuthClient, row: IssuedToken) -> bool:
    """A client exchanges only tokens meant for its partner: issued to one of the
    partner's clients, or aimed at the partner's own API (stops a partner from
    exchanging tokens it intercepted elsewhere)."""
    partner = client.partner
    if row.audience in {partner.api_audience, partner.identifier} - {None}:
        return True
    holder = session.scalars(
        select(OAuthClient).where(OAuthClient.client_id == row.client_id)
    ).first()
    return holder is not None and holder.partner_id == partner.id


def narrowed(
    session: Session, subject: IdentityVector, target: Target, scope: str
) -> IdentityVector:
    """The subject's vector for ``target``: rights of the target's services, and among
    them only those the subject token carried (never more than either)."""
    pagm = set(subject.pagm)
    declarant = session.get(Declarant, subject.subject)
    if declarant is not None and declarant.status == DeclarantStatus.ACTIVE.value:
        fresh = vector_for(session, declarant, list(target.services), acr=subject.acr)
        carried = set(subject.habilitations)
        rights = tuple(h for h in fresh.habilitations if h in carried)
        codes = tuple(p for p in fresh.pagm if p in pagm)
    else:
        rights, codes = (), tuple(p for p in declarant_pagm(session, target.services) if p in pagm)
    email = subject.email if "email" in (target.partner.claims or []) else None
    return replace(subject, pagm=codes, habilitations=rights, email=email, claims={})


class TokenExchange(BaseGrant, TokenEndpointMixin):  # type: ignore[misc]
    """RFC 8693: ``subject_token`` = one of our access tokens meant for the client's
    partner; ``resource``/``audience`` = another partner's API under a service
    agreement (``invalid_target`` otherwise). The new token: aud = that resource, PAGM
    and habilitations narrowed (:func:`narrowed`), ``act`` = the exchanging client
    (nested over an earlier ``act``), never outliving the subject token."""

    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("Echange de jetons non autorise pour ce client.")
        form = self.request.form
        if not form.get("subject_token"):
            raise InvalidRequestError("subject_token manquant.")
        if form.get("subject_token_type") not in (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
            raise InvalidRequestError("subject_token_type non pris en charge.")
        if form.get("requested_token_type") not in (None, ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE):
            raise InvalidRequestError("requested_token_type non pris en charge.")
        if form.get("actor_token"):
            raise InvalidRequestError("actor_token non pris en charge.")
        self.request.client = client

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: OAuthClient = self.request.client.row
        session, now = db.session(), _now()
        subject, row = verify_own_access_token(session, self.request.form["subject_token"])
        if not _may_exchange(session, client, row):
            raise InvalidGrantError("subject_token destine a un autre partenaire.")
        requested = requested_target(self.request, "resource", "audience")
        if requested is None:
            raise InvalidRequestError("resource ou audience requis.")
        target = resolve_target(session, client, requested)
        scope = checked_scope(client, self.request.payload.scope or row.scope, within=row.scope)
        vector = narrowed(session, subject, target, scope)
        act: dict[str, Any] = {"sub": client.client_id}
        if isinstance(subject.claims.get("act"), dict):
            act["act"] = subject.claims["act"]
        owner = (
            ResourceOwner(subject.subject, subject.auth_time, subject.acr)
            if subject.auth_time
            else None
        )
        token, new = issue_access_token(
            session,
            client,
            owner,
            scope,
            now=now,
            audience=target.audience,
            vector=vector,
            extra_claims={"act": act},
            family=row.family,
            lifetime=row.expires_at - now,
        )
        body = bearer(token, new, now)
        body["issued_token_type"] = ACCESS_TOKEN_TYPE
        self.save_token(body)
        return 200, body, self.TOKEN_RESPONSE_HEADER


# ---------------------------------------------------------------------- jwt bearer


class JwtBearer(JWTBearerGrant):  # type: ignore[misc]
    """RFC 7523 2.1: an assertion signed with a key of the client's registered JWKS,
    ``iss`` = client_id, ``sub`` = a declarant it serves, ``aud`` = our token endpoint,
    at most 10 minutes, ``jti`` once (shared replay cache: stops a replayed assertion)."""

    def get_audiences(self) -> list[str]:
        return [f"{issuer()}/oauth/token", issuer()]

    def resolve_issuer_client(self, issuer_id: str) -> Client | None:
        return query_client(issuer_id)

    def resolve_client_public_key(self, client: Client) -> KeySet:
        return KeySet.import_key_set(client.row.jwks or {"keys": []})  # type: ignore[arg-type]

    def process_assertion_claims(self, assertion: str) -> dict[str, Any]:
        _headers, claims = self.extract_assertion(assertion)
        client = (
            self.resolve_issuer_client(claims.get("iss"))
            if isinstance(claims.get("iss"), str)
            else None
        )
        if client is None:
            raise InvalidGrantError("Emetteur de l'assertion inconnu.")
        try:
            token = jose_jwt.decode(
                assertion, self.resolve_client_public_key(client), algorithms=SIGNING_ALGS
            )
        except (JoseError, ValueError) as exc:
            raise InvalidGrantError("Assertion invalide.") from exc
        self.verify_claims(token.claims)
        self._check_fresh(dict(token.claims))
        return dict(token.claims)

    def _check_fresh(self, claims: dict[str, Any]) -> None:
        jti, exp, sub = claims.get("jti"), claims.get("exp"), claims.get("sub")
        if (
            not isinstance(jti, str)
            or not jti
            or not isinstance(exp, int)
            or not isinstance(sub, str)
        ):
            raise InvalidGrantError("Assertion sans jti, exp ou sub.")
        expires = datetime.fromtimestamp(exp, UTC)
        if expires - _now() > ASSERTION_MAX_LIFETIME:
            raise InvalidGrantError("Assertion trop longue (10 min au plus).")
        key = f"jwt-bearer:{digest(str(claims['iss']))}:{digest(jti)}"
        if replay_cache().seen(key, expires_at=expires + timedelta(seconds=self.LEEWAY)):
            raise InvalidGrantError("Assertion deja presentee.")

    def authenticate_user(self, subject: str) -> Declarant | None:
        declarant = db.session().get(Declarant, subject)
        if declarant is None or declarant.status != DeclarantStatus.ACTIVE.value:
            return None
        return declarant

    def has_granted_permission(self, client: Client, user: Declarant) -> bool:
        session = db.session()
        services = {s.id for s in services_of(session, client.row.partner)}
        if not any(h.service_id in services for h in active_habilitations(session, user.id)):
            raise InvalidGrantError("Ce declarant n'a pas d'habilitation chez ce partenaire.")
        return True

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client: OAuthClient = self.request.client.row
        declarant: Declarant | None = self.request.user
        if declarant is None:
            raise InvalidGrantError("Assertion sans declarant (sub).")
        session, now = db.session(), _now()
        scope = checked_scope(client, self.request.payload.scope)
        owner = ResourceOwner(declarant.id, now, ASSERTED_ACR)
        vector = replace(owner_vector(session, owner, client.partner, scope), auth_time=None)
        token, row = issue_access_token(session, client, None, scope, now=now, vector=vector)
        body = bearer(token, row, now)
        self.save_token(body)
        return 200, body, self.TOKEN_RESPONSE_HEADER


# ------------------------------------------------------------------------ wiring


def register(server: OAuthServer) -> OAuthServer:
    """Add the application-to-application grants and the refresh-token generator."""
    server.register_token_generator("default", generate_tokens)
    for grant in (ClientCredentials, RefreshGrant, TokenExchange, JwtBearer):
        server.register_grant(grant)
    return server
