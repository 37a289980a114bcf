"""A login's lockout in one round trip to reserve and one to settle (issue 18): the
counters' batch calls on every store, where each counter lives, and the lockout held
across the worker processes of one machine."""

from __future__ import annotations

import multiprocessing
import os
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from idp.auth.counters import Backend, MemoryBackend, RedisBackend, Rule, SqlBackend
from tests import factories
from tests.idp.login_support import csrf, setup_directory

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL")
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ADDRESS = Rule(1, 60, doubling=False)
ACCOUNT = Rule(5, 900, doubling=True)
WRONG = "pas le bon mot de passe"


@pytest.fixture(params=["memory", "database", "redis"])
def backend(request: pytest.FixtureRequest, app: Any) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    if request.param == "database":
        from idp.stores.db import database

        yield SqlBackend(database(app).engine)
        return
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL not set")
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    yield RedisBackend(client, prefix=f"test:{uuid.uuid4().hex}:")
    client.close()


def test_reserve_all_counts_each_counter_under_its_rule(backend: Backend) -> None:
    wanted = [("ip:a", ADDRESS), ("acct:x", ACCOUNT), ("acct:x@a", ACCOUNT)]
    found = backend.reserve_all(wanted, now=NOW, gate=True)
    assert [(r.key, r.count, r.allowed) for r in found] == [
        ("ip:a", 1, True),
        ("acct:x", 1, True),
        ("acct:x@a", 1, True),
    ]
    again = backend.reserve_all(wanted, now=NOW)
    assert [(r.count, r.allowed) for r in again] == [(2, False), (2, True), (2, True)]


def test_a_refused_first_counter_reserves_nothing_after_it(backend: Backend) -> None:
    wanted = [("ip:b", ADDRESS), ("acct:y", ACCOUNT)]
    assert [r.allowed for r in backend.reserve_all(wanted, now=NOW, gate=True)] == [True, True]
    refused = backend.reserve_all(wanted, now=NOW, gate=True)
    assert [(r.key, r.allowed) for r in refused] == [("ip:b", False)]
    assert backend.reserve("acct:y", ACCOUNT, now=NOW).count == 2  # untouched by the refusal


def test_settle_resets_and_gives_back_and_creates_nothing(backend: Backend) -> None:
    for _ in range(3):
        backend.reserve_all([("acct:z", ACCOUNT), ("ip:c", ACCOUNT)], now=NOW)
    backend.settle(reset=["acct:z"], release=["ip:c", "ip:never-seen"])
    assert backend.reserve("acct:z", ACCOUNT, now=NOW).count == 1
    assert backend.reserve("ip:c", ACCOUNT, now=NOW).count == 3
    assert backend.reserve("ip:never-seen", ACCOUNT, now=NOW).count == 1


def test_addresses_count_in_memory_unless_redis_is_configured(app: Any) -> None:
    from idp.auth.throttle import throttle

    guard = throttle(app)
    if app.extensions.get("idp.redis") is None:
        assert isinstance(guard.backend, SqlBackend)
        assert isinstance(guard.addresses, MemoryBackend)
    else:
        assert isinstance(guard.backend, RedisBackend) and guard.addresses is None
    assert guard.reserve_address("192.0.2.9").count == 1
    found = guard.reserve_attempt("192.0.2.9", ["acct:someone"])
    assert found[0].count == 2 and found[1] is not None and found[1].count == 1


def test_a_refused_address_touches_no_account_counter(app: Any) -> None:
    from idp.auth.throttle import throttle

    app.config["IP_FAILURE_LIMIT"] = 1
    app.extensions.pop("idp.throttle", None)
    guard = throttle(app)
    assert guard.reserve_attempt("192.0.2.10", ["acct:other"])[1] is not None
    address, account = guard.reserve_attempt("192.0.2.10", ["acct:other"])
    assert not address.allowed and account is None
    assert guard.reserve_account("acct:other").count == 2


# ------------------------------------------------- across the processes of one machine


def _worker(config: dict[str, Any], barrier: Any, results: Any, attempts: int) -> None:
    """One worker process of the same service: ``attempts`` wrong passwords at once."""
    from idp.factory import create_app
    from rcd_store.passwords import PasswordService

    checks: list[int] = []
    original = PasswordService.verify

    def counting(self: PasswordService, stored_hash: str, password: str) -> bool:
        checks.append(1)
        return original(self, stored_hash, password)

    PasswordService.verify = counting  # type: ignore[method-assign]
    app = create_app({**config, "IP_FAILURE_LIMIT": 1000})
    clients = [app.test_client() for _ in range(attempts)]
    tokens = [csrf(client) for client in clients]
    statuses: list[int] = []

    def attempt(index: int) -> None:
        form = {"siret": factories.SIRET_A, "nom": "Dupont", "prenom": "Élodie"}
        form |= {"csrf_token": tokens[index], "mot_de_passe": WRONG}
        statuses.append(clients[index].post("/connexion", data=form).status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
    barrier.wait(timeout=120)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((len(checks), sorted(statuses)))


def test_50_wrong_passwords_over_two_processes_check_at_most_the_threshold(
    app: Any, app_config: dict[str, Any], session: Any
) -> None:
    """Two worker processes of one machine (as ``idp serve --workers 2``), 25 wrong
    passwords each at once: the account lockout is shared, 5 checks in all."""
    setup_directory(session)
    session.commit()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_worker, args=(app_config, barrier, results, 25)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    found = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    checks = sum(count for count, _statuses in found)
    statuses = [status for _count, seen in found for status in seen]
    assert len(statuses) == 50
    assert checks <= 5, f"{checks} password checks over two processes for a threshold of 5"
    assert statuses.count(429) >= 45
