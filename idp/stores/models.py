"""Tables of the web service: SSO sessions, login throttling, one-time secrets, OAuth state,
the replay cache of token ids (the signing key rows live beside the key store).

Secrets (session ids, codes, reset links, recovery codes) are stored as SHA-256
digests only: a copy of the database gives no usable secret.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rcd_store.db import Base, UTCDateTime, utcnow


class SsoSession(Base):
    """A browser's SSO session, behind an opaque cookie (the id is stored hashed)."""

    __tablename__ = "sso_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    declarant_id: Mapped[str] = mapped_column(
        ForeignKey("declarant.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # absolute timeout
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    acr: Mapped[str] = mapped_column(String(200))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: opaque id shared with partners (SAML SessionIndex, OIDC sid)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    #: partners holding a session: [{"partner", "protocol", ...}] for Single Logout
    participants: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    #: how the session was opened: password, inbound trust...
    origin: Mapped[str] = mapped_column(String(40), default="password")


class LoginThrottle(Base):
    """Atomic failure counters per account and per client address."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lock_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OneTimeSecret(Base):
    """Single-use, short-lived secrets: password reset links, recovery codes, codes by letter."""

    __tablename__ = "one_time_secret"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(30))
    declarant_id: Mapped[str] = mapped_column(
        ForeignKey("declarant.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthorizationCode(Base):
    """An OAuth 2 authorization code (hashed); works once, for its client, with its PKCE."""

    __tablename__ = "authorization_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(200))
    declarant_id: Mapped[str] = mapped_column(ForeignKey("declarant.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(1000), default="")
    nonce: Mapped[str | None] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(200))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    acr: Mapped[str] = mapped_column(String(200))
    sid: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: token ids issued from this code: revoked if the code is used again
    issued: Mapped[list[str]] = mapped_column(JSON, default=list)


class IssuedToken(Base):
    """Access and refresh tokens issued at the token endpoint (introspection, revocation)."""

    __tablename__ = "issued_token"

    jti: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # access | refresh
    client_id: Mapped[str] = mapped_column(String(200), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(1000), default="")
    audience: Mapped[str | None] = mapped_column(String(400))
    #: refresh-token family: reuse of a rotated token revokes the whole family
    family: Mapped[str | None] = mapped_column(String(100), index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: how the owner authenticated (a refresh token's new access tokens say it again)
    acr: Mapped[str | None] = mapped_column(String(200))
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Consent(Base):
    """Consent given once per client and scope (remembered)."""

    __tablename__ = "consent"
    __table_args__ = (UniqueConstraint("declarant_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    declarant_id: Mapped[str] = mapped_column(ForeignKey("declarant.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SeenToken(Base):
    """Replay cache: token ids seen, kept until the token expires."""

    __tablename__ = "seen_token"

    token_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CacheGeneration(Base):
    """A named counter bumped with every change to the tables it guards (clients,
    partners, services, keys...): processes drop their caches when it moves
    (:mod:`idp.stores.generations`)."""

    __tablename__ = "cache_generation"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
