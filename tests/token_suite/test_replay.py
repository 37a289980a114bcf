"""token_suite.replay: the in-memory replay cache (check 8)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from token_suite.errors import Replay
from token_suite.replay import InMemoryReplayCache, ReplayCache, ReplayCacheFull, utc_now

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def test_first_presentation_recorded_then_seen_until_expiry() -> None:
    clock = Clock()
    cache: ReplayCache = InMemoryReplayCache(clock=clock)
    until = NOW + timedelta(minutes=5)
    assert cache.seen("a", expires_at=until) is False
    assert cache.seen("a", expires_at=until) is True
    assert cache.seen("b", expires_at=until) is False
    clock.now = until - timedelta(microseconds=1)
    assert cache.seen("a", expires_at=until) is True
    clock.now = until
    assert cache.seen("a", expires_at=until + timedelta(minutes=5)) is False  # expired: new


def test_expired_entries_are_purged() -> None:
    clock = Clock()
    cache = InMemoryReplayCache(clock=clock)
    for index in range(10):
        cache.seen(str(index), expires_at=NOW + timedelta(seconds=index + 1))
    assert len(cache) == 10
    clock.now = NOW + timedelta(seconds=5)
    cache.seen("late", expires_at=NOW + timedelta(minutes=1))
    assert len(cache) == 6  # 5..9 and "late"


def test_already_expired_id_is_not_recorded() -> None:
    cache = InMemoryReplayCache(clock=Clock())
    assert cache.seen("old", expires_at=NOW) is False
    assert cache.seen("old", expires_at=NOW) is False
    assert len(cache) == 0


def test_full_cache_refuses_rather_than_forgets() -> None:
    clock = Clock()
    cache = InMemoryReplayCache(max_entries=2, clock=clock)
    until = NOW + timedelta(minutes=1)
    cache.seen("a", expires_at=until)
    cache.seen("b", expires_at=until)
    with pytest.raises(ReplayCacheFull) as caught:
        cache.seen("c", expires_at=until)
    assert isinstance(caught.value, Replay)
    assert cache.seen("a", expires_at=until) is True  # nothing was evicted
    clock.now = until
    assert cache.seen("c", expires_at=until + timedelta(minutes=1)) is False  # room again


def test_arguments_checked() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        InMemoryReplayCache(max_entries=0)
    with pytest.raises(ValueError, match="timezone"):
        InMemoryReplayCache().seen("a", expires_at=datetime(2030, 1, 1))


def test_default_clock_is_aware_wall_clock() -> None:
    cache = InMemoryReplayCache()
    assert utc_now().tzinfo is UTC
    assert cache.seen("x", expires_at=utc_now() + timedelta(minutes=1)) is False
    assert cache.seen("x", expires_at=utc_now() + timedelta(minutes=1)) is True


def test_concurrent_presentations_accept_exactly_one() -> None:
    cache = InMemoryReplayCache(clock=Clock())
    until = NOW + timedelta(minutes=1)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def present() -> None:
        barrier.wait()
        for index in range(200):
            results.append(cache.seen(f"id-{index}", expires_at=until))

    threads = [threading.Thread(target=present) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(False) == 200


def test_seen_until_takes_posix_seconds() -> None:
    clock = Clock()
    cache = InMemoryReplayCache(clock=clock)
    until = (NOW + timedelta(minutes=1)).timestamp()
    assert cache.seen_until("a", until) is False
    assert cache.seen("a", expires_at=NOW + timedelta(minutes=2)) is True
    assert cache.seen_until("a", until) is True
    assert cache.seen_until("old", NOW.timestamp()) is False and len(cache) == 1
    clock.now = NOW + timedelta(minutes=1)
    assert cache.seen_until("a", until + 60) is False  # expired, purged, recorded anew


def test_microseconds_still_ordered() -> None:
    clock = Clock()
    cache = InMemoryReplayCache(clock=clock)
    until = datetime(2200, 1, 1, tzinfo=UTC)
    clock.now = until - timedelta(microseconds=1)
    assert cache.seen("a", expires_at=until) is False
    assert cache.seen("a", expires_at=until) is True
    clock.now = until
    assert cache.seen("a", expires_at=until) is False


def test_naive_clock_refused() -> None:
    cache = InMemoryReplayCache(clock=lambda: datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="timezone"):
        cache.seen("a", expires_at=NOW)
