"""OAuth client registry and authentication for the token endpoint.

:class:`Client` adapts a registered :class:`partners.models.OAuthClient` to Authlib
(exact redirect URI matches, the one registered auth method). Two client
authentication methods replace or extend Authlib's: ``client_secret_basic`` with
RFC 6749 2.3.1 decoding, and ``private_key_jwt`` (RFC 7523) with the shared replay cache.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidClientError
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import Flask, current_app
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.oidc import registry
from idp.stores.replay import replay_cache
from idp.web.credentials import basic_credentials
from partners.models import OAuthClient, Partner
from partners.services import secret_matches

SIGNING_ALGS = ["ES256", "RS256", "PS256"]
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]
ASSERTION_MAX_LIFETIME = timedelta(minutes=10)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def issuer(app: Flask | None = None) -> str:
    """The issuer: exactly ``IDP_BASE_URL``, no trailing slash (docs/profile.md, "JWT
    Interops-R")."""
    return str((app or current_app).config["BASE_URL"])


def default_audience(partner: Partner) -> str:
    """The audience of a client's access tokens: its API, else ``<issuer>/api``."""
    return partner.api_audience or f"{issuer()}/api"


# ----------------------------------------------------------------------- clients


class Client(ClientMixin):  # type: ignore[misc]
    """Authlib's view of a registered :class:`OAuthClient` (exact matches only)."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri always required: nothing guessed

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.row.scopes or [])
        return " ".join(s for s in dict.fromkeys(scope_to_list(scope) or []) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match with a registered URI (stops open redirects and code theft)."""
        return redirect_uri in (self.row.redirect_uris or [])

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(self.row.client_secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.row.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in (self.row.grant_types or [])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (self.row.grant_types or [])


def query_client(client_id: str) -> Client | None:
    """The registered client, from the process cache (:mod:`idp.oidc.registry`: no SQL
    per request, a change seen within a second)."""
    row = registry.client(client_id) if isinstance(client_id, str) else None
    return Client(row) if row is not None else None


def authenticate_client_secret_basic(query: Any, request: OAuth2Request) -> Client | None:
    """HTTP Basic with RFC 6749 2.3.1 decoding: id and secret are form-urlencoded
    before base64, so ``+`` is a space and ``%XX`` an octet of UTF-8."""
    credentials = basic_credentials(request.headers.get("Authorization"))
    if credentials is None:
        return None
    client = query(credentials[0])
    return client if client is not None and client.check_client_secret(credentials[1]) else None


def client_refused() -> InvalidClientError:
    """The one answer to a failed client authentication, whatever failed (an unknown
    client gets exactly what a wrong secret gets: stops client id enumeration)."""
    return InvalidClientError(status_code=401, description="Authentification du client refusee.")


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    """``private_key_jwt`` (RFC 7523 2.2): an assertion signed with a key of the
    client's registered JWKS, for our token endpoint or issuer, short-lived; its
    ``jti`` is recorded in the shared replay cache, so a captured assertion is
    refused the second time (stops replay)."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        """The issuer, or the endpoint the assertion authenticates to (token endpoint;
        introspection and revocation, as clients such as Authlib's sign for them)."""
        base = issuer()
        return [base, f"{base}/oauth/token", f"{base}/oauth/introspect", f"{base}/oauth/revoke"]

    def resolve_client_public_key(self, client: Client) -> KeySet:
        return KeySet.import_key_set(client.row.jwks or {"keys": []})  # type: ignore[arg-type]

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jose_jwt.decode(assertion, resolve_key, algorithms=SIGNING_ALGS)
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="Assertion du client invalide.") from exc
        self.verify_claims(token.claims)
        return dict(token.claims)

    def validate_jti(self, claims: dict[str, Any], jti: Any) -> bool:
        exp = claims.get("exp")
        if not isinstance(jti, str) or not isinstance(exp, int):
            return False
        expires = datetime.fromtimestamp(exp, UTC)
        if expires - datetime.now(UTC) > ASSERTION_MAX_LIFETIME:
            raise InvalidClientError(
                description="Assertion du client trop longue (10 min au plus)."
            )
        cache = replay_cache()
        key = f"client-assertion:{digest(str(claims['sub']))}:{digest(jti)}"
        return not cache.seen(key, expires_at=expires + timedelta(seconds=self.leeway))
