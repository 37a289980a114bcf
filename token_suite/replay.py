"""Replay caches: remember token IDs (``jti`` / SAML ``ID``) for their lifetime.

Check 8 of the profile. A :class:`ReplayCache` answers "was this token ID already
presented?" and records it in the same atomic step, so two concurrent
presentations of one token cannot both be accepted.

The in-memory cache here serves one process (tests, a single worker, a partner's
small back end). Multi-process deployments use the shared implementations
(Redis ``SET NX EX``, SQL unique key) that follow the same :class:`ReplayCache`
protocol.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from token_suite.errors import Replay

__all__ = [
    "DEFAULT_REPLAY_CACHE",
    "InMemoryReplayCache",
    "ReplayCache",
    "ReplayCacheFull",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


class ReplayCache(Protocol):
    """Remembers token IDs until they expire."""

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        """True if ``token_id`` was recorded and has not expired yet.

        Otherwise record it until ``expires_at`` and return False. Check and
        record are one atomic step. Stops replay of a captured token.
        """
        ...


class ReplayCacheFull(Replay):
    """The cache is full of unexpired IDs and cannot record one more.

    It is a :class:`~token_suite.errors.Replay` so that every caller refuses the
    token (fail closed): forgetting an unexpired ID to make room would let that
    token be replayed, so the cache refuses instead.
    """


class InMemoryReplayCache:
    """A bounded, thread-safe, in-process :class:`ReplayCache`.

    Holds at most ``max_entries`` unexpired IDs. Expired entries are purged on
    every call (oldest expiry first, amortised O(log n)). When the cache is full
    of *unexpired* IDs, :meth:`seen` raises :class:`ReplayCacheFull` rather than
    evicting one: a replay is never silently accepted, at the price of refusing
    fresh tokens until entries expire (size the cache for peak tokens per
    lifetime). ``clock`` gives the current time (timezone-aware); tests pass a
    fixed one. ``expires_at`` must be timezone-aware.

    Instants are kept as POSIX seconds (``float``: distinct microseconds stay
    distinct and ordered until the year 2242); :meth:`seen_until` takes them
    directly, so a verifier holding a NumericDate builds no ``datetime``, and
    with the default clock the current time is ``time.time()``.
    """

    def __init__(
        self, *, max_entries: int = 1_000_000, clock: Callable[[], datetime] = utc_now
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._now: Callable[[], float] = time.time if clock is utc_now else _posix_clock(clock)
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        """See :meth:`ReplayCache.seen`; raises :class:`ReplayCacheFull` when full."""
        if expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        return self.seen_until(token_id, expires_at.timestamp())

    def seen_until(self, token_id: str, expires_at: float) -> bool:
        """:meth:`seen` with ``expires_at`` in POSIX seconds (the replay check 8 of ``verify``)."""
        with self._lock:
            now = self._now()
            heap = self._heap
            if heap and heap[0][0] <= now:
                self._purge(now)
            if token_id in self._expiry:
                return True
            if expires_at <= now:
                return False  # already expired: nothing to remember
            if len(self._expiry) >= self.max_entries:
                raise ReplayCacheFull("replay cache full: token ID cannot be recorded")
            self._expiry[token_id] = expires_at
            heapq.heappush(heap, (expires_at, token_id))
            return False

    def _purge(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            # one heap entry per recorded ID: an ID is only pushed when absent
            del self._expiry[heapq.heappop(heap)[1]]


def _posix_clock(clock: Callable[[], datetime]) -> Callable[[], float]:
    """``clock`` read as POSIX seconds; a naive datetime is refused (``ValueError``)."""

    def now() -> float:
        moment = clock()
        if moment.tzinfo is None:
            raise ValueError("clock must return timezone-aware datetimes")
        return moment.timestamp()

    return now


#: Used when ``verify(replay=None)`` (SAML and JWT alike): one per process, in memory,
#: wall clock, at most 200,000 live IDs (then it refuses tokens rather than forget one).
#: Several processes or hosts must share a cache (Redis, SQL) passed as ``replay=``.
DEFAULT_REPLAY_CACHE = InMemoryReplayCache(max_entries=200_000)
