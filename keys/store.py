"""Key storage interface: what a database row holds, and an in-memory store.

A :class:`StoredKey` never holds private material in clear: the private key is
AES-256-GCM encrypted under the master key (:mod:`keys.crypto`). The SQLAlchemy
implementation of :class:`KeyStore` lives in ``rcd_store``.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from keys.errors import KeysError
from keys.model import KeyState, KeyUse


@dataclass(frozen=True)
class StoredKey:
    """One key row: public metadata, the encrypted private key, the PEM certificate."""

    kid: str
    use: KeyUse
    alg: str
    state: KeyState
    encrypted_private_key: bytes
    certificate_pem: bytes | None
    created_at: datetime
    activated_at: datetime | None = None
    retiring_at: datetime | None = None
    publish_until: datetime | None = None


@dataclass(frozen=True)
class StateChange:
    """Move key ``kid`` from ``previous`` to ``state`` (with the new timestamps).

    ``previous`` lets a store refuse a change made on stale data (another
    process rotated meanwhile): SQL ``UPDATE ... WHERE kid = :kid AND state = :previous``.
    """

    kid: str
    previous: KeyState
    state: KeyState
    activated_at: datetime | None = None
    retiring_at: datetime | None = None
    publish_until: datetime | None = None


class KeyStoreConflict(KeysError):
    """A write was refused: unknown or duplicate kid, or a key changed meanwhile."""


class KeyStore(Protocol):
    """Where key rows live. Implementations: :class:`InMemoryKeyStore`, ``rcd_store``."""

    def list(self, use: KeyUse) -> builtins.list[StoredKey]:
        """Every key of ``use`` (all states), oldest first."""
        ...

    def add(self, stored: StoredKey) -> None:
        """Insert a new row; :class:`KeyStoreConflict` if the kid exists."""
        ...

    def update_state(
        self,
        kid: str,
        state: KeyState,
        *,
        activated_at: datetime | None,
        retiring_at: datetime | None,
        publish_until: datetime | None,
    ) -> None:
        """Set one key's state and timestamps; :class:`KeyStoreConflict` if unknown."""
        ...

    def replace_states(
        self, changes: Sequence[StateChange], *, add: Sequence[StoredKey] = ()
    ) -> None:
        """Apply every change and insert every new row in one transaction, or nothing.

        Raises :class:`KeyStoreConflict` (and changes nothing) if a kid is unknown,
        a key is no longer in its ``previous`` state, or a new kid exists.
        """
        ...


class InMemoryKeyStore:
    """A thread-safe :class:`KeyStore` in a dict (tests, partner tools)."""

    def __init__(self) -> None:
        self._rows: dict[str, StoredKey] = {}
        self._lock = threading.Lock()

    def list(self, use: KeyUse) -> builtins.list[StoredKey]:
        with self._lock:
            rows = [row for row in self._rows.values() if row.use is use]
        return sorted(rows, key=lambda row: row.created_at)

    def add(self, stored: StoredKey) -> None:
        self.replace_states((), add=(stored,))

    def update_state(
        self,
        kid: str,
        state: KeyState,
        *,
        activated_at: datetime | None,
        retiring_at: datetime | None,
        publish_until: datetime | None,
    ) -> None:
        with self._lock:
            row = self._rows.get(kid)
            if row is None:
                raise KeyStoreConflict(f"no key {kid!r}")
            self._rows[kid] = replace(
                row,
                state=state,
                activated_at=activated_at,
                retiring_at=retiring_at,
                publish_until=publish_until,
            )

    def replace_states(
        self, changes: Sequence[StateChange], *, add: Sequence[StoredKey] = ()
    ) -> None:
        with self._lock:
            updated = {change.kid: self._changed(change) for change in changes}
            new = {row.kid: row for row in add}
            if len(new) != len(add) or any(kid in self._rows for kid in new):
                raise KeyStoreConflict("a key with this kid already exists")
            self._rows.update(updated)
            self._rows.update(new)

    def _changed(self, change: StateChange) -> StoredKey:
        row = self._rows.get(change.kid)
        if row is None or row.state is not change.previous:
            raise KeyStoreConflict(
                f"key {change.kid!r} is unknown or no longer {change.previous.value}"
            )
        return replace(
            row,
            state=change.state,
            activated_at=change.activated_at,
            retiring_at=change.retiring_at,
            publish_until=change.publish_until,
        )
