"""Replay caches shared by every worker: SQL (directory database) and Redis.

Both implement :class:`token_suite.replay.ReplayCache`: check and record in one
atomic step, so two workers receiving the same token at once accept it once.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from idp.stores.models import SeenToken
from rcd_store.db import rows_affected, upsert


class SqlReplayCache:
    """Seen token ids in the ``seen_token`` table until they expire."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        """Insert the id, or take over an expired row; seen when neither happened."""
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            values = upsert(session, SeenToken).values(token_id=token_id, expires_at=expires_at)
            stmt = values.on_conflict_do_update(
                index_elements=["token_id"],
                set_={"expires_at": values.excluded.expires_at},
                where=SeenToken.expires_at <= now,
            ).returning(SeenToken.token_id)
            recorded = session.execute(stmt).first() is not None
        return not recorded

    def purge(self, *, now: datetime | None = None) -> int:
        """Delete expired ids; returns how many."""
        with self._sessions.begin() as session:
            result = session.execute(
                delete(SeenToken).where(SeenToken.expires_at <= (now or datetime.now(UTC)))
            )
            return rows_affected(result)


class RedisReplayCache:
    """``SET key NX PXAT expiry``: one atomic command per token."""

    def __init__(self, client: Any, *, prefix: str = "idp:replay:") -> None:
        self._client = client
        self._prefix = prefix

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        now_ms = math.ceil(datetime.now(UTC).timestamp() * 1000)
        expiry_ms = max(math.ceil(expires_at.timestamp() * 1000), now_ms + 1000)
        recorded = self._client.set(self._prefix + token_id, b"1", nx=True, pxat=expiry_ms)
        return not recorded


def init_app(app: Any) -> None:
    """The shared replay cache: Redis when ``IDP_REDIS_URL`` is set, else the database."""
    from idp.stores.db import database

    client = app.extensions.get("idp.redis")
    cache = (
        RedisReplayCache(client) if client is not None else SqlReplayCache(database(app).sessions)
    )
    app.extensions["idp.replay"] = cache


def replay_cache(app: Any = None) -> Any:
    """The app's shared :class:`token_suite.replay.ReplayCache`."""
    from flask import current_app

    return (app or current_app).extensions["idp.replay"]
