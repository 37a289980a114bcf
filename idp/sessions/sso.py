"""Server-side SSO sessions behind an opaque cookie.

The cookie carries 256 random bits; the store (:mod:`idp.sessions.store`: the
database, or Redis when configured) keeps only their SHA-256, so a copy of it
opens no session. Idle and absolute timeouts; a new id at
every login (session fixation); HttpOnly, SameSite=Lax, Secure when the base
URL is https.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy.orm import Session

from idp.events import emit as security_events
from idp.sessions.store import SessionReader, SessionWriter, SsoRecord, store
from idp.stores import db

COOKIE = "idp_session"
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=10)
#: how stale ``last_seen_at`` may get before a request writes it again
TOUCH_EVERY = timedelta(minutes=1)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("ascii", "replace")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OpenedSession:
    """A session just opened: its cookie value (shown once) and its record."""

    cookie: str
    row: SsoRecord


def open_session(
    session: Session,
    declarant_id: str,
    *,
    acr: str,
    amr: list[str],
    origin: str = "password",
    replaces: str | None = None,
) -> OpenedSession:
    """Open a new SSO session (and end ``replaces``, the previous cookie's session) in
    the app's store, through ``session`` when it is the database.

    Always a fresh id: a session id known before login is never promoted (stops
    session fixation).
    """
    opened = open_in(
        store(session), declarant_id, acr=acr, amr=amr, origin=origin, replaces=replaces
    )
    g.sso_session = opened.row
    return opened


def open_in(
    sessions: SessionWriter,
    declarant_id: str,
    *,
    acr: str,
    amr: list[str],
    origin: str = "password",
    replaces: str | None = None,
) -> OpenedSession:
    """:func:`open_session` in ``sessions`` (the login's lean path gives the store on its
    own Core connection, :func:`idp.sessions.store.writer`): the one rule of a new
    session, whoever writes it."""
    previous = sessions.get(_digest(replaces)) if replaces and len(replaces) <= 100 else None
    if previous is not None:
        sessions.delete(previous)
    now = _now()
    absolute = timedelta(
        seconds=int(current_app.config.get("SESSION_ABSOLUTE_SECONDS", ABSOLUTE.total_seconds()))
    )
    cookie = secrets.token_urlsafe(32)
    row = SsoRecord(
        id_hash=_digest(cookie),
        declarant_id=declarant_id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + absolute,
        auth_time=now,
        acr=acr,
        amr=list(amr),
        sid=secrets.token_urlsafe(24),
        origin=origin,
    )
    sessions.add(row)
    return OpenedSession(cookie, row)


def _idle() -> timedelta:
    return timedelta(
        seconds=int(current_app.config.get("SESSION_IDLE_SECONDS", IDLE.total_seconds()))
    )


def find_session(sessions: SessionReader, cookie: str | None) -> SsoRecord | None:
    """The record the session cookie ``cookie`` names, live or not (None without one)."""
    if not cookie or len(cookie) > 100:
        return None
    return sessions.get(_digest(cookie))


def has_expired(row: SsoRecord, now: datetime, idle: timedelta | None = None) -> bool:
    """``row`` is past its absolute or its idle timeout at ``now``."""
    return row.expires_at <= now or row.last_seen_at + (idle or _idle()) <= now


def wants_touch(row: SsoRecord, now: datetime) -> bool:
    """``last_seen_at`` is written again at most once a minute (idle timeout)."""
    return now - row.last_seen_at > TOUCH_EVERY


def current_session() -> SsoRecord | None:
    """The request's live SSO session, or None (expired ones are deleted).

    Touches ``last_seen_at`` (idle timeout) at most once a minute.
    """
    if "sso_session" in g:
        return g.sso_session  # type: ignore[no-any-return]
    sessions = store()
    row = find_session(sessions, request.cookies.get(COOKIE))
    now = _now()
    if row is not None and has_expired(row, now):
        sessions.delete(row)
        db.session().commit()
        row = None
    elif row is not None and wants_touch(row, now):
        sessions.touch(row, now)
    g.sso_session = row
    return row


def add_participant(session: Session, row: SsoRecord, participant: dict[str, Any]) -> None:
    """Remember a partner that received a token in this session (for Single Logout)."""
    store(session).add_participant(row, participant)


def end_session(session: Session, row: SsoRecord) -> None:
    """End the session; the caller clears the cookie. The partners sharing a service
    with the declarant get a "session ended" SET, and each OpenID Connect client of the
    session with a back-channel logout URI a logout token, queued in the caller's
    transaction and pushed in the background (:mod:`idp.events`): the page never waits."""
    security_events.session_ended(session, row.declarant_id, row.sid, row.participants or [])
    store(session).delete(row)
    g.sso_session = None


def end_declarant_sessions(session: Session, declarant_id: str) -> int:
    """End every session of a declarant (password reset); returns how many."""
    return store(session).delete_for_declarant(declarant_id)


def by_sid(session: Session, sid: str) -> SsoRecord | None:
    """The live session partners know as ``sid`` (SAML SessionIndex, OIDC sid)."""
    return store(session).by_sid(sid)


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


#: builds the front-channel logout URL for one participant of a session (SAML: a signed
#: LogoutRequest by HTTP-Redirect; OIDC: front-channel logout), None when it has none
LogoutUrlBuilder = Callable[[dict[str, Any], SsoRecord], str | None]
BUILDERS = "idp.logout_url_builders"


def register_logout_builder(app: Flask, protocol: str, builder: LogoutUrlBuilder) -> None:
    """Let ``app``'s logout page end the sessions ``protocol``'s partners hold (each
    protocol package registers its builder in its ``init_app``; another app in the same
    process keeps its own builders)."""
    logout_builders(app)[protocol] = builder


def logout_builders(app: Flask) -> dict[str, LogoutUrlBuilder]:
    """Protocol name -> logout URL builder, for ``app`` only."""
    found: dict[str, LogoutUrlBuilder] = app.extensions.setdefault(BUILDERS, {})
    return found


def logout_urls(
    row: SsoRecord, *, skip: Callable[[dict[str, Any]], bool] | None = None
) -> list[str]:
    """The front-channel logout URLs of every partner holding a session (built before
    the row is deleted), but those ``skip`` names (e.g. the partner asking to log out)."""
    builders = logout_builders(current_app)
    urls = []
    for participant in row.participants or []:
        if skip is not None and skip(participant):
            continue
        builder = builders.get(str(participant.get("protocol")))
        url = builder(participant, row) if builder else None
        if url:
            urls.append(url)
    return urls
