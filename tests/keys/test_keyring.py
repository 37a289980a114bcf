"""keys.keyring: first start, signing key, published keys, rotation, caching."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import keys.keyring as keyring_module
from keys.crypto import KeyDecryptionError, MasterKey, decrypt_private_key
from keys.generate import generate_key
from keys.jwks import jwks, public_keys_from_jwks
from keys.keyring import DEFAULT_MARGIN, Keyring, KeyTransition, NoActiveKey, Rotation
from keys.model import KeyState, KeyUse, SigningKey
from keys.store import InMemoryKeyStore, KeyStoreConflict, StateChange, StoredKey

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LIFETIME = timedelta(hours=1)


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store() -> InMemoryKeyStore:
    return InMemoryKeyStore()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keyring(store: InMemoryKeyStore, master_key: MasterKey, clock: Clock) -> Keyring:
    return Keyring(store, master_key, clock=clock)


def _states(store: InMemoryKeyStore, use: KeyUse = KeyUse.JWT) -> dict[str, KeyState]:
    return {row.kid: row.state for row in store.list(use)}


def _sign_token(key: SigningKey, *, now: datetime) -> str:
    claims = {
        "sub": "declarant",
        "iat": int(now.timestamp()),
        "exp": int((now + LIFETIME).timestamp()),
    }
    return pyjwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid})


def _verifies(token: str, published: Sequence[SigningKey]) -> bool:
    """Verify as a partner would: the kid looked up in the published JWKS."""
    trusted = public_keys_from_jwks(jwks(published))
    kid = pyjwt.get_unverified_header(token)["kid"]
    if kid not in trusted:
        return False
    alg, public_key = trusted[kid]
    pyjwt.decode(token, public_key, algorithms=[alg], options={"verify_exp": False})
    return True


def test_first_start_creates_active_and_next(keyring: Keyring, store: InMemoryKeyStore) -> None:
    rotation = keyring.ensure(KeyUse.JWT, now=NOW)
    assert sorted(_states(store).values()) == [KeyState.ACTIVE, KeyState.NEXT]
    assert [t.previous for t in rotation.transitions] == [None, None]
    assert keyring.active(KeyUse.JWT).alg == "ES256"
    assert keyring.ensure(KeyUse.JWT, now=NOW).changed is False
    assert store.list(KeyUse.SAML) == []


def test_ensure_promotes_a_lone_next_key(
    keyring: Keyring, store: InMemoryKeyStore, es_key: SigningKey
) -> None:
    keyring.add(es_key)
    rotation = keyring.ensure(KeyUse.JWT, now=NOW)
    assert rotation.transitions[0] == KeyTransition(
        es_key.kid, "ES256", KeyState.NEXT, KeyState.ACTIVE
    )
    assert keyring.active(KeyUse.JWT).kid == es_key.kid
    assert list(_states(store).values()).count(KeyState.NEXT) == 1


def test_ensure_adds_missing_next(
    keyring: Keyring, store: InMemoryKeyStore, es_key: SigningKey
) -> None:
    keyring.add(replace(es_key, state=KeyState.ACTIVE, activated_at=NOW))
    rotation = keyring.ensure(KeyUse.JWT, now=NOW, alg="PS256")
    assert [(t.previous, t.state, t.alg) for t in rotation.transitions] == [
        (None, KeyState.NEXT, "PS256")
    ]


def test_no_active_key(keyring: Keyring) -> None:
    with pytest.raises(NoActiveKey, match="no active saml key"):
        keyring.active(KeyUse.SAML)


def test_stored_rows_hold_no_plaintext_private_key(
    keyring: Keyring, store: InMemoryKeyStore
) -> None:
    keyring.ensure(KeyUse.SAML, now=NOW)
    decrypted = {key.kid: key for key in keyring.published(KeyUse.SAML)}
    rows = store.list(KeyUse.SAML)
    assert len(rows) == len(decrypted) == 2
    for row in rows:
        private_key = decrypted[row.kid].private_key
        assert isinstance(private_key, rsa.RSAPrivateKey) and private_key.key_size == 2048
        der = private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        secret = private_key.private_numbers().d.to_bytes(256, "big")
        blob = row.encrypted_private_key
        assert b"-----BEGIN" not in blob and b"PRIVATE KEY" not in blob
        assert all(der[i : i + 16] not in blob for i in range(0, len(der) - 16, 8))
        assert all(secret[i : i + 16] not in blob for i in range(0, len(secret) - 16, 8))
        assert row.certificate_pem is not None
        assert row.certificate_pem.startswith(b"-----BEGIN CERTIFICATE")
        assert decrypted[row.kid].certificate is not None


def test_rotation_keeps_old_tokens_verifiable_until_expiry(
    keyring: Keyring, store: InMemoryKeyStore, clock: Clock
) -> None:
    keyring.ensure(KeyUse.JWT, now=NOW)
    old = keyring.active(KeyUse.JWT)
    upcoming = next(k for k in keyring.published(KeyUse.JWT) if k.state is KeyState.NEXT)
    token = _sign_token(old, now=NOW)

    clock.now = NOW + timedelta(minutes=10)
    rotation = keyring.rotate(KeyUse.JWT, now=clock.now, max_token_lifetime=LIFETIME)
    publish_until = clock.now + LIFETIME + DEFAULT_MARGIN
    assert KeyTransition(old.kid, "ES256", KeyState.ACTIVE, KeyState.RETIRING, publish_until) in (
        rotation.transitions
    )
    assert keyring.active(KeyUse.JWT).kid == upcoming.kid
    assert _verifies(token, keyring.published(KeyUse.JWT))
    assert _verifies(
        _sign_token(keyring.active(KeyUse.JWT), now=clock.now), keyring.published(KeyUse.JWT)
    )

    # Just before publish_until the retiring key is still published, then it is not.
    assert _verifies(token, keyring.published(KeyUse.JWT, now=publish_until - timedelta(seconds=1)))
    assert not _verifies(token, keyring.published(KeyUse.JWT, now=publish_until))

    # A rotation before publish_until leaves it retiring; one after retires it.
    keyring.rotate(
        KeyUse.JWT, now=publish_until - timedelta(seconds=1), max_token_lifetime=LIFETIME
    )
    assert _states(store)[old.kid] is KeyState.RETIRING
    rotation = keyring.rotate(KeyUse.JWT, now=publish_until, max_token_lifetime=LIFETIME)
    assert _states(store)[old.kid] is KeyState.RETIRED
    assert f"jwt: {old.kid} (ES256): retiring -> retired" in rotation.describe()


def test_published_order_and_states(keyring: Keyring, clock: Clock) -> None:
    keyring.ensure(KeyUse.JWT, now=NOW)
    keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
    states = [key.state for key in keyring.published(KeyUse.JWT)]
    assert states == [KeyState.ACTIVE, KeyState.NEXT, KeyState.RETIRING]
    clock.now = NOW + LIFETIME + DEFAULT_MARGIN
    assert [key.state for key in keyring.published(KeyUse.JWT)] == [KeyState.ACTIVE, KeyState.NEXT]


def test_retiring_key_without_publish_until_is_not_published(
    keyring: Keyring, store: InMemoryKeyStore, es_key: SigningKey
) -> None:
    keyring.add(replace(es_key, state=KeyState.RETIRING))
    assert keyring.published(KeyUse.JWT) == []
    keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
    assert _states(store)[es_key.kid] is KeyState.RETIRED


def test_rotate_without_next_creates_active_directly(
    keyring: Keyring, store: InMemoryKeyStore
) -> None:
    rotation = keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
    assert [(t.previous, t.state) for t in rotation.transitions] == [
        (None, KeyState.ACTIVE),
        (None, KeyState.NEXT),
    ]
    assert keyring.active(KeyUse.JWT).alg == "ES256"


def test_rotate_from_active_only_keeps_its_algorithm(
    keyring: Keyring, store: InMemoryKeyStore, es_key: SigningKey
) -> None:
    keyring.add(replace(es_key, state=KeyState.ACTIVE, activated_at=NOW))
    rotation = keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
    assert {t.alg for t in rotation.transitions} == {"ES256"}
    assert _states(store)[es_key.kid] is KeyState.RETIRING


def test_rotate_keeps_rsa_size_and_alg(
    keyring: Keyring, store: InMemoryKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = generate_key(KeyUse.SAML, now=NOW, rsa_bits=3072, state=KeyState.ACTIVE)
    keyring.add(big)
    calls: list[dict[str, Any]] = []
    pool = iter([generate_key(KeyUse.JWT, now=NOW) for _ in range(4)])

    def fake_generate(use: KeyUse, **options: Any) -> SigningKey:
        calls.append(options)
        return replace(next(pool), use=use, state=options.get("state", KeyState.NEXT))

    monkeypatch.setattr(keyring_module, "generate_key", fake_generate)
    monkeypatch.setattr(keyring_module, "check_signing_key", lambda key: None)
    monkeypatch.setattr(keyring, "_seal", lambda key: _fake_row(key))
    keyring.rotate(KeyUse.SAML, now=NOW, max_token_lifetime=LIFETIME)
    assert [(c["alg"], c["rsa_bits"]) for c in calls] == [("RS256", 3072), ("RS256", 3072)]
    calls.clear()
    keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME, alg="PS256", rsa_bits=3072)
    assert [(c["alg"], c["rsa_bits"]) for c in calls] == [("PS256", 3072), ("PS256", 3072)]


def _fake_row(key: SigningKey) -> StoredKey:
    return StoredKey(key.kid, key.use, key.alg, key.state, b"x", None, key.created_at)


def test_rotate_after_es256_uses_default_rsa_size(
    keyring: Keyring, es_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring.add(replace(es_key, state=KeyState.ACTIVE, activated_at=NOW))
    keyring.ensure(KeyUse.JWT, now=NOW)
    seen: list[int] = []
    original = generate_key

    def spy(use: KeyUse, **options: Any) -> SigningKey:
        seen.append(options["rsa_bits"])
        return original(use, **{**options, "alg": "ES256"})

    monkeypatch.setattr(keyring_module, "generate_key", spy)
    keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME, alg="RS256")
    assert seen == [2048]


def test_newest_active_key_signs(keyring: Keyring, es_key: SigningKey) -> None:
    other = generate_key(KeyUse.JWT, now=NOW - timedelta(days=1))
    keyring.add(replace(es_key, state=KeyState.ACTIVE, activated_at=NOW))
    keyring.add(replace(other, state=KeyState.ACTIVE, activated_at=NOW - timedelta(days=1)))
    assert keyring.active(KeyUse.JWT).kid == es_key.kid


def test_signing_keys_are_decrypted_once(keyring: Keyring, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.ensure(KeyUse.JWT, now=NOW)
    calls: list[str] = []
    original = decrypt_private_key

    def counting(blob: bytes, **options: Any) -> Any:
        calls.append(options["kid"])
        return original(blob, **options)

    monkeypatch.setattr(keyring_module, "decrypt_private_key", counting)
    first = keyring.active(KeyUse.JWT)
    assert keyring.active(KeyUse.JWT) is first
    keyring.published(KeyUse.JWT)
    assert len(calls) == 2  # the active and the next key, once each
    keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
    retiring = next(k for k in keyring.published(KeyUse.JWT) if k.kid == first.kid)
    assert retiring.state is KeyState.RETIRING and retiring.private_key is first.private_key
    assert len(calls) == 3  # only the new next key


def test_row_cache_with_ttl(store: InMemoryKeyStore, master_key: MasterKey, clock: Clock) -> None:
    cached = Keyring(store, master_key, clock=clock, ttl=timedelta(seconds=60))
    other = Keyring(store, master_key, clock=clock)
    cached.ensure(KeyUse.JWT, now=NOW)
    before = cached.active(KeyUse.JWT)
    other.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
    assert cached.active(KeyUse.JWT).kid == before.kid  # still within the ttl
    clock.now = NOW + timedelta(seconds=60)
    assert cached.active(KeyUse.JWT).kid == other.active(KeyUse.JWT).kid
    cached.rotate(KeyUse.JWT, now=clock.now, max_token_lifetime=LIFETIME)
    assert cached.active(KeyUse.JWT).kid == other.active(KeyUse.JWT).kid  # own writes seen


def test_default_clock_is_utc_now(store: InMemoryKeyStore, master_key: MasterKey) -> None:
    keyring = Keyring(store, master_key)
    keyring.rotate(
        KeyUse.JWT, now=datetime.now(UTC) - timedelta(days=1), max_token_lifetime=LIFETIME
    )
    keyring.rotate(
        KeyUse.JWT, now=datetime.now(UTC) - timedelta(hours=12), max_token_lifetime=LIFETIME
    )
    # the first active key's publish_until is in the past by the real clock
    assert [k.state for k in keyring.published(KeyUse.JWT)] == [KeyState.ACTIVE, KeyState.NEXT]


def test_concurrent_rotation_is_refused_atomically(
    store: InMemoryKeyStore, master_key: MasterKey
) -> None:
    class RacingStore(InMemoryKeyStore):
        raced = False

        def replace_states(
            self, changes: Sequence[StateChange], *, add: Sequence[StoredKey] = ()
        ) -> None:
            if not self.raced:
                self.raced = True
                Keyring(self, master_key).rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
            super().replace_states(changes, add=add)

    racing = RacingStore()
    keyring = Keyring(racing, master_key)
    racing.raced = True
    keyring.ensure(KeyUse.JWT, now=NOW)
    before = _states(racing)
    racing.raced = False
    with pytest.raises(KeyStoreConflict):
        keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
    after = _states(racing)
    assert {kid: after[kid] for kid in before} != before  # the other rotation happened
    assert list(after.values()).count(KeyState.ACTIVE) == 1  # and ours left no trace
    assert len(after) == len(before) + 1


def test_wrong_master_key_refused(store: InMemoryKeyStore, keyring: Keyring) -> None:
    keyring.ensure(KeyUse.JWT, now=NOW)
    with pytest.raises(KeyDecryptionError):
        Keyring(store, MasterKey.generate()).active(KeyUse.JWT)


def test_certificate_swapped_in_store_refused(
    keyring: Keyring, store: InMemoryKeyStore, saml_key: SigningKey, master_key: MasterKey
) -> None:
    stored = keyring.add(saml_key)
    intruder = generate_key(KeyUse.SAML, now=NOW, alg="ES256")
    assert intruder.certificate is not None
    tampered = InMemoryKeyStore()
    tampered.add(
        replace(
            stored, certificate_pem=intruder.certificate.public_bytes(serialization.Encoding.PEM)
        )
    )
    with pytest.raises(KeyDecryptionError, match="certificate .* is for another key"):
        Keyring(tampered, master_key).active(KeyUse.SAML)


def test_add_checks_the_key(keyring: Keyring, saml_key: SigningKey, es_key: SigningKey) -> None:
    other = generate_key(KeyUse.SAML, now=NOW, alg="ES256")
    bad = [
        (replace(es_key, kid="not-the-thumbprint"), "not the RFC 7638 thumbprint"),
        (replace(es_key, use=KeyUse.SAML, alg="PS256"), "PS256 not allowed for saml"),
        (replace(es_key, alg="RS256"), "does not fit this key type"),
        (replace(saml_key, alg="ES256"), "does not fit this key type"),
        (replace(es_key, use=KeyUse.SAML), "needs a certificate"),
        (replace(saml_key, certificate=other.certificate), "certificate is for another key"),
    ]
    for key, message in bad:
        with pytest.raises(ValueError, match=message):
            keyring.add(key)
    assert keyring.add(saml_key).kid == saml_key.kid


def test_rotation_description_is_json_ready(keyring: Keyring) -> None:
    keyring.ensure(KeyUse.JWT, now=NOW)
    rotation = keyring.rotate(KeyUse.JWT, now=NOW, max_token_lifetime=LIFETIME)
    data = json.loads(json.dumps(rotation.as_dict()))
    assert data["use"] == "jwt" and data["at"] == NOW.isoformat()
    moves = {(t["from"], t["to"]) for t in data["transitions"]}
    assert moves == {("active", "retiring"), ("next", "active"), (None, "next")}
    retiring = next(t for t in data["transitions"] if t["to"] == "retiring")
    assert retiring["publish_until"] == (NOW + LIFETIME + DEFAULT_MARGIN).isoformat()
    lines = rotation.describe()
    assert any(line.endswith(f"published until {retiring['publish_until']}") for line in lines)
    assert any(line.startswith("jwt: created ") and line.endswith("as next") for line in lines)
    assert any(line.endswith("next -> active") for line in lines)
    assert Rotation(KeyUse.JWT, NOW, ()).as_dict()["transitions"] == []


def test_rows_and_key_by_kid(keyring: Keyring) -> None:
    keyring.ensure(KeyUse.JWT, now=NOW)
    rows = keyring.rows(KeyUse.JWT)
    assert [row.state for row in rows] == [KeyState.ACTIVE, KeyState.NEXT]
    assert keyring.key(rows[1].kid).kid == rows[1].kid
    with pytest.raises(KeyError):
        keyring.key("unknown")
