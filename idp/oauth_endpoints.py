"""Token introspection (RFC 7662), revocation (RFC 7009) and the token endpoint's
per-client rate limit.

Both endpoints authenticate the client (``client_secret_basic``, ``client_secret_post``
or ``private_key_jwt``, as registered) and look tokens up by their SHA-256 in
``IssuedToken``. Decisions:

- *Introspection*: a client learns about a token issued to it, or about a token aimed
  at its partner's own API (``api_audience``: the resource server's case; never its
  identifier, the audience of navigation and ID tokens). Any other token, and every revoked, rotated or expired one, is
  ``{"active": false}``, the same answer as for a token that does not exist (stops
  token scanning through introspection: nothing is revealed).
- *Revocation*: a client revokes only tokens issued to it (RFC 7009 2.1); a refresh
  token takes its whole family with it (access tokens included), an access token goes
  alone. An unknown token is answered 200 (RFC 7009 2.2). Access tokens are JWTs:
  revocation is seen by introspection and userinfo, not by partners verifying the
  signature offline (their tokens live 15 minutes at most).
- *Rate limit*: each client (named by its Basic id, ``client_id``, or the ``iss`` /
  ``sub`` of its unverified assertion; else the address) gets ``TOKEN_RATE_LIMIT``
  requests (default 600) per ``TOKEN_RATE_WINDOW`` seconds (default 60) at the token
  endpoint, counted atomically in :mod:`idp.throttle`'s backend (Redis or SQL) BEFORE
  the request is processed; beyond: 429, ``Retry-After``, JSON error. ``0`` disables
  it (benchmarks). Stops a client, or someone guessing its secret, from monopolising
  the signing keys; counting by the claimed id means a third party can spend a
  client's budget, but never obtain a token.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Response, current_app, jsonify, request
from sqlalchemy import select, update

from idp import db
from idp.models import IssuedToken
from idp.oauth_clients import AUTH_METHODS, Client, digest, issuer
from idp.oauth_grants import revoke_family
from idp.oauth_server import OAuthServer, server
from idp.throttle import Rule, throttle
from rcd_store import audit

ENDPOINT_AUTH_METHODS = [m for m in AUTH_METHODS if m != "none"]
DEFAULT_RATE_LIMIT = 600
DEFAULT_RATE_WINDOW = 60


class StoredToken:
    """Authlib's view of an :class:`IssuedToken` row."""

    def __init__(self, row: IssuedToken) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        return self.row.client_id == client.get_client_id()

    def is_expired(self) -> bool:
        return self.row.expires_at <= datetime.now(UTC)

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.row.rotated_at is not None


def find_token(token: str) -> StoredToken | None:
    """A token we issued, by its SHA-256 (whatever ``token_type_hint`` says: RFC 7009 2.1
    lets the server look further)."""
    if not isinstance(token, str) or not token:
        return None
    row = (
        db.session()
        .scalars(select(IssuedToken).where(IssuedToken.token_hash == digest(token)))
        .first()
    )
    return StoredToken(row) if row is not None else None


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662 (see the module docstring for who may introspect what)."""

    CLIENT_AUTH_METHODS = ENDPOINT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        return find_token(token_string)

    def check_permission(self, token: StoredToken, client: Client, request: OAuth2Request) -> bool:
        if token.check_client(client):
            return True
        api = client.row.partner.api_audience
        return api is not None and token.row.audience == api

    def introspect_token(self, token: StoredToken) -> dict[str, Any]:
        row = token.row
        payload: dict[str, Any] = {
            "active": True,
            "client_id": row.client_id,
            "sub": row.subject,
            "scope": row.scope,
            "iss": issuer(),
            "iat": int(row.issued_at.timestamp()),
            "exp": int(row.expires_at.timestamp()),
            "jti": row.jti,
            "token_type": "Bearer" if row.kind == "access" else "refresh_token",
        }
        if row.audience:
            payload["aud"] = row.audience
        return payload


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009 (see the module docstring)."""

    CLIENT_AUTH_METHODS = ENDPOINT_AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        return find_token(token_string)

    def revoke_token(self, token: StoredToken, request: OAuth2Request) -> None:
        session, now, row = db.session(), datetime.now(UTC), token.row
        if row.kind == "refresh" and row.family:
            revoke_family(session, row.family, reason="revoked_by_client", now=now)
            return
        session.execute(
            update(IssuedToken)
            .where(IssuedToken.jti == row.jti, IssuedToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        audit.record(
            session,
            "token.revoked",
            actor=row.subject,
            target=row.client_id,
            data={"reason": "revoked_by_client", "ids": [row.jti]},
        )


def register(oauth: OAuthServer) -> OAuthServer:
    oauth.register_endpoint(Introspection)
    oauth.register_endpoint(Revocation)
    return oauth


def endpoint_response(name: str) -> Response:
    """Run an endpoint (``introspection`` or ``revocation``) and commit its work."""
    response = server().create_endpoint_response(name)
    db.session().commit()
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response  # type: ignore[no-any-return]


# -------------------------------------------------------------------- rate limit


def _unverified_payload(assertion: str) -> dict[str, Any]:
    try:
        segment = assertion.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return {}
    return payload if isinstance(payload, dict) else {}


def claimed_client() -> str | None:
    """The client a token request claims to come from (not yet authenticated)."""
    scheme, _sp, value = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:
            decoded = ""
        if ":" in decoded:
            return unquote_plus(decoded.partition(":")[0])
    for field in ("client_id",):
        if request.form.get(field):
            return request.form[field]
    for field, claim in (("client_assertion", "sub"), ("assertion", "iss")):
        if request.form.get(field):
            found = _unverified_payload(request.form[field]).get(claim)
            if isinstance(found, str) and found:
                return found
    return None


def _setting(name: str, default: int) -> int:
    value = current_app.config.get(name)
    return default if value is None or value == "" else int(value)


def rate_limited() -> Response | None:
    """A 429 when the claimed client has used up its window, else ``None`` (counted)."""
    limit = _setting("TOKEN_RATE_LIMIT", DEFAULT_RATE_LIMIT)
    if limit <= 0:
        return None
    window = max(1, _setting("TOKEN_RATE_WINDOW", DEFAULT_RATE_WINDOW))
    client_id = claimed_client()
    key = "oauth:" + digest(client_id) if client_id else "oauth-ip:" + (request.remote_addr or "")
    reservation = throttle().backend.reserve(
        key, Rule(limit, window, doubling=False), now=datetime.now(UTC)
    )
    if reservation.allowed:
        return None
    response = jsonify(
        error="too_many_requests",
        error_description="Trop de demandes de jetons pour ce client : réessayez plus tard.",
    )
    response.status_code = 429
    response.headers["Retry-After"] = str(reservation.retry_after)
    response.headers["Cache-Control"] = "no-store"
    for name, value in default_json_headers:
        response.headers.setdefault(name, value)
    return response
