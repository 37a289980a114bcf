"""SSO session stores: the database and Redis keep the same sessions the same way.

Every test runs on both stores (Redis when ``IDP_TEST_REDIS_URL`` is set).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from idp.sessions.store import RedisSessionStore, SqlSessionStore, SsoRecord, store
from tests import factories as f
from tests.conftest import REDIS_URL

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(params=["sql", "redis"])
def backend(request: pytest.FixtureRequest, app: Any, session: Any) -> Iterator[Any]:
    if request.param == "sql":
        yield lambda: SqlSessionStore(session)
        return
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL not set")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = "test:sso:" + request.node.name.replace("[", "-").replace("]", "") + ":"
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    yield lambda: RedisSessionStore(client, prefix=prefix)
    client.close()


@pytest.fixture
def people(session: Any) -> tuple[str, str]:
    f.company(session)
    first = f.declarant(session)
    second = f.declarant(session, last="Martin", first="Paul", email="paul@martin.example")
    session.commit()
    return first.id, second.id


def record(declarant_id: str, name: str, **changes: Any) -> SsoRecord:
    values: dict[str, Any] = {
        "id_hash": name * 8,
        "declarant_id": declarant_id,
        "created_at": NOW,
        "last_seen_at": NOW,
        "expires_at": NOW + timedelta(hours=10),
        "auth_time": NOW,
        "acr": "urn:acr:pwd",
        "amr": ["pwd"],
        "sid": "sid-" + name,
        "origin": "password",
    }
    values.update(changes)
    return SsoRecord(**values)


def test_add_get_and_find_by_sid(backend: Any, people: tuple[str, str]) -> None:
    sessions = backend()
    added = record(people[0], "a", participants=[{"partner": "P", "protocol": "saml"}])
    sessions.add(added)
    assert sessions.get(added.id_hash) == added
    assert sessions.by_sid("sid-a") == added
    assert sessions.get("b" * 8) is None and sessions.by_sid("sid-b") is None


def test_touch_and_save_write_back(backend: Any, people: tuple[str, str]) -> None:
    sessions = backend()
    row = record(people[0], "a")
    sessions.add(row)
    later = NOW + timedelta(minutes=5)
    sessions.touch(row, later)
    assert row.last_seen_at == later and sessions.get(row.id_hash).last_seen_at == later
    row.auth_time, row.acr, row.amr = later, "urn:acr:totp", ["pwd", "otp"]
    sessions.save(row)
    stored = sessions.get(row.id_hash)
    assert (stored.auth_time, stored.acr, stored.amr) == (later, "urn:acr:totp", ["pwd", "otp"])


def test_participants_are_kept_once_each(backend: Any, people: tuple[str, str]) -> None:
    sessions = backend()
    row = record(people[0], "a")
    sessions.add(row)
    saml = {"partner": "URSSAF", "protocol": "saml", "session_index": "sid-a"}
    oidc = {"partner": "MSA", "protocol": "oidc"}
    for participant in (saml, oidc, saml):
        sessions.add_participant(row, participant)
    stored = sessions.get(row.id_hash).participants
    assert len(stored) == 2 and saml in stored and oidc in stored
    assert len(row.participants) == 2


def test_delete_and_delete_for_declarant(backend: Any, people: tuple[str, str]) -> None:
    sessions = backend()
    first, second = people
    rows = [
        record(first, "a"),
        record(first, "b", created_at=NOW + timedelta(seconds=1)),
        record(second, "c"),
    ]
    for row in rows:
        sessions.add(row)
    assert [r.id_hash for r in sessions.for_declarant(first)] == ["a" * 8, "b" * 8]
    sessions.delete(rows[0])
    assert sessions.get("a" * 8) is None and sessions.by_sid("sid-a") is None
    assert sessions.delete_for_declarant(first) == 1
    assert sessions.for_declarant(first) == [] and sessions.by_sid("sid-b") is None
    assert [r.id_hash for r in sessions.records()] == ["c" * 8]


def test_redis_keys_expire_with_the_session_and_hold_no_cookie(people: tuple[str, str]) -> None:
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL not set")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    sessions = RedisSessionStore(client, prefix="test:sso:ttl:")
    row = record(
        people[0],
        "a",
        expires_at=NOW + timedelta(minutes=30),
        participants=[{"partner": "Q", "protocol": "oidc"}],
    )
    expected = int(row.expires_at.timestamp() * 1000)

    def all_expire_with_the_session() -> None:
        keys = list(client.scan_iter(match="test:sso:ttl:*"))
        assert len(keys) == 4  # record, participants, sid, the declarant's set
        for key in keys:
            assert abs(client.pexpiretime(key) - expected) < 1000, key

    sessions.add(row)
    all_expire_with_the_session()
    sessions.add_participant(row, {"partner": "P", "protocol": "saml"})
    all_expire_with_the_session()
    # a session ended meanwhile is not brought back by a late touch
    sessions.delete(row)
    sessions.touch(row, NOW + timedelta(minutes=2))
    assert sessions.get(row.id_hash) is None
    for key in client.scan_iter(match="test:sso:ttl:*"):
        client.delete(key)
    client.close()


def test_redis_keeps_participants_added_at_the_same_time(people: tuple[str, str]) -> None:
    """Two tabs opening two partners at once: both are told at logout."""
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL not set")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    prefix = "test:sso:race:"
    row = record(people[0], "a")
    RedisSessionStore(client, prefix=prefix).add(row)
    barrier = threading.Barrier(8)

    def open_partner(index: int) -> None:
        mine = RedisSessionStore(client, prefix=prefix).get(row.id_hash)
        assert mine is not None
        barrier.wait()
        RedisSessionStore(client, prefix=prefix).add_participant(
            mine, {"partner": f"P{index}", "protocol": "oidc"}
        )

    threads = [threading.Thread(target=open_partner, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = RedisSessionStore(client, prefix=prefix).get(row.id_hash)
    assert stored is not None and len(stored.participants) == 8
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def test_the_app_uses_redis_when_configured(app_config: dict[str, Any]) -> None:
    from idp.factory import create_app
    from idp.stores.db import database

    sql_app = create_app({**app_config, "REDIS_URL": None})
    with sql_app.app_context():
        assert isinstance(store(), SqlSessionStore)
    database(sql_app).engine.dispose()
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL not set")
    redis_app = create_app({**app_config, "REDIS_URL": REDIS_URL})
    with redis_app.app_context():
        assert isinstance(store(), RedisSessionStore)
    database(redis_app).engine.dispose()
    redis_app.extensions["idp.redis"].close()
