"""One durable write per token, shared by concurrent requests (group commit).

A request that issued a token hands its rows (the issued-token record) and its audit
events to the process's group commit and waits. The first request to find no commit
in progress leads: it takes everything queued, writes it in ONE transaction
(SQLAlchemy Core multi-row inserts; the audit events chained in the group commit's own
segment of this thread, :func:`rcd_store.audit.record_many`), commits once for all of
them and wakes the others; a request that queued during that commit is committed by
the next leader, with every other one queued meanwhile. A lone request (a sync worker)
commits its own write on its own thread: no hand-off, no extra thread.

A request returns its token only after :meth:`GroupCommit.write` came back, that is
after the commit of its trace: a worker killed before that commit lets no token out,
and a failed commit fails every request of the batch (503, nothing issued). Waiting
is bounded (the database's own bounds, plus one second): past it the request answers
503, and a trace committed later only names a token nobody received.

Only requests that write nothing else use it (client credentials, navigation): a
request holding its own write transaction (a code claimed, a refresh token rotated)
commits its token there, atomically with the rest, as before. A caller must not hold
an uncommitted write when it calls :meth:`GroupCommit.write`: on SQLite the commit
would wait for the caller's own lock (until the busy timeout).
"""

from __future__ import annotations

import functools
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Insert, Table, insert
from sqlalchemy.exc import TimeoutError as StoreTimeout
from sqlalchemy.orm import Session, sessionmaker

from rcd_store import audit

EXTENSION = "idp.group_commit"
#: an audit event: kind, actor, target, data
Event = tuple[str, str | None, str | None, dict[str, Any]]

#: called (with the session) just before each commit: a fault-injection point for tests
before_commit: Callable[[Session], None] | None = None


@dataclass
class Write:
    """One request's rows and events, and what became of them."""

    rows: Sequence[tuple[Table, dict[str, Any]]]
    events: Sequence[Event]
    done: bool = False
    committed: bool = False
    error: Exception | None = None


class GroupCommit:
    """The group commit of one process: a queue, and at most one leader committing."""

    def __init__(self, sessions: sessionmaker[Session], *, wait: float) -> None:
        self.sessions = sessions
        self.wait = wait
        self._pending: list[Write] = []
        self._turn = threading.Condition(threading.Lock())
        self._leading = False
        self._segments = threading.local()

    def write(self, rows: Sequence[tuple[Table, dict[str, Any]]], events: Sequence[Event]) -> None:
        """Insert ``rows`` and append ``events`` to the audit trail, durably: returns once
        committed; raises what the commit raised, or a store timeout (both 503)."""
        item, deadline = Write(rows, events), time.monotonic() + self.wait
        with self._turn:
            self._pending.append(item)
            while self._leading and not item.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreTimeout("écriture groupée non confirmée à temps")
                self._turn.wait(left)
            batch: list[Write] = []
            if not item.done:  # nobody is committing: lead, with everything queued
                self._leading, batch, self._pending = True, self._pending, []
        if batch:
            self._lead(batch)
        if not item.committed:
            raise item.error or StoreTimeout("écriture groupée non confirmée à temps")

    def _lead(self, batch: list[Write]) -> None:
        try:
            self._commit(batch)
        except Exception as exc:  # noqa: BLE001 - handed to each request of the batch (503)
            for item in batch:
                item.error = exc
        else:
            for item in batch:
                item.committed = True
        finally:
            with self._turn:
                for item in batch:
                    item.done = True
                self._leading = False
                self._turn.notify_all()

    def _segment(self) -> str:
        """This thread's own segment for the group commit (a new one after a fork)."""
        pid, segment = getattr(self._segments, "current", (None, ""))
        if pid != os.getpid():
            segment = uuid.uuid4().hex
            self._segments.current = (os.getpid(), segment)
        return str(segment)

    def _commit(self, batch: Sequence[Write]) -> None:
        tables: dict[Table, list[dict[str, Any]]] = {}
        for item in batch:
            for table, row in item.rows:
                tables.setdefault(table, []).append(row)
        with self.sessions() as session:
            connection = session.connection()  # Core: no ORM work per row
            for table, rows in tables.items():
                connection.execute(_insert(table), rows)
            events = [event for item in batch for event in item.events]
            audit.record_many(session, events, segment=self._segment())
            if before_commit is not None:
                before_commit(session)
            session.commit()


@functools.cache
def _insert(table: Table) -> Insert:
    """The INSERT of ``table``, built once (its compiled form is cached by SQLAlchemy)."""
    return insert(table)


def init_app(app: Flask, sessions: sessionmaker[Session]) -> GroupCommit:
    config = app.config
    wait = (
        1
        + float(config.get("DB_STATEMENT_TIMEOUT") or 30)
        + float(config.get("DB_POOL_TIMEOUT") or 0)
    )
    writer = app.extensions[EXTENSION] = GroupCommit(sessions, wait=wait)
    return writer


def group_commit(app: Flask | None = None) -> GroupCommit:
    """The app's writer (made with its database by :func:`idp.stores.db.init_app`)."""
    writer: GroupCommit = (app or current_app).extensions[EXTENSION]
    return writer
