"""Account lockout and per-address rate limit, safe under concurrent requests.

Stops online password guessing, including the burst variant where many wrong
passwords for one account arrive at once: an attempt is *reserved* (its counters
incremented atomically, in the database with one ``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING`` statement, in Redis with one Lua script, or in this process's
memory under a lock: :mod:`idp.auth.counters`; where each counter lives:
:func:`init_app`) BEFORE the password is checked, and an attempt whose reservation
number exceeds the threshold is refused without checking the password. Never
read-then-write. A login reserves in one round trip and settles a success in one
more (:meth:`Throttle.reserve_attempt`, :meth:`Throttle.succeeded`).

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from sqlalchemy import Connection

from idp.auth.counters import (
    LOCK_MEMORY,
    MAX_LOCKOUT_SECONDS,
    PURGE_EVERY,
    Backend,
    MemoryBackend,
    RedisBackend,
    Reservation,
    Rule,
    SqlBackend,
    lock_seconds,
)
from idp.stores.db import database

__all__ = [
    "LOCK_MEMORY",
    "MAX_LOCKOUT_SECONDS",
    "PURGE_EVERY",
    "Backend",
    "CodeAttempt",
    "MemoryBackend",
    "RedisBackend",
    "Reservation",
    "Rule",
    "SqlBackend",
    "Throttle",
    "account_key",
    "lock_seconds",
    "throttle",
]

EXTENSION = "idp.throttle"
DEFAULT_THRESHOLD = 5
MAX_THRESHOLD = 10
DEFAULT_LOCKOUT_SECONDS = 15 * 60
DEFAULT_IP_LIMIT = 20
#: wrong second-factor codes one pending login takes, whatever the address; then it ends
PENDING_CODE_LIMIT = 5
#: a pending login lives 5 minutes (``idp.auth.login.MFA_LIFETIME``): so does its budget
PENDING_CODE_RULE_SECONDS = 5 * 60
PENDING_RULE = Rule(PENDING_CODE_LIMIT, PENDING_CODE_RULE_SECONDS, doubling=False)


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
    """The app's lockout policy over its stores: ``backend`` holds the account lockout and
    the second-factor budgets (shared by every process), ``addresses`` the ``ip:``
    counters when they live elsewhere (None: in ``backend`` too). See :func:`init_app`."""

    backend: Backend
    account: Rule
    address: Rule
    pending: Rule = PENDING_RULE
    addresses: Backend | None = None

    def _store(self, key: str) -> Backend:
        if self.addresses is not None and key.startswith("ip:"):
            return self.addresses
        return self.backend

    def reserve_address(self, address: str, *, now: datetime | None = None) -> Reservation:
        """Reserve one attempt from ``address`` (20 failures per 15 minutes by default)."""
        key = "ip:" + address
        return self._store(key).reserve(key, self.address, now=now or _now())

    def reserve_account(self, key: str, *, now: datetime | None = None) -> Reservation:
        """Reserve one attempt on an account key (see :func:`account_key`) BEFORE the
        password is checked; ``allowed`` is False once the threshold is passed."""
        return self.backend.reserve(key, self.account, now=now or _now())

    @staticmethod
    def declarant_keys(declarant_id: str, address: str, *, second_factor: bool) -> list[str]:
        """The account counters an attempt on a known account reserves.

        For a declarant with a second factor the attempt is also counted for this
        account from this address; when the account is locked, that count decides:
        failures from other addresses do not lock out a declarant who proves a
        second factor (docs/architecture.md, "Sécurité par défaut"), while each
        address keeps the same threshold on the account."""
        key = account_key(declarant_id=declarant_id)
        return [key, f"{key}@{address}"] if second_factor else [key]

    @staticmethod
    def _decided(found: list[Reservation]) -> Reservation:
        """The account's own count, or its count from this address when the account is
        locked and a second factor follows (see :meth:`declarant_keys`)."""
        return found[0] if found[0].allowed or len(found) == 1 else found[1]

    def reserve_declarant(
        self, declarant_id: str, address: str, *, second_factor: bool, now: datetime | None = None
    ) -> Reservation:
        """Reserve an attempt on a known account (one round trip, see :meth:`declarant_keys`)."""
        keys = self.declarant_keys(declarant_id, address, second_factor=second_factor)
        return self._decided(
            self.backend.reserve_all([(k, self.account) for k in keys], now=now or _now())
        )

    def reserve_attempt(
        self, address: str, account_keys: list[str], *, now: datetime | None = None
    ) -> tuple[Reservation, Reservation | None]:
        """A login's reservations, the address's first: when it is refused no account
        counter is touched (None). One round trip to the shared store: Redis reserves the
        address and the account's counters in one script; otherwise the address counts
        in memory and the account's counters take one statement."""
        now = now or _now()
        accounts = [(key, self.account) for key in account_keys]
        wanted_address = ("ip:" + address, self.address)
        if self.addresses is None:
            found = self.backend.reserve_all([wanted_address, *accounts], now=now, gate=True)
            first, rest = found[0], found[1:]
        else:
            first = self.addresses.reserve(*wanted_address, now=now)
            rest = self.backend.reserve_all(accounts, now=now) if first.allowed else []
        return first, (self._decided(rest) if rest else None)

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
        keys = self.declarant_keys(declarant_id, address, second_factor=True)
        wanted = [(k, self.account) for k in [*keys, "otp:" + declarant_id]]
        if pending is not None:
            wanted.append(("mfa:" + pending, self.pending))
        found = self.backend.reserve_all(wanted, now=now)
        return CodeAttempt(
            address=self.reserve_address(address, now=now),
            account=self._decided(found[:2]),
            codes=found[2],
            pending=found[3] if pending is not None else None,
        )

    def code_failed(self, attempt: CodeAttempt, *, now: datetime | None = None) -> bool:
        """The code was wrong: every counter of the attempt fails (and locks at its
        limit). True when the pending login has now spent its budget (end it)."""
        for reservation in attempt.reservations():
            self.failed(reservation, now=now)
        return attempt.pending is not None and attempt.pending.count >= self.pending.limit

    def code_succeeded(self, attempt: CodeAttempt) -> None:
        """The code was right: as a successful login, and the code budget starts over."""
        self.succeeded(attempt.account, attempt.address, attempt.codes)

    def failed(self, reservation: Reservation, *, now: datetime | None = None) -> None:
        """The reserved attempt failed: lock the counter if it reached its limit."""
        rule = {"ip": self.address, "mfa": self.pending}.get(
            reservation.key.partition(":")[0], self.account
        )
        self._store(reservation.key).failed(reservation, rule, now=now or _now())

    @property
    def in_database(self) -> bool:
        """The account counters live in the database (:class:`SqlBackend`): a success
        can be settled in the transaction of the caller's own writes."""
        return isinstance(self.backend, SqlBackend)

    def _settle(
        self, reset: list[str], release: list[str], within: Connection | None = None
    ) -> None:
        """Each store settles in one round trip (the addresses' own store, if any, first)."""
        if self.addresses is not None:
            self.addresses.settle(release=[k for k in release if k.startswith("ip:")])
            release = [k for k in release if not k.startswith("ip:")]
        if reset or release:
            self.backend.settle(reset=reset, release=release, within=within)

    def gave_back(self, *reservations: Reservation | None) -> None:
        """Attempts that were not failures (a right password refused for another reason)
        are given back to their counters."""
        self._settle([], [r.key for r in reservations if r is not None])

    def succeeded(
        self,
        account: Reservation,
        address: Reservation | None,
        *also: Reservation,
        within: Connection | None = None,
    ) -> None:
        """A successful login resets the account (and its count from this address, and
        ``also``'s counters) and gives back its address reservation, in one round trip;
        in ``within``'s transaction when the counters live in the database (committed
        with the session it opens). A login through the second-factor path leaves the
        account's lock from other addresses in place."""
        reset = [account.key, *(r.key for r in also)]
        if address is not None and "@" not in account.key:
            reset.append(f"{account.key}@{address.key.removeprefix('ip:')}")
        self._settle(reset, [address.key] if address is not None else [], within)


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
    """The app's throttle. With Redis (``REDIS_URL``) every counter lives there, shared by
    every worker, one Lua script per call. Without it (the embedded default):

    - the address limits count in each process's memory, no round trip: they stop
      floods from one address, and W workers allowing W times the limit still do;
    - the account lockout and the second-factor budgets stay in the database. Their
      guarantee is per account across every process (``idp serve --workers N`` runs N
      of them): 50 concurrent wrong passwords check at most 5, whichever worker each
      lands on. A per-process count would let N times the threshold through, and memory
      shared between the workers would be a concurrent structure of our own that the
      CLI and a restarted worker could not see; the database is the one store every
      process of the machine already shares, and a login costs it one statement to
      reserve and one to reset on success (:class:`SqlBackend`)."""
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
        addresses=None if client is not None else MemoryBackend(),
    )
    app.extensions[EXTENSION] = throttle
    return throttle


def throttle(app: Flask | None = None) -> Throttle:
    """The app's throttle (built on first use from the configuration)."""
    app = app or current_app
    found = app.extensions.get(EXTENSION)
    return found if isinstance(found, Throttle) else init_app(app)
