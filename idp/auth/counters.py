"""Where the throttle's counters live: the database, this process's memory, or Redis.

Each backend reserves attempts atomically (never read-then-write) and offers the two
batch calls a login needs, each ONE round trip to its store (issue 18: no SQL per
request beyond the rule's own): :meth:`reserve_all` (every counter of an attempt) and
:meth:`settle` (a success resets its account counters and gives its address
reservation back). Which counter lives where is the policy of
:mod:`idp.auth.throttle`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import groupby
from typing import Any, Protocol

from sqlalchemy import (
    BindParameter,
    Integer,
    String,
    bindparam,
    column,
    delete,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.selectable import TextualSelect

from idp.stores.models import LoginThrottle
from rcd_store.db import UTCDateTime

MAX_LOCKOUT_SECONDS = 24 * 3600
#: a lock count older than this is forgotten (the doubling starts over)
LOCK_MEMORY = timedelta(hours=24)
#: how often a process deletes the counters that no longer hold anything
PURGE_EVERY = timedelta(minutes=10)
#: counters kept in a process's memory before the lapsed ones are swept
MEMORY_SWEEP_AT = 10_000


@dataclass(frozen=True)
class Reservation:
    """One reserved attempt on one counter."""

    key: str
    count: int
    allowed: bool
    retry_after: int
    lock_count: int = 0


@dataclass(frozen=True)
class Rule:
    """How many failures a counter takes in its window, and how long it then locks."""

    limit: int
    window: int
    doubling: bool


#: one counter to reserve, and its rule
Wanted = tuple[str, Rule]


class Backend(Protocol):
    def reserve(self, key: str, rule: Rule, *, now: datetime) -> Reservation: ...

    def reserve_all(
        self, wanted: Sequence[Wanted], *, now: datetime, gate: bool = False
    ) -> list[Reservation]: ...

    def failed(self, reservation: Reservation, rule: Rule, *, now: datetime) -> None: ...

    def reset(self, key: str) -> None: ...

    def release(self, key: str) -> None: ...

    def settle(
        self,
        *,
        reset: Sequence[str] = (),
        release: Sequence[str] = (),
        within: Connection | None = None,
    ) -> None: ...

    def locked_for(self, key: str, rule: Rule, *, now: datetime) -> int: ...


def lock_seconds(rule: Rule, lock_count: int) -> int:
    """15 minutes, then 30, 60... (doubling on repeats), at most 24 hours."""
    if not rule.doubling:
        return rule.window
    return int(min(rule.window * (2 ** min(lock_count, 20)), MAX_LOCKOUT_SECONDS))


def _retry(seconds: float) -> int:
    return max(1, math.ceil(seconds))


@lru_cache(maxsize=8)
def _upsert(rows: int) -> TextualSelect:
    """Reserve ``rows`` counters (``:k0``...) in one statement, the same SQL on SQLite and
    PostgreSQL: a counter whose window (from ``:start``) or lock (until ``:now``) lapsed
    starts over at 1, a lock count older than ``:stale`` is forgotten. Textual, so that
    its compiled form is cached: SQLAlchemy compiles a multi-row ``insert().values()``
    at every call (about a millisecond of CPU, as much as the statement itself)."""
    lapsed = (
        "(t.locked_until IS NOT NULL AND t.locked_until <= :now)"
        " OR (t.locked_until IS NULL AND t.updated_at <= :start)"
    )
    values = ", ".join(f"(:k{i}, 1, NULL, 0, :now)" for i in range(rows))
    sql = (
        'INSERT INTO login_throttle AS t ("key", failures, locked_until, lock_count, updated_at) '
        f'VALUES {values} ON CONFLICT ("key") DO UPDATE SET '
        f"failures = CASE WHEN {lapsed} THEN 1 ELSE t.failures + 1 END, "
        f"locked_until = CASE WHEN {lapsed} THEN NULL ELSE t.locked_until END, "
        "lock_count = CASE WHEN t.updated_at <= :stale THEN 0 ELSE t.lock_count END, "
        f"updated_at = CASE WHEN {lapsed} THEN :now ELSE t.updated_at END "
        'RETURNING "key", failures, locked_until, lock_count, updated_at'
    )
    times = [bindparam(name, type_=UTCDateTime) for name in ("now", "start", "stale")]
    return (
        text(sql)
        .bindparams(*times)
        .columns(
            column("key", String),
            column("failures", Integer),
            column("locked_until", UTCDateTime),
            column("lock_count", Integer),
            column("updated_at", UTCDateTime),
        )
    )


#: built once (issue 18): building them at each login cost more than running them
_KEYS: BindParameter[str] = bindparam("keys", expanding=True)
_RESET = (
    update(LoginThrottle)
    .where(LoginThrottle.key.in_(_KEYS))
    .values(failures=0, locked_until=None, lock_count=0)
)
_RELEASE = (
    update(LoginThrottle)
    .where(LoginThrottle.key.in_(_KEYS), LoginThrottle.failures > 0)
    .values(failures=LoginThrottle.failures - 1)
)


class SqlBackend:
    """Counters in ``login_throttle`` (SQLite or PostgreSQL), each change one atomic statement,
    on its own connection and transaction (committed at once, whatever the request does).

    :meth:`reserve_all` reserves counters of one rule in ONE multi-row ``INSERT ... ON
    CONFLICT DO UPDATE ... RETURNING`` (keys sorted: two PostgreSQL transactions lock
    the same rows in the same order, never a deadlock); :meth:`settle` resets in one
    ``UPDATE ... WHERE key IN``.

    A row whose window lapsed more than ``keep`` ago (24 hours, or the lockout if longer)
    and that holds no lock is worth nothing: the next reservation would start it over.
    Each process deletes such rows every :data:`PURGE_EVERY` (a second-factor login
    leaves rows behind, one per pending login)."""

    def __init__(self, engine: Engine, *, keep: timedelta = LOCK_MEMORY) -> None:
        self.engine = engine
        self.keep = max(keep, LOCK_MEMORY)
        self._purged_at: datetime | None = None
        self._purging = threading.Lock()

    def purge(self, *, now: datetime) -> int:
        """Delete the counters that hold nothing any more (see the class docstring)."""
        table = LoginThrottle.__table__
        stmt = delete(LoginThrottle).where(
            table.c.updated_at < now - self.keep,
            or_(table.c.locked_until.is_(None), table.c.locked_until < now),
        )
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount or 0)

    def _purge_now_and_then(self, now: datetime) -> None:
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return
        if self._purging.acquire(blocking=False):  # one thread purges, the others go on
            try:
                self._purged_at = now
                self.purge(now=now)
            finally:
                self._purging.release()

    def _reserve_group(self, keys: Sequence[str], rule: Rule, now: datetime) -> list[Reservation]:
        unique = sorted(set(keys))
        params: dict[str, Any] = {f"k{i}": key for i, key in enumerate(unique)}
        params |= {"now": now, "start": now - timedelta(seconds=rule.window)}
        params["stale"] = now - LOCK_MEMORY
        with self.engine.begin() as conn:
            rows = conn.execute(_upsert(len(unique)), params)
            found = {row[0]: row[1:] for row in rows}
        reservations = []
        for key in keys:
            count, locked_until, lock_count, started = found[key]
            until = locked_until or started + timedelta(seconds=rule.window)
            allowed = count <= rule.limit and not (locked_until and locked_until > now)
            retry = _retry((until - now).total_seconds())
            reservations.append(Reservation(key, int(count), allowed, retry, int(lock_count)))
        return reservations

    def reserve(self, key: str, rule: Rule, *, now: datetime) -> Reservation:
        return self.reserve_all([(key, rule)], now=now)[0]

    def reserve_all(
        self, wanted: Sequence[Wanted], *, now: datetime, gate: bool = False
    ) -> list[Reservation]:
        """One statement per run of counters under the same rule (one for a login's
        account counters); with ``gate``, nothing after a refused first counter."""
        self._purge_now_and_then(now)
        found: list[Reservation] = []
        runs = [list(wanted[:1]), list(wanted[1:])] if gate else [list(wanted)]
        for run in runs:
            for rule, same in groupby(run, key=lambda item: item[1]):
                found += self._reserve_group([key for key, _rule in same], rule, now)
            if gate and found and not found[0].allowed:
                break
        return found

    def failed(self, reservation: Reservation, rule: Rule, *, now: datetime) -> None:
        if reservation.count < rule.limit:
            return
        until = now + timedelta(seconds=lock_seconds(rule, reservation.lock_count))
        # compare-and-set on lock_count: one failure per cycle sets the lock
        stmt = (
            update(LoginThrottle)
            .where(
                LoginThrottle.key == reservation.key,
                LoginThrottle.lock_count == reservation.lock_count,
                LoginThrottle.locked_until.is_(None),
            )
            .values(locked_until=until, lock_count=LoginThrottle.lock_count + 1)
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def reset(self, key: str) -> None:
        self.settle(reset=[key])

    def release(self, key: str) -> None:
        self.settle(release=[key])

    def settle(
        self,
        *,
        reset: Sequence[str] = (),
        release: Sequence[str] = (),
        within: Connection | None = None,
    ) -> None:
        """Reset ``reset`` and give one attempt back to ``release``: one statement each
        (a login's success sends only the first: its address counts elsewhere), in a
        transaction of their own or in ``within``'s, committed with the caller's writes
        (the login's lean path settles in the transaction that opens the session)."""
        if within is None:
            with self.engine.begin() as conn:
                self._settle(conn, reset, release)
        else:
            self._settle(within, reset, release)

    @staticmethod
    def _settle(conn: Connection, reset: Sequence[str], release: Sequence[str]) -> None:
        if reset:
            conn.execute(_RESET, {"keys": sorted(set(reset))})
        if release:
            conn.execute(_RELEASE, {"keys": sorted(set(release))})

    def locked_for(self, key: str, rule: Rule, *, now: datetime) -> int:
        with self.engine.connect() as conn:
            until = conn.execute(
                select(LoginThrottle.locked_until).where(LoginThrottle.key == key)
            ).scalar()
        return _retry((until - now).total_seconds()) if until and until > now else 0


class MemoryBackend:
    """Counters in this process's memory, as :class:`RedisBackend` counts them (a window
    opened by the first attempt, a lock that extends it), without any round trip. Per
    process: with several workers each keeps its own count, so W workers allow W times
    a limit. Fit for limits whose purpose survives that (a client's token budget, an
    address's failures), never for the account lockout (see :mod:`idp.auth.throttle`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: key -> [count, end of window (epoch seconds), locks]
        self._counters: dict[str, list[float]] = {}

    def _live(self, key: str, at: float) -> list[float] | None:
        found = self._counters.get(key)
        return found if found is not None and found[1] > at else None

    def reserve(self, key: str, rule: Rule, *, now: datetime) -> Reservation:
        at = now.timestamp()
        with self._lock:
            counter = self._live(key, at)
            if counter is None:
                if len(self._counters) >= MEMORY_SWEEP_AT:
                    self._counters = {k: c for k, c in self._counters.items() if c[1] > at}
                old = self._counters.get(key)
                counter = self._counters[key] = [0, at + rule.window, old[2] if old else 0]
            counter[0] += 1
            count, until, locks = counter
        return Reservation(key, int(count), count <= rule.limit, _retry(until - at), int(locks))

    def reserve_all(
        self, wanted: Sequence[Wanted], *, now: datetime, gate: bool = False
    ) -> list[Reservation]:
        found: list[Reservation] = []
        for key, rule in wanted:
            found.append(self.reserve(key, rule, now=now))
            if gate and not found[0].allowed:
                break
        return found

    def failed(self, reservation: Reservation, rule: Rule, *, now: datetime) -> None:
        if reservation.count < rule.limit:
            return
        at = now.timestamp()
        with self._lock:
            counter = self._live(reservation.key, at)
            if counter is not None and counter[2] == reservation.lock_count:
                counter[1] = at + lock_seconds(rule, reservation.lock_count)
                counter[2] += 1

    def reset(self, key: str) -> None:
        with self._lock:
            self._counters.pop(key, None)

    def release(self, key: str) -> None:
        with self._lock:
            counter = self._counters.get(key)
            if counter is not None and counter[0] > 0:
                counter[0] -= 1

    def settle(
        self,
        *,
        reset: Sequence[str] = (),
        release: Sequence[str] = (),
        within: Connection | None = None,
    ) -> None:
        """At once, whatever ``within`` (a database transaction: not this store's)."""
        for key in reset:
            self.reset(key)
        for key in release:
            self.release(key)

    def locked_for(self, key: str, rule: Rule, *, now: datetime) -> int:
        at = now.timestamp()
        counter = self._live(key, at)
        if counter is None or counter[0] < rule.limit:
            return 0
        return _retry(counter[1] - at)


#: KEYS: (counter, locks) per counter; ARGV: gate, then (window, limit) per counter.
#: Returns (count, ttl, locks) per counter reserved; with gate, stops after a refused first.
_RESERVE_LUA = """
local found = {}
for i = 1, #KEYS / 2 do
  local key, window = KEYS[2 * i - 1], ARGV[2 * i]
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, window) end
  local ttl = redis.call('TTL', key)
  if ttl < 0 then redis.call('EXPIRE', key, window); ttl = tonumber(window) end
  local locks = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  table.insert(found, n); table.insert(found, ttl); table.insert(found, locks)
  if i == 1 and ARGV[1] == '1' and n > tonumber(ARGV[2 * i + 1]) then break end
end
return found
"""

_LOCK_LUA = """
local locks = tonumber(redis.call('GET', KEYS[2]) or '0')
if locks ~= tonumber(ARGV[2]) then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

#: KEYS: the counters (and their locks) to reset, then those to give one attempt back;
#: ARGV[1]: how many KEYS are reset. A missing counter is never created by a give-back.
_SETTLE_LUA = """
local resets = tonumber(ARGV[1])
for i = 1, resets do redis.call('DEL', KEYS[i]) end
for i = resets + 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('DECR', KEYS[i]) end
end
return 1
"""


class RedisBackend:
    """Counters in Redis, each call one Lua script (one round trip, atomic): INCR +
    EXPIRE to reserve, a lock extends the counter's TTL."""

    def __init__(self, client: Any, *, prefix: str = "idp:throttle:") -> None:
        self.client = client
        self.prefix = prefix
        self._reserve = client.register_script(_RESERVE_LUA)
        self._lock = client.register_script(_LOCK_LUA)
        self._settle = client.register_script(_SETTLE_LUA)

    def _keys(self, key: str) -> list[str]:
        return [self.prefix + key, self.prefix + "locks:" + key]

    def reserve(self, key: str, rule: Rule, *, now: datetime) -> Reservation:
        return self.reserve_all([(key, rule)], now=now)[0]

    def reserve_all(
        self, wanted: Sequence[Wanted], *, now: datetime, gate: bool = False
    ) -> list[Reservation]:
        keys = [name for key, _rule in wanted for name in self._keys(key)]
        args: list[int] = [1 if gate else 0]
        for _key, rule in wanted:
            args += [rule.window, rule.limit]
        flat = [int(x) for x in self._reserve(keys=keys, args=args)]
        return [
            Reservation(
                key,
                flat[3 * i],
                flat[3 * i] <= rule.limit,
                max(1, flat[3 * i + 1]),
                flat[3 * i + 2],
            )
            for i, (key, rule) in enumerate(wanted[: len(flat) // 3])
        ]

    def failed(self, reservation: Reservation, rule: Rule, *, now: datetime) -> None:
        if reservation.count < rule.limit:
            return
        seconds = lock_seconds(rule, reservation.lock_count)
        self._lock(
            keys=self._keys(reservation.key),
            args=[seconds, reservation.lock_count, int(LOCK_MEMORY.total_seconds())],
        )

    def reset(self, key: str) -> None:
        self.settle(reset=[key])

    def release(self, key: str) -> None:
        self.settle(release=[key])

    def settle(
        self,
        *,
        reset: Sequence[str] = (),
        release: Sequence[str] = (),
        within: Connection | None = None,
    ) -> None:
        """One script, at once, whatever ``within`` (a database transaction: not Redis's)."""
        resets = [name for key in reset for name in self._keys(key)]
        keys = resets + [self.prefix + key for key in release]
        if keys:
            self._settle(keys=keys, args=[len(resets)])

    def locked_for(self, key: str, rule: Rule, *, now: datetime) -> int:
        # one round trip, no MULTI/EXEC: a key expiring between the two reads only makes
        # the wait announced shorter (at least a second)
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.prefix + key)
        pipe.ttl(self.prefix + key)
        count, ttl = pipe.execute()
        return max(1, int(ttl)) if count is not None and int(count) >= rule.limit else 0
