"""One durable write per token, shared by concurrent requests (group commit).

A request that issued a token hands its audit events (the token's trace) to the
process's group commit and waits. The first request to find no commit in progress
leads: it takes everything queued, writes it in ONE transaction (one multi-row INSERT,
the events chained in the group commit's own segment of this thread,
:mod:`rcd_store.audit`), commits once for all of them and wakes the others; a request that queued during that commit is committed by
the next leader, with every other one queued meanwhile. A lone request (a sync worker)
commits its own write on its own thread: no hand-off, no extra thread.

A request returns its token only after :meth:`GroupCommit.write` came back, that is
after the commit of its trace: a worker killed before that commit lets no token out,
and a failed commit fails every request of the batch (503, nothing issued). Waiting
is bounded (the database's own bounds, plus one second): past it the request answers
503 and leaves the queue (a trace committed anyway, its batch already taken, only
names a token nobody received).

On SQLite (one writer at a time per database file), the leaders of the worker processes
take turns through a lock file beside the database (``flock``, waited for in the
kernel): without it, a leader finding the file locked by another process's commit
sleeps in SQLite's busy handler (1, 2, 5, 10... up to 100 ms steps) long after that
commit is over. Measured on 2 cores, token endpoint at 16 connections: p99 43-68 ms
without, 16-17 ms with (docs/profile.md, « Mesures du point de jeton »).

Only requests that write nothing else use it (client credentials, navigation): a
request holding its own write transaction (a code claimed, a refresh token rotated)
commits its token there, atomically with the rest, as before. A caller must not hold
an uncommitted write when it calls :meth:`GroupCommit.write`: on SQLite the commit
would wait for the caller's own lock (until the busy timeout).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import TimeoutError as StoreTimeout
from sqlalchemy.orm import Session, sessionmaker

from rcd_store import audit

EXTENSION = "idp.group_commit"
#: an audit event: kind, actor, target, data
Event = tuple[str, str | None, str | None, dict[str, Any]]

#: how long a leader keeps its connection for the next one, seconds: under load the
#: commits follow each other on one connection; idle, a connection comes from the pool
KEEP = 1.0
#: called (with the session or the connection) just before each commit: a fault-injection
#: point for tests
before_commit: Callable[[Session | Connection], None] | None = None


def _held() -> Any:
    """A lock already taken: released once to wake the one thread waiting on it."""
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class Write:
    """One request's events, and what became of them."""

    events: Sequence[Event]
    done: bool = False
    committed: bool = False
    error: Exception | None = None
    #: this request commits the next batch (the first of the queue when a commit ends)
    leads: bool = False
    #: held until this request is done or leads: its thread, alone, waits on it
    wake: Any = field(default_factory=_held)


class GroupCommit:
    """The group commit of one process: a queue, and at most one leader committing.

    A leader wakes the requests of its batch and, when more have queued meanwhile, the
    first of them as the next leader: no other thread is woken, so a queue of waiting
    requests costs no thread switches while a commit is in progress."""

    def __init__(self, sessions: sessionmaker[Session], *, wait: float) -> None:
        self.sessions = sessions
        self.engine: Engine = sessions.kw["bind"]
        self.wait = wait
        #: the lock file the leaders of this machine's processes take turns through
        self.lock_file = _lock_file(self.engine)
        self._lock_opened: tuple[int, int] | None = None
        self._pending: list[Write] = []
        self._lock = threading.Lock()
        self._leading = False
        self._segments = threading.local()
        #: the connection the last leader committed on, its process and when: the next
        #: leader takes it back within :data:`KEEP` seconds (no pool checkout, and no
        #: pre-ping round trip on PostgreSQL); older, it goes back to the pool
        self._kept: tuple[Connection, int, float] | None = None
        event.listen(self.engine, "engine_disposed", self._let_go)

    def _let_go(self, _engine: Engine) -> None:
        """The engine is disposed: close the kept connection with its pool, and the lock
        file's descriptor."""
        kept, self._kept = self._kept, None
        if kept is not None and kept[1] == os.getpid():
            kept[0].invalidate()  # closes the database connection itself
        opened, self._lock_opened = self._lock_opened, None
        if opened is not None and opened[0] == os.getpid():
            os.close(opened[1])

    def write(self, events: Sequence[Event]) -> None:
        """Append ``events`` to the audit trail, durably: returns once
        committed; raises what the commit raised, or a store timeout (both 503)."""
        item = Write(events)
        with self._lock:
            self._pending.append(item)
            if not self._leading:  # nobody is committing: lead
                self._leading = item.leads = True
        if not item.leads and not item.wake.acquire(timeout=self.wait):
            with self._lock:
                if not (item.done or item.leads):  # still queued: given up
                    self._pending.remove(item)
                    raise StoreTimeout("écriture groupée non confirmée à temps")
        if item.leads and not item.done:
            with self._lock:  # everything queued, this request first
                batch, self._pending = self._pending, []
            self._lead(batch)
        if not item.committed:
            raise item.error or StoreTimeout("écriture groupée non confirmée à temps")

    def _lead(self, batch: list[Write]) -> None:
        try:
            with self._turn_among_processes():
                self._commit(batch)
        except Exception as exc:  # noqa: BLE001 - handed to each request of the batch (503)
            for item in batch:
                item.error = exc
        else:
            for item in batch:
                item.committed = True
        finally:
            with self._lock:
                for item in batch:
                    item.done = True
                following = self._pending[0] if self._pending else None
                if following is None:
                    self._leading = False
                else:
                    following.leads = True
            for item in batch[1:]:  # the first is this thread
                item.wake.release()
            if following is not None:
                following.wake.release()

    @contextlib.contextmanager
    def _turn_among_processes(self) -> Iterator[None]:
        """The database's commit turn among this machine's processes (SQLite only): a
        leader waits for it in the kernel and gets it as soon as the other commit ends."""
        if self.lock_file is None:
            yield
            return
        descriptor = self._lock_descriptor(self.lock_file)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)

    def _lock_descriptor(self, path: str) -> int:
        """This process's own descriptor of the lock file, opened once: a lock belongs to
        an open file, which a forked worker would share with its parent, so each process
        opens its own."""
        opened = self._lock_opened
        if opened is None or opened[0] != os.getpid():
            opened = self._lock_opened = (os.getpid(), os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        return opened[1]

    def _segment(self) -> str:
        """This thread's own segment for the group commit (a new one after a fork)."""
        pid, segment = getattr(self._segments, "current", (None, ""))
        if pid != os.getpid():
            segment = uuid.uuid4().hex
            self._segments.current = (os.getpid(), segment)
        return str(segment)

    def _commit(self, batch: Sequence[Write]) -> None:
        """One transaction for the batch: on a plain Core connection once this
        process's segment is warm (its key and head known: no session, no read), else
        (the first commit of the segment) in a session that reads or opens it."""
        events = [event for item in batch for event in item.events]
        segment = self._segment()
        warm = audit.warm_segment(self.engine, segment)
        if warm is None:
            with self.sessions() as session:
                audit.record_many(session, events, segment=segment)
                if before_commit is not None:
                    before_commit(session)
                session.commit()
            return
        connection = self._connection()
        try:
            with connection.begin():
                head = warm.append(connection, events)
                if before_commit is not None:
                    before_commit(connection)
        except BaseException:
            connection.close()  # back to the pool, which checks it before lending it again
            raise
        self._kept = (connection, os.getpid(), time.monotonic())
        warm.committed(head)

    def _connection(self) -> Connection:
        """The kept connection when the last commit was less than :data:`KEEP` seconds
        ago in this process (only a leader calls this: one at a time), else one from the
        pool (the old one returned)."""
        kept, self._kept = self._kept, None
        if kept is not None and kept[1] == os.getpid():
            if time.monotonic() - kept[2] < KEEP:
                return kept[0]
            kept[0].close()
        return self.engine.connect()


def init_app(app: Flask, sessions: sessionmaker[Session]) -> GroupCommit:
    config = app.config
    wait = (
        1
        + float(config.get("DB_STATEMENT_TIMEOUT") or 30)
        + float(config.get("DB_POOL_TIMEOUT") or 0)
    )
    writer = app.extensions[EXTENSION] = GroupCommit(sessions, wait=wait)
    return writer


def _lock_file(engine: Engine) -> str | None:
    """Beside a SQLite database file, the lock file of its commits; ``None`` for any other
    database (PostgreSQL lets concurrent commits proceed) or a SQLite one in memory."""
    url = engine.url
    name = url.database or ""
    if url.get_backend_name() != "sqlite" or name in ("", ":memory:") or name.startswith("file:"):
        return None
    return f"{name}.commit-lock"


def group_commit(app: Flask | None = None) -> GroupCommit:
    """The app's writer (made with its database by :func:`idp.stores.db.init_app`)."""
    writer: GroupCommit = (app or current_app).extensions[EXTENSION]
    return writer
