"""Per-process caches of what rarely changes, invalidated within a second of any change.

What the hot paths read on every request (OAuth clients and their partners, services and
their PAGM, pilot lists, signing keys) is cached in each process. Every change to those
tables bumps a named *generation* counter (``cache_generation``) in the SAME transaction as
the change, whoever makes it (a worker, the CLI, another host): a session listener watches
the ORM flush and bulk statements on the tables of :data:`WATCHED`, so no call site can
forget it, and the counter commits or rolls back with the change.

Each process reads every counter with one small query at most every
:data:`POLL_SECONDS` (0.5 s), when a cached value is asked for; a counter that moved
drops that name's cache (and runs its listeners: documents prepared from keys, for
example). A change made anywhere is therefore seen everywhere within one second, and a
change committed in this process is seen by its next request (the poll is forced).

A value is loaded on a fresh session (a snapshot at least as new as the counters read),
and is not kept if its name was invalidated while it loaded: no stale value survives a
change. Caches are bounded (an unknown client id typed by anyone is cached as ``None``,
so the bound keeps that from growing without end).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from flask import Flask, current_app
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction, sessionmaker

from idp.stores.models import CacheGeneration
from rcd_store.db import upsert

V = TypeVar("V")
EXTENSION = "idp.generations"
#: a process reads the counters at most this often
POLL_SECONDS = 0.5
#: values kept per name; past it the name's cache starts over
MAX_ENTRIES = 10_000

#: table -> the generation its changes bump
WATCHED: dict[str, str] = {
    "partner": "partners",
    "partner_service": "partners",
    "saml_sp": "partners",
    "oauth_client": "partners",
    "service": "services",
    "service_pagm": "services",
    "pilot_company": "pilots",
    "signing_key": "keys",
}

_PENDING = "idp.generations.pending"
_BUMPED = "idp.generations.bumped"
_registries: weakref.WeakSet[Generations] = weakref.WeakSet()


def watch(table: str, name: str) -> None:
    """Have changes to ``table`` bump generation ``name`` (for tables of other packages)."""
    WATCHED[table] = name


# ---------------------------------------------------------------------- bumping


def _names(tables: Iterable[str]) -> set[str]:
    return {WATCHED[t] for t in tables if t in WATCHED}


def _bump(session: Session, names: set[str]) -> None:
    """Add one to each counter of ``names`` in the session's transaction."""
    table = CacheGeneration.__table__
    stmt = upsert(session, CacheGeneration).values([{"name": n, "value": 1} for n in sorted(names)])
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.name], set_={"value": table.c.value + 1}
    )
    session.connection().execute(stmt)
    session.info.setdefault(_BUMPED, set()).update(names)


@event.listens_for(Session, "before_flush")
def _collect(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    objects = [*session.new, *session.dirty, *session.deleted]
    names = _names(getattr(o, "__tablename__", "") for o in objects)
    if names:
        session.info.setdefault(_PENDING, set()).update(names)


@event.listens_for(Session, "after_flush")
def _bump_flushed(session: Session, _flush: UOWTransaction) -> None:
    names = session.info.pop(_PENDING, None)
    if names:
        _bump(session, names)


@event.listens_for(Session, "do_orm_execute")
def _bump_bulk(state: ORMExecuteState) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        table = getattr(state.statement, "table", None)
        names = _names([str(getattr(table, "name", ""))])
        if names:
            _bump(state.session, names)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(_BUMPED, None):
        for registry in list(_registries):
            registry.stale()


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_BUMPED, None)


# ---------------------------------------------------------------------- reading


class Generations:
    """The counters as this process last read them, and the caches they guard."""

    def __init__(self, engine: Callable[[], Engine], sessions: sessionmaker[Session]) -> None:
        self.engine = engine  # the database's engine now (it may be replaced)
        self.sessions = sessions
        self._seen: dict[str, int] = {}
        self._checked = float("-inf")
        self._force = True
        self._lock = threading.Lock()
        self._store = threading.Lock()
        self._caches: dict[str, dict[Hashable, Any]] = {}
        self._epochs: dict[str, int] = {}
        self._listeners: dict[str, list[Callable[[], None]]] = {}
        _registries.add(self)

    def stale(self) -> None:
        """Read the counters again at the next :meth:`refresh` (a change committed here)."""
        self._force = True

    def refresh(self) -> None:
        """Read the counters if the last read is older than :data:`POLL_SECONDS` (or a
        change was committed in this process); drop the caches of those that moved. One
        thread reads; the others go on with what was read last."""
        started = time.monotonic()
        if not self._force and started - self._checked < POLL_SECONDS:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._force = False
            with self.engine().connect() as conn:
                read = dict(conn.execute(select(CacheGeneration.name, CacheGeneration.value)).all())
            moved = [n for n in {*read, *self._seen} if read.get(n) != self._seen.get(n)]
            self._seen = {str(n): int(v) for n, v in read.items()}
            self._checked = started
        finally:
            self._lock.release()
        for name in moved:
            self.invalidate(name)

    def current(self, name: str) -> int:
        """The counter ``name`` as last read (after a :meth:`refresh`): part of an ETag."""
        self.refresh()
        return self._seen.get(name, 0)

    def invalidate(self, name: str) -> None:
        """Drop what is cached under ``name`` and run its listeners."""
        with self._store:
            self._epochs[name] = self._epochs.get(name, 0) + 1
            self._caches.pop(name, None)
        for listener in list(self._listeners.get(name, ())):
            listener()

    def on_change(self, name: str, listener: Callable[[], None]) -> None:
        """Call ``listener`` (no argument) whenever generation ``name`` moves."""
        self._listeners.setdefault(name, []).append(listener)

    def cached(self, name: str, key: Hashable, load: Callable[[Session], V]) -> V:
        """The value of ``key`` under generation ``name``: cached, else ``load(session)`` on
        a fresh session (closed after; return plain or fully loaded values), kept unless
        ``name`` moved while it loaded."""
        self.refresh()
        cache = self._caches.get(name)
        if cache is not None and key in cache:
            return cache[key]  # type: ignore[no-any-return]
        epoch = self._epochs.get(name, 0)
        with self.sessions() as session:
            value = load(session)
        with self._store:
            if self._epochs.get(name, 0) == epoch:
                cache = self._caches.setdefault(name, {})
                if len(cache) >= MAX_ENTRIES:
                    cache.clear()
                cache[key] = value
        return value


def init_app(
    app: Flask, engine: Callable[[], Engine], sessions: sessionmaker[Session]
) -> Generations:
    registry = app.extensions[EXTENSION] = Generations(engine, sessions)
    return registry


def generations(app: Flask | None = None) -> Generations:
    """The app's generations (made with its database by :func:`idp.stores.db.init_app`)."""
    registry: Generations = (app or current_app).extensions[EXTENSION]
    return registry
