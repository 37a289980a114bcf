"""Limits without SQL per request (issue 18): the token endpoint's counters in memory
(or Redis), and the throttle table purged of the rows that hold nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from idp.auth.throttle import (
    LOCK_MEMORY,
    PURGE_EVERY,
    MemoryBackend,
    Rule,
    SqlBackend,
)
from idp.stores.models import LoginThrottle

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RULE = Rule(5, 60, doubling=False)


def test_memory_counters_take_at_most_the_limit_under_concurrency() -> None:
    backend = MemoryBackend()
    allowed: list[bool] = []
    barrier = threading.Barrier(50)

    def attempt() -> None:
        barrier.wait()
        allowed.append(backend.reserve("oauth:c", RULE, now=NOW).allowed)

    threads = [threading.Thread(target=attempt) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 5 and len(allowed) == 50


def test_memory_counters_lock_release_reset_and_lapse() -> None:
    backend = MemoryBackend()
    for _ in range(4):
        backend.reserve("k", RULE, now=NOW)
    assert backend.locked_for("k", RULE, now=NOW) == 0
    fifth = backend.reserve("k", RULE, now=NOW)
    assert fifth.allowed and fifth.count == 5
    backend.failed(fifth, RULE, now=NOW + timedelta(seconds=30))
    assert backend.locked_for("k", RULE, now=NOW + timedelta(seconds=31)) == 59
    refused = backend.reserve("k", RULE, now=NOW + timedelta(seconds=31))
    assert not refused.allowed and refused.retry_after == 59 and refused.lock_count == 1
    backend.release("k")
    backend.release("k")
    assert backend.reserve("k", RULE, now=NOW + timedelta(seconds=31)).count == 5
    later = NOW + timedelta(seconds=91)  # the lock ran out: a new window
    assert backend.locked_for("k", RULE, now=later) == 0
    assert backend.reserve("k", RULE, now=later).count == 1
    backend.reset("k")
    assert backend.reserve("k", RULE, now=later).count == 1


def _row(key: str, updated: datetime, locked_until: datetime | None = None) -> LoginThrottle:
    return LoginThrottle(
        key=key, failures=3, locked_until=locked_until, lock_count=1, updated_at=updated
    )


def test_throttle_rows_that_hold_nothing_are_purged(app: Any, session: Any) -> None:
    from idp.stores.db import database

    old = NOW - LOCK_MEMORY - timedelta(minutes=1)
    session.add_all(
        [
            _row("mfa:old", old),
            _row("acct:old-lock-over", old, NOW - timedelta(minutes=1)),
            _row("acct:still-locked", old, NOW + timedelta(hours=1)),
            _row("acct:recent", NOW - timedelta(hours=1)),
        ]
    )
    session.commit()
    backend = SqlBackend(database(app).engine)
    backend.reserve("ip:192.0.2.1", RULE, now=NOW)  # the first reservation purges
    keys = set(session.scalars(select(LoginThrottle.key)))
    assert keys == {"acct:still-locked", "acct:recent", "ip:192.0.2.1"}
    session.add(_row("mfa:later", old))
    session.commit()
    backend.reserve("ip:192.0.2.1", RULE, now=NOW + PURGE_EVERY / 2)
    assert "mfa:later" in set(session.scalars(select(LoginThrottle.key)))  # not yet
    backend.reserve("ip:192.0.2.1", RULE, now=NOW + PURGE_EVERY)
    assert "mfa:later" not in set(session.scalars(select(LoginThrottle.key)))


def test_a_long_lockout_keeps_its_rows_as_long() -> None:
    backend = SqlBackend(engine=None, keep=timedelta(days=3))  # type: ignore[arg-type]
    assert backend.keep == timedelta(days=3)
    assert SqlBackend(engine=None).keep == LOCK_MEMORY  # type: ignore[arg-type]
