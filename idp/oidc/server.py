"""The OpenID Connect provider's Authlib ``AuthorizationServer``: clients, grants, tokens.

Built from Authlib's parts (one class per grant, errors carrying their wire code:
docs/architecture.md, "Règles du code" 3): :class:`CodeGrant` (RFC 6749 4.1) with
:class:`OidcCode` (ID tokens) and :class:`Pkce` (RFC 7636, S256 only). Further grants
(client credentials, token exchange) register on the same server with :func:`server`
``.register_grant``; they get Interops-R access tokens from the same generator,
:func:`issue_access_token`, which records every token in ``IssuedToken`` (introspection,
revocation).

Every token is an Interops-R JWT signed by :func:`token_suite.jwt.issue` with the
active JWT key; secrets (codes) are stored as SHA-256 digests only.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from authlib.common.urls import add_params_to_uri
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, current_app
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from idp.oidc import registry
from idp.oidc.clients import (
    AUTH_METHODS,
    Client,
    PrivateKeyJwt,
    authenticate_client_secret_basic,
    client_refused,
    default_audience,
    digest,
    issuer,
    query_client,
)
from idp.oidc.limits import charge_client, count_failure, refuse_held_address
from idp.sessions.store import SsoRecord
from idp.stores import db
from idp.stores.models import AuthorizationCode, IssuedToken
from idp.tokens.issuing import ACCESS_TOKEN_MAX, ID_TOKEN_TYP, token_service, vector_for
from idp.tokens.signing import keyring
from keys.jwks import jwks
from keys.model import KeyUse
from partners.models import OAuthClient, Partner
from rcd_store import audit
from rcd_store.db import rows_affected
from rcd_store.models import Declarant
from token_suite import jwt as interops_jwt
from token_suite.jwt import trust_from_jwks
from token_suite.trust import Trust
from token_suite.vector import IdentityVector

log = logging.getLogger(__name__)

EXTENSION = "idp.oauth"
CODE_LIFETIME = timedelta(seconds=60)
ID_TOKEN_MAX = timedelta(minutes=5)
#: codes are kept (used) this long after expiry, so that a replayed code still
#: revokes what it issued while those tokens live
CODE_RETENTION = ACCESS_TOKEN_MAX
SCOPES = ("openid", "profile", "email")


# ------------------------------------------------------------------------ owners


@dataclass(frozen=True)
class ResourceOwner:
    """The declarant behind an authorization: who, and how they authenticated."""

    declarant_id: str
    auth_time: datetime
    acr: str
    sid: str | None = None

    @classmethod
    def from_session(cls, row: SsoRecord) -> ResourceOwner:
        return cls(row.declarant_id, row.auth_time, row.acr, row.sid)


def owner_vector(
    session: Session, owner: ResourceOwner, partner: Partner, scope: str
) -> IdentityVector:
    """The owner's vector for ``partner``: its services' PAGM and habilitations only;
    names with ``profile``; email with ``email`` where the partner may receive it."""
    scopes = set(scope_to_list(scope) or [])
    declarant = session.get(Declarant, owner.declarant_id)
    if declarant is None:
        raise InvalidRequestError("Declarant inconnu.")
    include_email = "email" in scopes and "email" in (partner.claims or [])
    vector = vector_for(
        session,
        declarant,
        registry.partner_services(partner),
        acr=owner.acr,
        auth_time=owner.auth_time,
        session_index=owner.sid,
        include_email=include_email,
    )
    if "profile" not in scopes:
        vector = replace(vector, family_name=None, given_name=None)
    return vector


# ------------------------------------------------------------------------ tokens


def _lifetime(config_key: str, ceiling: timedelta) -> timedelta:
    return min(timedelta(seconds=int(current_app.config[config_key])), ceiling)


def issue_access_token(
    session: Session,
    client: OAuthClient,
    owner: ResourceOwner | None,
    scope: str,
    *,
    now: datetime,
    audience: str | None = None,
    vector: IdentityVector | None = None,
    extra_claims: dict[str, Any] | None = None,
    family: str | None = None,
    lifetime: timedelta | None = None,
) -> tuple[str, IssuedToken]:
    """An Interops-R access token for ``client`` by the app's token service: aud = the
    partner's API, claims minimised to its services, at most 15 minutes, recorded and
    audited (:meth:`idp.tokens.issuing.TokenService.issue_access`). The other grants
    (:mod:`idp.oidc.grants`) pass their own ``audience`` (RFC 8707), ``vector``,
    ``extra_claims`` (``act``), refresh ``family`` and a shorter ``lifetime``."""
    partner = client.partner
    if vector is None:
        vector = (
            owner_vector(session, owner, partner, scope)
            if owner
            else IdentityVector(subject=client.client_id)
        )
    return token_service().issue_access(
        session,
        vector,
        client_id=client.client_id,
        scope=scope,
        audience=audience or default_audience(partner),
        now=now,
        lifetime=lifetime,
        extra_claims=extra_claims,
        family=family,
        acr=owner.acr if owner else None,
        auth_time=owner.auth_time if owner else None,
    )


def save_token(token: dict[str, Any], request: OAuth2Request) -> None:
    """Link the issued tokens (access, and refresh where issued) to their authorization
    code (revoked if the code is replayed)."""
    jtis = [j for j in (token.pop("_jti", None), token.pop("_refresh_jti", None)) if j]
    code = getattr(request, "authorization_code", None)
    if jtis and isinstance(code, Code):
        code.row.issued = [*(code.row.issued or []), *jtis]


def revoke_issued(session: Session, code: AuthorizationCode, *, now: datetime) -> int:
    """Revoke every token issued from ``code`` (RFC 6749 4.1.2: a replayed code)."""
    if not code.issued:
        return 0
    result = session.execute(
        update(IssuedToken)
        .where(IssuedToken.jti.in_(list(code.issued)), IssuedToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    audit.record(
        session,
        "token.revoked",
        actor=code.declarant_id,
        target=code.client_id,
        data={"reason": "authorization_code_reuse", "ids": list(code.issued)},
    )
    return rows_affected(result)


# ------------------------------------------------------------------------- codes


class Code:
    """Authlib's view of a stored :class:`AuthorizationCode`."""

    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str:
        return self.row.acr

    def get_amr(self) -> None:
        return None  # carried by the Interops vector (derived from acr)


def claim_code(
    session: Session, code: str, client_id: str, *, now: datetime
) -> AuthorizationCode | None:
    """Mark the code used in one atomic UPDATE: of two concurrent redemptions one wins.

    A code presented again after its use revokes what the first use issued
    (stops a stolen code from yielding live tokens); an expired code, or one
    issued to another client, is refused."""
    code_hash = digest(code)
    claimed = session.execute(
        update(AuthorizationCode)
        .where(
            AuthorizationCode.code_hash == code_hash,
            AuthorizationCode.client_id == client_id,
            AuthorizationCode.used_at.is_(None),
            AuthorizationCode.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    row = session.scalars(
        select(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash)
        .execution_options(populate_existing=True)
    ).first()
    if rows_affected(claimed) == 1:
        return row
    if row is not None and row.used_at is not None:
        revoke_issued(session, row, now=now)
        session.commit()
    return None


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """The authorization code grant: codes hashed, 60 s, single use, bound to their
    client, redirect URI and PKCE challenge; the response carries ``iss`` (RFC 9207,
    stops mix-up attacks)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        owner: ResourceOwner = request.user
        data, now = request.payload.data, datetime.now(UTC)
        session = db.session()
        session.execute(
            delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - CODE_RETENTION)
        )
        session.add(
            AuthorizationCode(
                code_hash=digest(code),
                client_id=request.client.get_client_id(),
                declarant_id=owner.declarant_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope or "",
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=owner.auth_time,
                acr=owner.acr,
                sid=owner.sid,
                expires_at=now + CODE_LIFETIME,
                issued=[],
            )
        )
        session.flush()

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        row = claim_code(db.session(), code, client.get_client_id(), now=datetime.now(UTC))
        return Code(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        pass  # kept, marked used: a second presentation must find it (and revoke)

    def authenticate_user(self, authorization_code: Code) -> ResourceOwner:
        row = authorization_code.row
        return ResourceOwner(row.declarant_id, row.auth_time, row.acr, row.sid)

    def create_authorization_response(self, redirect_uri: str, grant_user: Any) -> Any:
        status, body, headers = super().create_authorization_response(redirect_uri, grant_user)
        headers = [
            (name, add_params_to_uri(value, [("iss", issuer())]) if name == "Location" else value)
            for name, value in headers
        ]
        return status, body, headers


class Pkce(CodeChallenge):  # type: ignore[misc]
    """PKCE (RFC 7636): S256 only (``plain`` refused); required of public clients
    (stops code interception), optional for confidential ones."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if grant.request.client.row.public and not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE (code_challenge S256) obligatoire pour un client public."
            )
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method S256 obligatoire (plain refuse).")
        super().validate_code_challenge(grant, redirect_uri)


class OidcCode(OpenIDCode):  # type: ignore[misc]
    """OpenID Connect on the code grant: the ID token is an Interops-R JWT (aud =
    client_id, ``nonce``, ``auth_time``, ``acr``, ``amr``, ``azp``, ``sid``), 5 min at most,
    with no ``typ`` (:data:`idp.tokens.issuing.ID_TOKEN_TYP`: never taken for a partner's token)."""

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        """Never refused here: the nonce binds the ID token to the RP's own session and
        the RP checks it; refusing a repeated one would only break a reloaded request."""
        return False

    def encode_id_token(self, token: dict[str, Any], request: OAuth2Request) -> str:
        code: Code = request.authorization_code
        client: OAuthClient = request.client.row
        session, now = db.session(), datetime.now(UTC)
        owner = ResourceOwner(code.row.declarant_id, code.row.auth_time, code.row.acr, code.row.sid)
        vector = owner_vector(session, owner, client.partner, token["scope"])
        extra: dict[str, Any] = {"azp": client.client_id}
        if code.row.nonce:
            extra["nonce"] = code.row.nonce
        if code.row.sid:
            extra["sid"] = code.row.sid
        jti = secrets.token_urlsafe(18)
        id_token = interops_jwt.issue(
            vector,
            signer=keyring().active(KeyUse.JWT),
            issuer=issuer(),
            audience=client.client_id,
            now=now,
            lifetime=_lifetime("TOKEN_LIFETIME_SECONDS", ID_TOKEN_MAX),
            typ=ID_TOKEN_TYP,
            jti=jti,
            extra_claims=extra,
        )
        audit.record(
            session,
            "token.issued",
            actor=vector.subject,
            target=client.client_id,
            data={
                "format": "jwt",
                "kind": "id",
                "id": jti,
                "client_id": client.client_id,
                "pagm": list(vector.pagm),
            },
        )
        return id_token


# ------------------------------------------------------------------------ server


class OAuthServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask server; error redirects carry ``iss`` too (RFC 9207)."""

    def authenticate_client(
        self, request: OAuth2Request, methods: list[str], endpoint: str = "token"
    ) -> Client:
        """Authlib's client authentication, with one answer whatever failed (unknown
        client, wrong secret, bad assertion, another method: stops client id
        enumeration), each failure counted against the source address, and the token
        budget charged to the authenticated client only (:mod:`idp.oidc.limits`)."""
        refuse_held_address()
        try:
            client: Client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as refused:
            log.info("client authentication refused: %s", refused.description)
            count_failure()
            raise client_refused() from None
        if endpoint == "token":
            charge_client(client.get_client_id())
        return client

    def handle_error_response(self, request: OAuth2Request, error: OAuth2Error) -> Any:
        if error.redirect_uri:
            return self.handle_response(*error_redirect(error))
        return super().handle_error_response(request, error)


def error_redirect(error: OAuth2Error) -> tuple[int, str, list[tuple[str, str]]]:
    """The 302 of an authorization error to the (validated) redirect URI, with ``iss``."""
    params = [("error", error.error)]
    if error.description:
        params.append(("error_description", error.description))
    if error.state:
        params.append(("state", error.state))
    params.append(("iss", issuer()))
    return 302, "", [("Location", add_params_to_uri(error.redirect_uri, params))]


def init_app(app: Flask) -> OAuthServer:
    """Create the app's server: the code grant with OIDC and PKCE, four client auth
    methods. Later grants: ``server(app).register_grant(...)``."""
    oauth = OAuthServer()
    oauth.init_app(app, query_client=query_client, save_token=save_token)
    oauth.register_client_auth_method("client_secret_basic", authenticate_client_secret_basic)
    oauth.register_client_auth_method("private_key_jwt", PrivateKeyJwt())
    oauth.register_grant(CodeGrant, [Pkce(required=True), OidcCode(require_nonce=False)])
    app.extensions[EXTENSION] = oauth
    registry.init_app(app)
    return oauth


def server(app: Flask | None = None) -> OAuthServer:
    return (app or current_app).extensions[EXTENSION]  # type: ignore[no-any-return]


# ------------------------------------------------------------- our own tokens back


def own_trust() -> Trust:
    """Our published JWT keys, as any partner sees them (verified back by
    :mod:`idp.tokens.own` and the DSN verifier)."""
    return trust_from_jwks(jwks(keyring().published(KeyUse.JWT)), issuer=issuer())
