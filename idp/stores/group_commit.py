"""One durable write per token, shared by concurrent requests (group commit).

A request that issued a token hands its rows (the issued-token record) and its audit
events to the process's writer and waits: the writer thread takes everything queued,
writes it in ONE transaction (SQLAlchemy Core multi-row inserts; the audit events
chained in the writer's own segment, :func:`rcd_store.audit.record_many`) and commits
once for all of them, then wakes each request. Under load, the requests that arrive
while a commit is in progress share the next one: one commit per batch, not per token.

A request returns its token only after :meth:`GroupCommit.write` came back, that is
after the commit of its trace: a worker killed before that commit lets no token out,
and a failed commit fails every request of the batch (503, nothing issued). Waiting
is bounded (the database's own bounds, plus one second): past it the request answers
503, and a trace committed later only names a token nobody received.

Only requests that write nothing else use it (client credentials): a request holding
its own write transaction (a code claimed, a refresh token rotated) commits its token
there, atomically with the rest, as before.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Table, insert
from sqlalchemy.exc import TimeoutError as StoreTimeout
from sqlalchemy.orm import Session, sessionmaker

from rcd_store import audit

EXTENSION = "idp.group_commit"
#: most writes committed together
MAX_BATCH = 256
#: an audit event: kind, actor, target, data
Event = tuple[str, str | None, str | None, dict[str, Any]]

#: called (with the session) just before each commit: a fault-injection point for tests
before_commit: Callable[[Session], None] | None = None


@dataclass
class Write:
    """One request's rows and events, and what became of them."""

    rows: Sequence[tuple[Table, dict[str, Any]]]
    events: Sequence[Event]
    done: threading.Event = field(default_factory=threading.Event)
    committed: bool = False
    error: Exception | None = None


class GroupCommit:
    """The writer of one process (started on first use, again after a fork)."""

    def __init__(self, sessions: sessionmaker[Session], *, wait: float) -> None:
        self.sessions = sessions
        self.wait = wait
        self._queue: queue.SimpleQueue[Write] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pid: int | None = None

    def write(self, rows: Sequence[tuple[Table, dict[str, Any]]], events: Sequence[Event]) -> None:
        """Insert ``rows`` and append ``events`` to the audit trail, durably: returns once
        committed; raises what the commit raised, or a store timeout (both 503)."""
        self._started()
        item = Write(rows, events)
        self._queue.put(item)
        item.done.wait(self.wait)
        if not item.committed:
            raise item.error or StoreTimeout("écriture groupée non confirmée à temps")

    def _started(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked worker: a new writer
                self._queue = queue.SimpleQueue()
                threading.Thread(target=self._run, name="group-commit", daemon=True).start()
                self._pid = os.getpid()

    def _run(self) -> None:
        audit.new_writer_segment()  # the writer's own segment of the trail
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit(batch)
            except Exception as exc:  # noqa: BLE001 - handed to each waiting request (503)
                for item in batch:
                    item.error = exc
            else:
                for item in batch:
                    item.committed = True
            finally:
                for item in batch:
                    item.done.set()

    def _commit(self, batch: Sequence[Write]) -> None:
        tables: dict[Table, list[dict[str, Any]]] = {}
        for item in batch:
            for table, row in item.rows:
                tables.setdefault(table, []).append(row)
        with self.sessions() as session:
            for table, rows in tables.items():
                session.execute(insert(table), rows)
            audit.record_many(session, [event for item in batch for event in item.events])
            if before_commit is not None:
                before_commit(session)
            session.commit()


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
