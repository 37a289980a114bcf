"""keys.keyring: every stored row records when its state began (issue 19, mutation
survivors: ``_activate``, ``_step`` and ``_seal`` could drop these dates unnoticed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from keys.crypto import MasterKey
from keys.generate import generate_key
from keys.keyring import DEFAULT_MARGIN, Keyring, KeyTransition, Rotation
from keys.model import KeyState, KeyUse
from keys.store import InMemoryKeyStore, StateChange, StoredKey

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


def rsa_bits(keyring: Keyring, kid: str) -> int:
    private_key: Any = keyring.key(kid).private_key
    return int(private_key.key_size)


def test_first_start_follows_the_requested_algorithm_and_size(master_key: MasterKey) -> None:
    keyring = Keyring(InMemoryKeyStore(), master_key, clock=lambda: NOW)
    rotation = keyring.ensure(KeyUse.JWT, now=NOW, alg="PS256", rsa_bits=3072)
    assert (rotation.use, rotation.at) == (KeyUse.JWT, NOW)
    rows = keyring.rows(KeyUse.JWT)
    assert sorted(t.kid for t in rotation.transitions) == sorted(row.kid for row in rows)
    assert {(row.state, row.alg, row.use, row.created_at) for row in rows} == {
        (KeyState.ACTIVE, "PS256", KeyUse.JWT, NOW),
        (KeyState.NEXT, "PS256", KeyUse.JWT, NOW),
    }
    assert {rsa_bits(keyring, row.kid) for row in rows} == {3072}
    assert {keyring.key(row.kid).use for row in rows} == {KeyUse.JWT}


def test_ensure_promotes_a_lone_next_key_with_its_activation_instant(
    master_key: MasterKey,
) -> None:
    keyring = Keyring(InMemoryKeyStore(), master_key, clock=lambda: NOW)
    lone = replace(generate_key(KeyUse.JWT, now=NOW, alg="ES256"), state=KeyState.NEXT)
    keyring.add(lone)
    later = NOW + timedelta(hours=3)
    rotation = keyring.ensure(KeyUse.JWT, now=later)
    assert (rotation.use, rotation.at) == (KeyUse.JWT, later)
    promoted = {row.kid: row for row in keyring.rows(KeyUse.JWT)}[lone.kid]
    assert (promoted.state, promoted.activated_at) == (KeyState.ACTIVE, later)


def test_rotation_of_an_empty_keyring_makes_2048_bit_rsa_keys(master_key: MasterKey) -> None:
    keyring = Keyring(InMemoryKeyStore(), master_key, clock=lambda: NOW)
    keyring.rotate(KeyUse.SAML, now=NOW, max_token_lifetime=LIFETIME, alg="RS256")
    assert {rsa_bits(keyring, row.kid) for row in keyring.rows(KeyUse.SAML)} == {2048}


def test_the_new_next_key_follows_the_promoted_one(master_key: MasterKey) -> None:
    """The key created by a rotation takes the algorithm of the next key it follows,
    not of the active key being retired."""
    store = InMemoryKeyStore()
    keyring = Keyring(store, master_key, clock=lambda: NOW)
    keyring.ensure(KeyUse.JWT, now=NOW, alg="ES256")
    old_next = next(r for r in keyring.rows(KeyUse.JWT) if r.state is KeyState.NEXT)
    keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)  # ES256 next promoted
    rsa_next = replace(generate_key(KeyUse.JWT, now=NOW, alg="PS256"), state=KeyState.NEXT)
    for row in keyring.rows(KeyUse.JWT):
        if row.state is KeyState.NEXT:  # keep only the PS256 one as next
            store.replace_states([StateChange(row.kid, KeyState.NEXT, KeyState.RETIRED)], add=[])
    keyring.add(rsa_next)
    keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
    states = {row.kid: row for row in keyring.rows(KeyUse.JWT)}
    assert states[rsa_next.kid].state is KeyState.ACTIVE
    assert states[old_next.kid].state is KeyState.RETIRING
    [new_next] = [row for row in states.values() if row.state is KeyState.NEXT]
    assert new_next.alg == "PS256"


def test_the_most_recently_activated_key_signs(master_key: MasterKey) -> None:
    keyring = Keyring(InMemoryKeyStore(), master_key, clock=lambda: NOW)
    older = replace(
        generate_key(KeyUse.JWT, now=NOW - timedelta(days=2), alg="ES256"),
        state=KeyState.ACTIVE,
        activated_at=NOW,
    )
    younger = replace(
        generate_key(KeyUse.JWT, now=NOW - timedelta(days=1), alg="ES256"),
        state=KeyState.ACTIVE,
        activated_at=NOW - timedelta(days=1),
    )
    keyring.add(older)
    keyring.add(younger)
    assert keyring.active(KeyUse.JWT).kid == older.kid


def test_adding_a_key_refreshes_the_cached_rows(master_key: MasterKey) -> None:
    keyring = Keyring(InMemoryKeyStore(), master_key, clock=lambda: NOW, ttl=timedelta(hours=1))
    keyring.ensure(KeyUse.JWT, now=NOW, alg="ES256")
    before = {key.kid for key in keyring.published(KeyUse.JWT, now=NOW)}
    added = replace(generate_key(KeyUse.JWT, now=NOW, alg="ES256"), state=KeyState.NEXT)
    keyring.add(added)
    assert {key.kid for key in keyring.published(KeyUse.JWT, now=NOW)} == before | {added.kid}
