"""Lockout and rate limit: atomic reservations hold under 50 concurrent wrong passwords."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from idp.auth import throttle as throttle_mod
from idp.auth.throttle import Rule, SqlBackend, account_key, lock_seconds
from rcd_store.passwords import PasswordService
from tests import factories
from tests.idp.login_support import csrf, error_of, login_email, login_siret, setup_directory

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL")
WRONG = "pas le bon mot de passe"


@pytest.fixture(params=["database", "redis"])
def backend_config(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> dict[str, Any]:
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("IDP_TEST_REDIS_URL not set")
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter("idp:throttle:*"):
            client.delete(key)
        return {**app_config, "REDIS_URL": REDIS_URL}
    return {**app_config, "REDIS_URL": None}


@pytest.fixture
def login_app(backend_config: dict[str, Any]) -> Any:
    from idp.factory import create_app
    from idp.stores.db import database

    flask_app = create_app({**backend_config, "IP_FAILURE_LIMIT": 1000})
    flask_app.config["TESTING"] = True
    yield flask_app
    database(flask_app).engine.dispose()


@pytest.fixture
def declarant(login_app: Any) -> Any:
    from idp.stores.db import database

    session = database(login_app).sessions()
    try:
        return setup_directory(session)
    finally:
        session.close()


def _count_verifies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    lock = threading.Lock()
    original = PasswordService.verify

    def counting(self: PasswordService, stored_hash: str, password: str) -> bool:
        with lock:
            calls.append(1)
        return original(self, stored_hash, password)

    monkeypatch.setattr(PasswordService, "verify", counting)
    return calls


def test_backend_matches_configuration(login_app: Any, backend_config: dict[str, Any]) -> None:
    backend = throttle_mod.throttle(login_app).backend
    expected = "RedisBackend" if backend_config.get("REDIS_URL") else "SqlBackend"
    assert type(backend).__name__ == expected


def test_50_concurrent_wrong_passwords_check_at_most_the_threshold(
    login_app: Any, declarant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_verifies(monkeypatch)
    statuses: list[int] = []
    barrier = threading.Barrier(50)
    clients = [login_app.test_client() for _ in range(50)]
    tokens = [csrf(c) for c in clients]

    def attempt(index: int) -> None:
        barrier.wait()
        response = clients[index].post(
            "/connexion",
            data={
                "csrf_token": tokens[index],
                "siret": factories.SIRET_A,
                "nom": "Dupont",
                "prenom": "Élodie",
                "mot_de_passe": WRONG,
            },
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 50
    assert len(calls) <= 5, f"{len(calls)} password checks for a threshold of 5"
    assert statuses.count(429) >= 45
    # the right password is refused too: the account is locked
    calls.clear()
    right = login_siret(login_app.test_client())
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) > 0
    assert "Trop de tentatives" in error_of(right)
    assert calls == []


def test_lock_after_threshold_then_429_and_success_resets(login_app: Any, declarant: Any) -> None:
    client = login_app.test_client()
    for _ in range(4):
        assert login_siret(client, password=WRONG).status_code == 200
    assert login_siret(client).status_code == 303  # success resets the counter
    for _ in range(5):
        assert login_siret(client, password=WRONG).status_code == 200
    locked = login_siret(client)
    assert locked.status_code == 429
    assert 14 * 60 <= int(locked.headers["Retry-After"]) <= 15 * 60
    # the email form reaches the same account: locked as well
    assert login_email(client).status_code == 429


def test_unknown_identifier_gets_the_same_429_after_the_same_failures(
    login_app: Any, declarant: Any
) -> None:
    client = login_app.test_client()
    known = [login_siret(client, password=WRONG).status_code for _ in range(6)]
    unknown = [login_siret(client, siret=factories.SIRET_B).status_code for _ in range(6)]
    assert known == unknown == [200] * 5 + [429]


def test_threshold_is_configurable_and_capped(app: Any) -> None:
    app.config["LOCKOUT_THRESHOLD"] = 3
    assert throttle_mod.threshold(app) == 3
    app.config["LOCKOUT_THRESHOLD"] = 50
    assert throttle_mod.threshold(app) == 10


def test_per_address_rate_limit(app: Any, session: Any) -> None:
    setup_directory(session)
    app.config["IP_FAILURE_LIMIT"] = 3
    client = app.test_client()
    codes = [login_email(client, email=f"x{i}@inconnu.example").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    other = app.test_client()
    blocked = login_siret(other)  # the address is limited, whatever the account
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    fresh = login_siret(other)
    assert fresh.status_code == 303


def test_lockout_expires_and_doubles(app: Any) -> None:
    from idp.stores.db import database

    backend = SqlBackend(database(app).engine)
    rule = Rule(limit=2, window=900, doubling=True)
    key = account_key(identifier="test")
    t0 = datetime(2025, 1, 1, tzinfo=UTC)

    def fail(now: datetime) -> bool:
        reservation = backend.reserve(key, rule, now=now)
        if reservation.allowed:
            backend.failed(reservation, rule, now=now)
        return reservation.allowed

    assert [fail(t0), fail(t0), fail(t0)] == [True, True, False]
    assert not fail(t0 + timedelta(minutes=14))
    assert fail(t0 + timedelta(minutes=16)) and fail(t0 + timedelta(minutes=16))
    later = t0 + timedelta(minutes=16)
    assert not fail(later + timedelta(minutes=29))  # second lock: 30 minutes
    assert fail(later + timedelta(minutes=31))
    assert lock_seconds(rule, 0) == 900 and lock_seconds(rule, 1) == 1800
    assert lock_seconds(rule, 30) == 24 * 3600


def test_stale_failures_are_forgotten_after_the_window(app: Any) -> None:
    from idp.stores.db import database

    backend = SqlBackend(database(app).engine)
    rule = Rule(limit=2, window=900, doubling=True)
    key = account_key(identifier="stale")
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    first = backend.reserve(key, rule, now=t0)
    assert first.count == 1
    assert backend.reserve(key, rule, now=t0 + timedelta(minutes=20)).count == 1


def test_throttle_table_names_nobody(app_config: Any, session: Any) -> None:
    from sqlalchemy import select

    from idp.factory import create_app
    from idp.stores.models import LoginThrottle

    app = create_app({**app_config, "REDIS_URL": None})  # the database throttle
    client = app.test_client()
    login_siret(client, last="Inconnu", first="Personne")
    keys = list(session.scalars(select(LoginThrottle.key)))
    assert keys and all("Inconnu" not in k and "inconnu" not in k for k in keys)
    from idp.stores.db import database

    database(app).engine.dispose()
