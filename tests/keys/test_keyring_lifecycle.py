"""keys.keyring: every stored row records when its state began (issue 19, mutation
survivors: ``_activate``, ``_step`` and ``_seal`` could drop these dates unnoticed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from keys.crypto import MasterKey
from keys.generate import generate_key
from keys.keyring import DEFAULT_MARGIN, Keyring, KeyTransition, Rotation
from keys.model import KeyState, KeyUse
from keys.store import InMemoryKeyStore, StoredKey

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIFETIME = timedelta(hours=1)


def by_state(keyring: Keyring) -> dict[KeyState, StoredKey]:
    return {row.state: row for row in keyring.rows(KeyUse.JWT)}


def test_each_state_change_records_its_instant(master_key: MasterKey) -> None:
    keyring = Keyring(InMemoryKeyStore(), master_key, clock=lambda: NOW)
    keyring.ensure(KeyUse.JWT, now=NOW, alg="ES256")
    first = by_state(keyring)
    assert first[KeyState.ACTIVE].activated_at == NOW
    assert first[KeyState.NEXT].activated_at is None

    later = NOW + timedelta(days=1)
    keyring.rotate(KeyUse.JWT, now=later, max_token_lifetime=LIFETIME)
    second = {row.kid: row for row in keyring.rows(KeyUse.JWT)}
    retiring = second[first[KeyState.ACTIVE].kid]
    assert retiring.state is KeyState.RETIRING
    assert retiring.activated_at == NOW
    assert retiring.retiring_at == later
    assert retiring.publish_until == later + LIFETIME + DEFAULT_MARGIN
    promoted = second[first[KeyState.NEXT].kid]
    assert (promoted.state, promoted.activated_at) == (KeyState.ACTIVE, later)

    end = later + timedelta(days=1)
    keyring.rotate(KeyUse.JWT, now=end, max_token_lifetime=LIFETIME)
    retired = {row.kid: row for row in keyring.rows(KeyUse.JWT)}[retiring.kid]
    assert retired.state is KeyState.RETIRED
    assert (retired.activated_at, retired.retiring_at) == (NOW, later)
    assert retired.publish_until == later + LIFETIME + DEFAULT_MARGIN


def test_an_added_key_keeps_its_dates(master_key: MasterKey) -> None:
    keyring = Keyring(InMemoryKeyStore(), master_key, clock=lambda: NOW)
    key = replace(
        generate_key(KeyUse.JWT, now=NOW, alg="ES256"),
        state=KeyState.RETIRING,
        activated_at=NOW,
        retiring_at=NOW + timedelta(hours=1),
        publish_until=NOW + timedelta(hours=2),
    )
    stored = keyring.add(key)
    assert (stored.activated_at, stored.retiring_at, stored.publish_until) == (
        NOW,
        NOW + timedelta(hours=1),
        NOW + timedelta(hours=2),
    )
    loaded = keyring.key(key.kid)
    assert (loaded.activated_at, loaded.retiring_at, loaded.publish_until) == (
        stored.activated_at,
        stored.retiring_at,
        stored.publish_until,
    )


def test_transition_and_rotation_descriptions_name_everything() -> None:
    until = NOW + timedelta(hours=2)
    transition = KeyTransition("k1", "ES256", KeyState.ACTIVE, KeyState.RETIRING, until)
    assert transition.describe() == (
        f"k1 (ES256): active -> retiring, published until {until.isoformat()}"
    )
    rotation = Rotation(use=KeyUse.JWT, at=NOW, transitions=(transition,))
    described = rotation.as_dict()
    assert described["transitions"][0]["kid"] == "k1"
    assert described["transitions"][0]["alg"] == "ES256"
