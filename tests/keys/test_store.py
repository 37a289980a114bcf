"""keys.store: the in-memory store and the all-or-nothing replace_states."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from keys.model import KeyState, KeyUse
from keys.store import InMemoryKeyStore, KeyStore, KeyStoreConflict, StateChange, StoredKey

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _row(
    kid: str, *, use: KeyUse = KeyUse.JWT, state: KeyState = KeyState.NEXT, age: int = 0
) -> StoredKey:
    return StoredKey(
        kid=kid,
        use=use,
        alg="ES256",
        state=state,
        encrypted_private_key=b"\x01sealed",
        certificate_pem=None,
        created_at=NOW - timedelta(days=age),
    )


def test_in_memory_store_satisfies_protocol() -> None:
    store: KeyStore = InMemoryKeyStore()
    store.add(_row("a"))
    assert [row.kid for row in store.list(KeyUse.JWT)] == ["a"]


def test_list_filters_by_use_oldest_first() -> None:
    store = InMemoryKeyStore()
    store.add(_row("new"))
    store.add(_row("old", age=3))
    store.add(_row("saml", use=KeyUse.SAML))
    assert [row.kid for row in store.list(KeyUse.JWT)] == ["old", "new"]
    assert [row.kid for row in store.list(KeyUse.SAML)] == ["saml"]


def test_add_refuses_duplicate_kid() -> None:
    store = InMemoryKeyStore()
    store.add(_row("a"))
    with pytest.raises(KeyStoreConflict, match="already exists"):
        store.add(_row("a", state=KeyState.ACTIVE))
    assert store.list(KeyUse.JWT)[0].state is KeyState.NEXT


def test_update_state() -> None:
    store = InMemoryKeyStore()
    store.add(_row("a"))
    store.update_state("a", KeyState.ACTIVE, activated_at=NOW, retiring_at=None, publish_until=None)
    row = store.list(KeyUse.JWT)[0]
    assert (row.state, row.activated_at) == (KeyState.ACTIVE, NOW)
    with pytest.raises(KeyStoreConflict, match="no key"):
        store.update_state(
            "zz", KeyState.ACTIVE, activated_at=NOW, retiring_at=None, publish_until=None
        )


def test_replace_states_applies_changes_and_additions() -> None:
    store = InMemoryKeyStore()
    store.add(_row("a", state=KeyState.ACTIVE, age=1))
    store.replace_states(
        [StateChange("a", KeyState.ACTIVE, KeyState.RETIRING, retiring_at=NOW, publish_until=NOW)],
        add=[_row("b")],
    )
    rows = {row.kid: row for row in store.list(KeyUse.JWT)}
    assert rows["a"].state is KeyState.RETIRING and rows["a"].publish_until == NOW
    assert rows["b"].state is KeyState.NEXT


@pytest.mark.parametrize(
    ("changes", "add"),
    [
        ([StateChange("missing", KeyState.NEXT, KeyState.ACTIVE)], []),
        ([StateChange("a", KeyState.NEXT, KeyState.ACTIVE)], []),  # "a" is active: stale
        ([], [_row("a")]),  # duplicate of an existing kid
        ([], [_row("c"), _row("c")]),  # duplicate within the batch
    ],
)
def test_replace_states_is_all_or_nothing(changes: list[StateChange], add: list[StoredKey]) -> None:
    store = InMemoryKeyStore()
    store.add(_row("a", state=KeyState.ACTIVE))
    store.add(_row("b"))
    before = store.list(KeyUse.JWT)
    changes = [StateChange("b", KeyState.NEXT, KeyState.ACTIVE, activated_at=NOW), *changes]
    with pytest.raises(KeyStoreConflict):
        store.replace_states(changes, add=[_row("new"), *add])
    assert store.list(KeyUse.JWT) == before


def test_concurrent_adds_are_serialised() -> None:
    store = InMemoryKeyStore()
    failures: list[str] = []

    def add(index: int) -> None:
        try:
            store.add(_row("same"))
        except KeyStoreConflict:
            failures.append(str(index))

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.list(KeyUse.JWT)) == 1 and len(failures) == 7
