"""Delivering the events outbox by HTTP push: SETs by RFC 8935 (``POST``
``application/secevent+jwt``; 202 acknowledges, 400 with an error object refuses) and
logout tokens by OpenID Connect Back-Channel Logout 1.0 (``POST logout_token=...``; 200
or 204 acknowledges, 400 refuses).

Each receiver gets its events in the order of their numbers: only its first unsettled
event is tried, and the next waits until that one is acknowledged or refused (both
recorded on the row). A failure (no answer, another status) is retried after a delay
doubling from ``IDP_EVENTS_RETRY_SECONDS`` up to ``IDP_EVENTS_RETRY_MAX_SECONDS``, for
ever: nothing is dropped unsettled. An event is claimed (its next attempt moved past a
lease) and committed before it is sent, so two pushers never send it at once; a pusher
that dies while sending leaves it to be sent again after the lease (the same ``jti``:
receivers ignore a SET they already have). Acknowledged rows are never sent again and
are pruned ``IDP_EVENTS_RETENTION_DAYS`` after they settled.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from idp.events.models import LOGOUT_CHANNEL, SecurityEventRow
from idp.stores.db import database
from idp.tokens.signing import keyring
from keys.model import KeyUse
from partners.models import OAuthClient, Partner
from rcd_store.db import rows_affected, utcnow
from token_suite import events as set_tokens

log = logging.getLogger(__name__)

#: seconds a logout token lives (OpenID Connect Back-Channel Logout 1.0 2.4: short)
LOGOUT_TOKEN_SECONDS = 120
#: events sent to one receiver in one round at most (then the others get their turn)
PER_ROUND = 200


@dataclass
class Pushed:
    """What one round did."""

    acknowledged: int = 0
    refused: int = 0
    failed: int = 0
    pruned: int = 0


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: ``settled`` (acknowledged or refused) or to be retried."""

    outcome: str | None
    error: str | None = None


def _target(session: Session, row: SecurityEventRow) -> str | None:
    """Where ``row`` goes: the partner's push receiver, the client's back-channel URI."""
    if row.receiver.startswith(LOGOUT_CHANNEL + ":"):
        client_id = row.receiver.removeprefix(LOGOUT_CHANNEL + ":")
        found = select(OAuthClient.backchannel_logout_uri).where(OAuthClient.client_id == client_id)
        return session.scalar(found)
    return session.scalar(select(Partner.event_receiver_url).where(Partner.id == row.partner_id))


def signed(app: Flask, row: SecurityEventRow, now: datetime) -> str:
    """The row's token, signed now by the active JWT key: a SET issued when the change
    was made, or a logout token valid :data:`LOGOUT_TOKEN_SECONDS` from now."""
    claims: dict[str, Any] = {"iss": app.config["BASE_URL"], "jti": row.jti, **row.claims}
    if row.receiver.startswith(LOGOUT_CHANNEL + ":"):
        claims["iat"] = int(now.timestamp())
        claims["exp"] = claims["iat"] + LOGOUT_TOKEN_SECONDS
        typ = set_tokens.LOGOUT_TYP
    else:
        claims["iat"] = int(row.created_at.timestamp())
        typ = set_tokens.SET_TYP
    return set_tokens.sign(claims, signer=keyring(app).active(KeyUse.JWT), typ=typ)


def post(url: str, token: str, *, logout: bool, timeout: float) -> Answer:
    """Send one token; classify the answer (RFC 8935 2.2 and 2.3, Back-Channel Logout 2.8)."""
    if logout:
        body = urllib.parse.urlencode({"logout_token": token}).encode("ascii")
        content_type, accepted = "application/x-www-form-urlencoded", {200, 204}
    else:
        body, content_type, accepted = token.encode("ascii"), "application/secevent+jwt", {202}
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": content_type, "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read(2000).decode("utf-8", "replace")
        if status == 400:
            return Answer("refused", _refusal(text))
        return Answer(None, f"HTTP {status}")
    except (OSError, ValueError) as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:500])
    if status in accepted:
        return Answer("acknowledged")
    return Answer(None, f"HTTP {status}")


def _refusal(text: str) -> str:
    """The receiver's error object (RFC 8935 2.3: ``err``, ``description``) as recorded."""
    try:
        found = json.loads(text)
    except ValueError:
        return text[:500] or "HTTP 400"
    if isinstance(found, dict):
        return f"{found.get('err', '?')}: {found.get('description', '')}"[:500]
    return text[:500]


def _backoff(app: Flask, attempts: int) -> timedelta:
    base = float(app.config["EVENTS_RETRY_SECONDS"])
    ceiling = float(app.config["EVENTS_RETRY_MAX_SECONDS"])
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), ceiling))


def _claim(session: Session, row: SecurityEventRow, app: Flask, now: datetime) -> bool:
    """Take ``row`` for this pusher (committed): False when another one took it first."""
    lease = timedelta(seconds=float(app.config["EVENTS_LEASE_SECONDS"]))
    taken = session.execute(
        update(SecurityEventRow)
        .where(
            SecurityEventRow.id == row.id,
            SecurityEventRow.next_attempt_at == row.next_attempt_at,
            SecurityEventRow.settled_at.is_(None),
        )
        .values(next_attempt_at=now + lease, attempts=SecurityEventRow.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return rows_affected(taken) == 1


def _record(session: Session, row_id: int, answer: Answer, retry_at: datetime) -> None:
    now = utcnow()
    values: dict[str, Any] = {"last_error": answer.error}
    if answer.outcome is None:
        values["next_attempt_at"] = retry_at
    else:
        values.update(settled_at=now, outcome=answer.outcome)
    session.execute(
        update(SecurityEventRow)
        .where(SecurityEventRow.id == row_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _head(session: Session, receiver: str) -> SecurityEventRow | None:
    return session.scalars(
        select(SecurityEventRow)
        .where(SecurityEventRow.receiver == receiver, SecurityEventRow.settled_at.is_(None))
        .order_by(SecurityEventRow.seq)
        .limit(1)
    ).first()


def _push_receiver(app: Flask, session: Session, receiver: str, done: Pushed) -> None:
    """Send ``receiver``'s events in order while it acknowledges or refuses them."""
    timeout = float(app.config["EVENTS_TIMEOUT"])
    for _ in range(PER_ROUND):
        now = utcnow()
        row = _head(session, receiver)
        if row is None or row.next_attempt_at > now:
            return
        url = _target(session, row)
        if url is None and row.receiver.startswith(LOGOUT_CHANNEL + ":"):
            # the client withdrew its back-channel URI: nobody to tell, recorded
            _record(session, row.id, Answer("refused", "no back-channel logout URI"), now)
            done.refused += 1
            continue
        if url is None:
            return  # pull only (RFC 8936)
        if not _claim(session, row, app, now):
            return
        answer = post(
            url,
            signed(app, row, now),
            logout=row.receiver.startswith(LOGOUT_CHANNEL + ":"),
            timeout=timeout,
        )
        _record(session, row.id, answer, utcnow() + _backoff(app, row.attempts + 1))
        session.expire_all()
        if answer.outcome is None:
            done.failed += 1
            log.warning("événement %s vers %s : %s", row.jti, receiver, answer.error)
            return
        if answer.outcome == "refused":
            done.refused += 1
            log.warning("événement %s refusé par %s : %s", row.jti, receiver, answer.error)
        else:
            done.acknowledged += 1


def prune(app: Flask, session: Session) -> int:
    """Forget the events settled more than ``IDP_EVENTS_RETENTION_DAYS`` ago."""
    horizon = utcnow() - timedelta(days=int(app.config["EVENTS_RETENTION_DAYS"]))
    gone = rows_affected(
        session.execute(
            delete(SecurityEventRow)
            .where(SecurityEventRow.settled_at < horizon)
            .execution_options(synchronize_session=False)
        )
    )
    session.commit()
    return gone


def push_round(app: Flask) -> Pushed:
    """One round: each receiver with a due event gets its events in order; then the
    settled ones past the retention are pruned."""
    done = Pushed()
    session = database(app).sessions()
    try:
        receivers = session.scalars(
            select(SecurityEventRow.receiver)
            .where(SecurityEventRow.settled_at.is_(None))
            .group_by(SecurityEventRow.receiver)
            .having(func.min(SecurityEventRow.next_attempt_at) <= utcnow())
        ).all()
        session.commit()
        for receiver in receivers:
            _push_receiver(app, session, receiver, done)
        done.pruned = prune(app, session)
        return done
    finally:
        session.close()
