"""Server-side SSO sessions behind an opaque cookie.

The cookie carries 256 random bits; the database keeps only their SHA-256, so
a copy of the table opens no session. Idle and absolute timeouts; a new id at
every login (session fixation); HttpOnly, SameSite=Lax, Secure when the base
URL is https.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from idp import db
from idp.models import SsoSession

COOKIE = "idp_session"
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=10)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("ascii", "replace")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OpenedSession:
    """A session just opened: its cookie value (shown once) and its row."""

    cookie: str
    row: SsoSession


def open_session(
    session: Session,
    declarant_id: str,
    *,
    acr: str,
    amr: list[str],
    origin: str = "password",
    replaces: str | None = None,
) -> OpenedSession:
    """Open a new SSO session (and end ``replaces``, the previous cookie's session).

    Always a fresh id: a session id known before login is never promoted (stops
    session fixation).
    """
    if replaces:
        session.execute(delete(SsoSession).where(SsoSession.id_hash == _digest(replaces)))
    now = _now()
    absolute = timedelta(
        seconds=int(current_app.config.get("SESSION_ABSOLUTE_SECONDS", ABSOLUTE.total_seconds()))
    )
    cookie = secrets.token_urlsafe(32)
    row = SsoSession(
        id_hash=_digest(cookie),
        declarant_id=declarant_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + absolute,
        auth_time=now,
        acr=acr,
        amr=list(amr),
        sid=secrets.token_urlsafe(24),
        participants=[],
        origin=origin,
    )
    session.add(row)
    session.flush()
    g.sso_session = row
    return OpenedSession(cookie, row)


def _idle() -> timedelta:
    return timedelta(
        seconds=int(current_app.config.get("SESSION_IDLE_SECONDS", IDLE.total_seconds()))
    )


def current_session() -> SsoSession | None:
    """The request's live SSO session, or None (expired ones are deleted).

    Touches ``last_seen_at`` (idle timeout) at most once a minute.
    """
    if "sso_session" in g:
        return g.sso_session  # type: ignore[no-any-return]
    cookie = request.cookies.get(COOKIE)
    row = None
    if cookie and len(cookie) <= 100:
        session = db.session()
        row = session.get(SsoSession, _digest(cookie))
        now = _now()
        if row is not None and (row.expires_at <= now or row.last_seen_at + _idle() <= now):
            session.delete(row)
            session.commit()
            row = None
        elif row is not None and now - row.last_seen_at > timedelta(minutes=1):
            session.execute(
                update(SsoSession).where(SsoSession.id_hash == row.id_hash).values(last_seen_at=now)
            )
            session.commit()
    g.sso_session = row
    return row


def add_participant(session: Session, row: SsoSession, participant: dict[str, Any]) -> None:
    """Remember a partner that received a token in this session (for Single Logout)."""
    participants = [p for p in (row.participants or []) if p != participant]
    participants.append(participant)
    row.participants = participants
    session.execute(
        update(SsoSession)
        .where(SsoSession.id_hash == row.id_hash)
        .values(participants=participants)
    )


def end_session(session: Session, row: SsoSession) -> None:
    """Delete the session row; the caller clears the cookie."""
    session.execute(delete(SsoSession).where(SsoSession.id_hash == row.id_hash))
    g.sso_session = None


def by_sid(session: Session, sid: str) -> SsoSession | None:
    return session.scalars(select(SsoSession).where(SsoSession.sid == sid)).first()


def set_cookie(response: Response, cookie: str, app: Flask | None = None) -> None:
    app = app or current_app
    response.set_cookie(
        COOKIE,
        cookie,
        httponly=True,
        samesite="Lax",
        path="/",
        secure=bool(app.config.get("SESSION_COOKIE_SECURE")),
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(
        COOKIE,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
    )


#: protocol name -> builder of the front-channel logout URL for one participant of a
#: session (SAML: a signed LogoutRequest by HTTP-Redirect; OIDC: front-channel logout).
#: Each protocol module registers its builder at import; the logout page loads every URL.
LOGOUT_URL_BUILDERS: dict[str, Any] = {}


def logout_urls(row: SsoSession) -> list[str]:
    """The front-channel logout URLs of every partner holding a session (built before
    the row is deleted)."""
    urls = []
    for participant in row.participants or []:
        builder = LOGOUT_URL_BUILDERS.get(str(participant.get("protocol")))
        url = builder(participant, row) if builder else None
        if url:
            urls.append(url)
    return urls
