"""Keys in the database (encrypted) and the shared replay caches."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from idp.stores.keystore import SigningKeyRow, SqlKeyStore
from idp.stores.replay import RedisReplayCache, SqlReplayCache
from keys.crypto import MasterKey
from keys.keyring import Keyring
from keys.model import KeyState, KeyUse
from keys.store import KeyStoreConflict, StateChange
from rcd_store.db import session_factory
from tests.conftest import REDIS_URL

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(engine) -> SqlKeyStore:
    return SqlKeyStore(session_factory(engine))


def test_keyring_on_the_database_never_stores_plaintext(store, engine) -> None:
    from cryptography.hazmat.primitives import serialization

    keyring = Keyring(store, MasterKey.generate())
    keyring.ensure(KeyUse.JWT, now=NOW)
    active = keyring.active(KeyUse.JWT)
    der = active.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_value = active.private_key.private_numbers().private_value.to_bytes(32, "big")
    with session_factory(engine)() as session:
        rows = session.scalars(select(SigningKeyRow)).all()
    assert {r.state for r in rows} == {"active", "next"}
    for row in rows:
        raw = bytes(row.encrypted_private_key)
        assert b"PRIVATE KEY" not in raw and der not in raw and private_value not in raw


def test_rotation_through_the_database(store) -> None:
    keyring = Keyring(store, MasterKey.generate())
    keyring.ensure(KeyUse.SAML, now=NOW)
    first = keyring.active(KeyUse.SAML).kid
    keyring.rotate(
        KeyUse.SAML, now=NOW + timedelta(hours=1), max_token_lifetime=timedelta(minutes=5)
    )
    states = {row.kid: row.state for row in store.list(KeyUse.SAML)}
    assert states[first] is KeyState.RETIRING
    published = [k.kid for k in keyring.published(KeyUse.SAML, now=NOW + timedelta(hours=1))]
    assert first in published and len(published) == 3
    later = NOW + timedelta(hours=2)
    assert first not in [k.kid for k in keyring.published(KeyUse.SAML, now=later)]


def test_stale_rotation_changes_nothing(store) -> None:
    keyring = Keyring(store, MasterKey.generate())
    keyring.ensure(KeyUse.JWT, now=NOW)
    before = store.list(KeyUse.JWT)
    active = next(r for r in before if r.state is KeyState.ACTIVE)
    nxt = next(r for r in before if r.state is KeyState.NEXT)
    with pytest.raises(KeyStoreConflict):
        store.replace_states(
            [
                StateChange(nxt.kid, KeyState.NEXT, KeyState.ACTIVE, activated_at=NOW),
                StateChange(active.kid, KeyState.NEXT, KeyState.RETIRING),  # stale
            ]
        )
    assert store.list(KeyUse.JWT) == before
    with pytest.raises(KeyStoreConflict):
        store.add(before[0])
    with pytest.raises(KeyStoreConflict):
        store.update_state(
            "nope", KeyState.RETIRED, activated_at=None, retiring_at=None, publish_until=None
        )


def _race(cache, token_id: str, n: int = 8) -> list[bool]:
    barrier = threading.Barrier(n)
    results: list[bool] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        seen = cache.seen(token_id, expires_at=datetime.now(UTC) + timedelta(minutes=5))
        with lock:
            results.append(seen)

    threads = [threading.Thread(target=attempt) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_sql_replay_cache(engine) -> None:
    cache = SqlReplayCache(session_factory(engine))
    soon = datetime.now(UTC) + timedelta(minutes=5)
    assert cache.seen("a", expires_at=soon) is False
    assert cache.seen("a", expires_at=soon) is True
    # an expired id may be recorded again (the token itself is refused by its expiry)
    cache.seen("old", expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert cache.seen("old", expires_at=soon) is False
    assert cache.purge(now=soon + timedelta(seconds=1)) == 2
    assert sorted(_race(cache, "raced")) == [False] + [True] * 7


@pytest.mark.redis
def test_redis_replay_cache() -> None:
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL not set")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"test:{datetime.now(UTC).timestamp()}:"
    cache = RedisReplayCache(client, prefix=prefix)
    soon = datetime.now(UTC) + timedelta(minutes=5)
    assert cache.seen("a", expires_at=soon) is False
    assert cache.seen("a", expires_at=soon) is True
    ttl = client.pttl(prefix + "a")
    assert 0 < ttl <= 5 * 60 * 1000
    assert sorted(_race(cache, "raced")) == [False] + [True] * 7
    client.close()
