"""Account lockout and per-address rate limit, safe under concurrent requests.

Stops online password guessing, including the burst variant where many wrong
passwords for one account arrive at once: an attempt is *reserved* (its counter
incremented atomically, in the database with one ``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING`` statement, or in Redis with one Lua script) BEFORE the
password is checked, and an attempt whose reservation number exceeds the
threshold is refused without checking the password. Never read-then-write.

Keys: ``acct:<declarant id>`` for a known account, ``acct:<sha256 of the typed
identifier>`` for an unknown one (the same 429 after the same number of failures:
the answer reveals no account), ``ip:<client address>`` for the address limit;
second-factor codes also count on ``otp:<declarant id>`` (the account's code budget,
whatever the address) and ``mfa:<pending login digest>`` (5 wrong codes end a
pending login): see :meth:`Throttle.reserve_code`.

Lockout is temporary (``LOCKOUT_SECONDS``, 15 minutes by default) and doubles on
each repeat (at most 24 hours); a successful login resets the account counter and
gives its reservation back to the address counter.
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from flask import Flask, current_app
from sqlalchemy import case, delete, literal, or_, select, update
from sqlalchemy.engine import Engine

from idp.stores.db import database
from idp.stores.models import LoginThrottle
from rcd_store.db import UTCDateTime, upsert

EXTENSION = "idp.throttle"
DEFAULT_THRESHOLD = 5
MAX_THRESHOLD = 10
DEFAULT_LOCKOUT_SECONDS = 15 * 60
MAX_LOCKOUT_SECONDS = 24 * 3600
DEFAULT_IP_LIMIT = 20
#: wrong second-factor codes one pending login takes, whatever the address; then it ends
PENDING_CODE_LIMIT = 5
#: a pending login lives 5 minutes (``idp.auth.login.MFA_LIFETIME``): so does its budget
PENDING_CODE_RULE_SECONDS = 5 * 60
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


class Backend(Protocol):
    def reserve(self, key: str, rule: Rule, *, now: datetime) -> Reservation: ...

    def failed(self, reservation: Reservation, rule: Rule, *, now: datetime) -> None: ...

    def reset(self, key: str) -> None: ...

    def release(self, key: str) -> None: ...

    def locked_for(self, key: str, rule: Rule, *, now: datetime) -> int: ...


def lock_seconds(rule: Rule, lock_count: int) -> int:
    """15 minutes, then 30, 60... (doubling on repeats), at most 24 hours."""
    if not rule.doubling:
        return rule.window
    return int(min(rule.window * (2 ** min(lock_count, 20)), MAX_LOCKOUT_SECONDS))


class SqlBackend:
    """Counters in ``login_throttle`` (SQLite or PostgreSQL), each change one atomic statement,
    on its own connection and transaction (committed at once, whatever the request does).

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

    def reserve(self, key: str, rule: Rule, *, now: datetime) -> Reservation:
        self._purge_now_and_then(now)
        table = LoginThrottle.__table__
        excluded_now = literal(now, UTCDateTime)
        lapsed = (table.c.locked_until.is_not(None) & (table.c.locked_until <= excluded_now)) | (
            table.c.locked_until.is_(None)
            & (table.c.updated_at <= literal(now - timedelta(seconds=rule.window), UTCDateTime))
        )
        stale_locks = table.c.updated_at <= literal(now - LOCK_MEMORY, UTCDateTime)
        stmt = (
            upsert(self.engine, LoginThrottle)
            .values(key=key, failures=1, locked_until=None, lock_count=0, updated_at=now)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "failures": case((lapsed, 1), else_=table.c.failures + 1),
                    "locked_until": case((lapsed, None), else_=table.c.locked_until),
                    "lock_count": case((stale_locks, 0), else_=table.c.lock_count),
                    "updated_at": case((lapsed, excluded_now), else_=table.c.updated_at),
                },
            )
            .returning(
                table.c.failures, table.c.locked_until, table.c.lock_count, table.c.updated_at
            )
        )
        with self.engine.begin() as conn:
            count, locked_until, lock_count, started = conn.execute(stmt).one()
        until = locked_until or started + timedelta(seconds=rule.window)
        retry = max(1, math.ceil((until - now).total_seconds()))
        allowed = count <= rule.limit and not (locked_until and locked_until > now)
        return Reservation(key, int(count), allowed, retry, int(lock_count))

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
        with self.engine.begin() as conn:
            conn.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key)
                .values(failures=0, locked_until=None, lock_count=0)
            )

    def release(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == key, LoginThrottle.failures > 0)
                .values(failures=LoginThrottle.failures - 1)
            )

    def locked_for(self, key: str, rule: Rule, *, now: datetime) -> int:
        with self.engine.connect() as conn:
            until = conn.execute(
                select(LoginThrottle.locked_until).where(LoginThrottle.key == key)
            ).scalar()
        return max(1, math.ceil((until - now).total_seconds())) if until and until > now else 0


class MemoryBackend:
    """Counters in this process's memory, as :class:`RedisBackend` counts them (a window
    opened by the first attempt, a lock that extends it): the token endpoint's budgets
    on the embedded default, without SQL per request. Per process: with several workers
    each keeps its own count (a client's budget, an address's failures), so never for
    the account lockout, which must hold across workers."""

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
        retry = max(1, math.ceil(until - at))
        return Reservation(key, int(count), count <= rule.limit, retry, int(locks))

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

    def locked_for(self, key: str, rule: Rule, *, now: datetime) -> int:
        at = now.timestamp()
        counter = self._live(key, at)
        if counter is None or counter[0] < rule.limit:
            return 0
        return max(1, math.ceil(counter[1] - at))


_RESERVE_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
local locks = tonumber(redis.call('GET', KEYS[2]) or '0')
return {n, ttl, locks}
"""

_LOCK_LUA = """
local locks = tonumber(redis.call('GET', KEYS[2]) or '0')
if locks ~= tonumber(ARGV[2]) then return 0 end
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""


class RedisBackend:
    """Counters in Redis: INCR + EXPIRE in one Lua script; a lock extends the counter's TTL."""

    def __init__(self, client: Any, *, prefix: str = "idp:throttle:") -> None:
        self.client = client
        self.prefix = prefix
        self._reserve = client.register_script(_RESERVE_LUA)
        self._lock = client.register_script(_LOCK_LUA)

    def _keys(self, key: str) -> list[str]:
        return [self.prefix + key, self.prefix + "locks:" + key]

    def reserve(self, key: str, rule: Rule, *, now: datetime) -> Reservation:
        count, ttl, locks = self._reserve(keys=self._keys(key), args=[rule.window])
        return Reservation(key, int(count), int(count) <= rule.limit, max(1, int(ttl)), int(locks))

    def failed(self, reservation: Reservation, rule: Rule, *, now: datetime) -> None:
        if reservation.count < rule.limit:
            return
        seconds = lock_seconds(rule, reservation.lock_count)
        self._lock(
            keys=self._keys(reservation.key),
            args=[seconds, reservation.lock_count, int(LOCK_MEMORY.total_seconds())],
        )

    def reset(self, key: str) -> None:
        self.client.delete(*self._keys(key))

    def release(self, key: str) -> None:
        pipe = self.client.pipeline()
        pipe.decr(self.prefix + key)
        pipe.execute()

    def locked_for(self, key: str, rule: Rule, *, now: datetime) -> int:
        pipe = self.client.pipeline()
        pipe.get(self.prefix + key)
        pipe.ttl(self.prefix + key)
        count, ttl = pipe.execute()
        return max(1, int(ttl)) if count is not None and int(count) >= rule.limit else 0


@dataclass(frozen=True)
class CodeAttempt:
    """The reservations of one second-factor code, all taken BEFORE the code is checked:
    the address; the account as at the password step; the account's code budget
    (``otp:<id>``, whatever the address: wrong codes from many addresses add up); and,
    at login, the pending login's own budget (``mfa:<pending>``)."""

    address: Reservation
    account: Reservation
    codes: Reservation
    pending: Reservation | None = None

    def reservations(self) -> tuple[Reservation, ...]:
        found = (self.address, self.account, self.codes, self.pending)
        return tuple(r for r in found if r is not None)

    @property
    def allowed(self) -> bool:
        """True when every budget still has room: only then is the code checked."""
        return all(r.allowed for r in self.reservations())

    @property
    def pending_spent(self) -> bool:
        """The pending login used up its budget: it ends, the password is asked again."""
        return self.pending is not None and not self.pending.allowed

    @property
    def retry_after(self) -> int:
        return max((r.retry_after for r in self.reservations() if not r.allowed), default=0)


@dataclass(frozen=True)
class Throttle:
    """The app's lockout policy over one backend."""

    backend: Backend
    account: Rule
    address: Rule
    pending: Rule = Rule(PENDING_CODE_LIMIT, PENDING_CODE_RULE_SECONDS, doubling=False)

    def reserve_address(self, address: str, *, now: datetime | None = None) -> Reservation:
        """Reserve one attempt from ``address`` (20 failures per 15 minutes by default)."""
        return self.backend.reserve("ip:" + address, self.address, now=now or _now())

    def reserve_account(self, key: str, *, now: datetime | None = None) -> Reservation:
        """Reserve one attempt on an account key (see :func:`account_key`) BEFORE the
        password is checked; ``allowed`` is False once the threshold is passed."""
        return self.backend.reserve(key, self.account, now=now or _now())

    def reserve_declarant(
        self, declarant_id: str, address: str, *, second_factor: bool, now: datetime | None = None
    ) -> Reservation:
        """Reserve an attempt on a known account.

        For a declarant with a second factor the attempt is also counted for this
        account from this address; when the account is locked, that count decides:
        failures from other addresses do not lock out a declarant who proves a
        second factor (docs/architecture.md, "Sécurité par défaut"), while each
        address keeps the same threshold on the account."""
        key = account_key(declarant_id=declarant_id)
        main = self.reserve_account(key, now=now)
        if not second_factor:
            return main
        pair = self.reserve_account(f"{key}@{address}", now=now)
        return main if main.allowed else pair

    def account_locked(self, declarant_id: str, *, now: datetime | None = None) -> int:
        """Seconds left on the account-wide lock of a declarant (0 when not locked), read
        without reserving: paths that take no password (a partner's assertion) honour the
        lock the password paths set."""
        key = account_key(declarant_id=declarant_id)
        return self.backend.locked_for(key, self.account, now=now or _now())

    def reserve_code(
        self,
        declarant_id: str,
        address: str,
        *,
        pending: str | None = None,
        now: datetime | None = None,
    ) -> CodeAttempt:
        """Reserve one second-factor code attempt (see :class:`CodeAttempt`); ``pending``
        names the pending login at the login step (none when disabling the factor)."""
        now = now or _now()
        return CodeAttempt(
            address=self.reserve_address(address, now=now),
            account=self.reserve_declarant(declarant_id, address, second_factor=True, now=now),
            codes=self.backend.reserve("otp:" + declarant_id, self.account, now=now),
            pending=(
                None
                if pending is None
                else self.backend.reserve("mfa:" + pending, self.pending, now=now)
            ),
        )

    def code_failed(self, attempt: CodeAttempt, *, now: datetime | None = None) -> bool:
        """The code was wrong: every counter of the attempt fails (and locks at its
        limit). True when the pending login has now spent its budget (end it)."""
        for reservation in attempt.reservations():
            self.failed(reservation, now=now)
        return attempt.pending is not None and attempt.pending.count >= self.pending.limit

    def code_succeeded(self, attempt: CodeAttempt) -> None:
        """The code was right: as a successful login, and the code budget starts over."""
        self.succeeded(attempt.account, attempt.address)
        self.backend.reset(attempt.codes.key)

    def failed(self, reservation: Reservation, *, now: datetime | None = None) -> None:
        """The reserved attempt failed: lock the counter if it reached its limit."""
        rule = {"ip": self.address, "mfa": self.pending}.get(
            reservation.key.partition(":")[0], self.account
        )
        self.backend.failed(reservation, rule, now=now or _now())

    def gave_back(self, *reservations: Reservation | None) -> None:
        """Attempts that were not failures (a right password refused for another reason)
        are given back to their counters."""
        for reservation in reservations:
            if reservation is not None:
                self.backend.release(reservation.key)

    def succeeded(self, account: Reservation, address: Reservation | None) -> None:
        """A successful login resets the account (and its count from this address) and
        gives back its address reservation. A login through the second-factor path
        leaves the account's lock from other addresses in place."""
        self.backend.reset(account.key)
        if address is not None:
            self.backend.release(address.key)
            if "@" not in account.key:
                self.backend.reset(f"{account.key}@{address.key.removeprefix('ip:')}")


def _now() -> datetime:
    return datetime.now(UTC)


def account_key(*, declarant_id: str | None = None, identifier: str | None = None) -> str:
    """The counter of a known account (its id), or of an unknown typed identifier (hashed:
    the throttle table holds no names)."""
    if declarant_id:
        return "acct:" + declarant_id
    digest = hashlib.sha256((identifier or "").encode("utf-8")).hexdigest()
    return "acct:" + digest


def threshold(app: Flask) -> int:
    """``LOCKOUT_THRESHOLD`` (5 by default), never above 10 nor below 1."""
    value = int(app.config.get("LOCKOUT_THRESHOLD") or DEFAULT_THRESHOLD)
    return max(1, min(value, MAX_THRESHOLD))


def init_app(app: Flask) -> Throttle:
    client = app.extensions.get("idp.redis")
    if client is None and app.config.get("REDIS_URL"):
        import redis

        client = redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=2)
    lockout = int(app.config.get("LOCKOUT_SECONDS") or DEFAULT_LOCKOUT_SECONDS)
    backend: Backend = (
        RedisBackend(client)
        if client is not None
        else SqlBackend(database(app).engine, keep=timedelta(seconds=lockout))
    )
    throttle = Throttle(
        backend,
        account=Rule(threshold(app), lockout, doubling=True),
        address=Rule(
            int(app.config.get("IP_FAILURE_LIMIT") or DEFAULT_IP_LIMIT), lockout, doubling=False
        ),
    )
    app.extensions[EXTENSION] = throttle
    return throttle


def throttle(app: Flask | None = None) -> Throttle:
    """The app's throttle (built on first use from the configuration)."""
    app = app or current_app
    found = app.extensions.get(EXTENSION)
    return found if isinstance(found, Throttle) else init_app(app)
