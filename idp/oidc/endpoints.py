"""Token introspection (RFC 7662) and revocation (RFC 7009).

Both endpoints authenticate the client (``client_secret_basic``, ``client_secret_post``
or ``private_key_jwt``, as registered) and look tokens up by their SHA-256 in
``IssuedToken``, or, for a machine token (which has no row until revoked), read it from
itself once verified as ours (:func:`idp.tokens.own.access_record`). Decisions:

- *Introspection*: a client learns about a token issued to it, or about a token aimed
  at its partner's own API (``api_audience``: the resource server's case; never its
  identifier, the audience of navigation and ID tokens). Any other token, and every revoked, rotated or expired one, is
  ``{"active": false}``, the same answer as for a token that does not exist (stops
  token scanning through introspection: nothing is revealed).
- *Revocation*: a client revokes only tokens issued to it (RFC 7009 2.1); a refresh
  token takes its whole family with it (access tokens included), an access token goes
  alone. Another client's token is left alone and answered 200 exactly as an unknown
  one (RFC 7009 2.2: no oracle telling which strings are live tokens). Access tokens
  are JWTs: revocation is seen by introspection and userinfo, not by partners
  verifying the signature offline (their tokens live 15 minutes at most).

Client authentication, its single error and its limits: :class:`OAuthServer`
``.authenticate_client`` and :mod:`idp.oidc.limits`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Response
from sqlalchemy import inspect, update
from sqlalchemy.orm import Session

from idp.oidc.clients import AUTH_METHODS, Client, issuer
from idp.oidc.grants import revoke_family
from idp.oidc.server import OAuthServer, server
from idp.stores import db
from idp.stores.models import IssuedToken
from idp.tokens.own import access_record
from idp.web.answers import no_store
from rcd_store import audit
from rcd_store.db import upsert

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
    """A token we issued, by its SHA-256, or a machine token read from itself once
    verified (:func:`idp.tokens.own.access_record`; whatever ``token_type_hint`` says:
    RFC 7009 2.1 lets the server look further)."""
    if not isinstance(token, str) or not token:
        return None
    row = access_record(db.session(), token)
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

    def authenticate_token(self, request: OAuth2Request, client: Client) -> StoredToken | None:
        """The client's own token, else ``None``: another client's token is answered as
        an unknown one and stays valid (Authlib would answer ``invalid_grant``)."""
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        return token if token is not None and token.check_client(client) else None

    def revoke_token(self, token: StoredToken, request: OAuth2Request) -> None:
        session, now, row = db.session(), datetime.now(UTC), token.row
        if row.kind == "refresh" and row.family:
            revoke_family(session, row.family, reason="revoked_by_client", now=now)
            return
        if inspect(row).transient:  # a machine token: its row is the revocation list's
            session.execute(_recorded(session, row))
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


def _recorded(session: Session, row: IssuedToken) -> Any:
    """The INSERT of a machine token's row (read from the token), unless a concurrent
    revocation made it first."""
    columns = {c.key: getattr(row, c.key) for c in IssuedToken.__table__.columns}
    statement = upsert(session, IssuedToken.__table__).values(**columns)
    return statement.on_conflict_do_nothing(index_elements=["jti"])


def register(oauth: OAuthServer) -> OAuthServer:
    oauth.register_endpoint(Introspection)
    oauth.register_endpoint(Revocation)
    return oauth


def endpoint_response(name: str) -> Response:
    """Run an endpoint (``introspection`` or ``revocation``) and commit its work."""
    response = server().create_endpoint_response(name)
    db.session().commit()
    no_store(response, pragma=True)
    return response  # type: ignore[no-any-return]
