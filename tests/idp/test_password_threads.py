"""argon2id on a few threads kept for it (idp.auth.passwords): concurrent logins never run
more computations at once than ``IDP_PASSWORD_HASH_CONCURRENCY``, always on the same
threads (their memory reused), and a login waiting for its turn holds no database
connection; the setting is checked at start."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy.pool import QueuePool

from idp.auth import passwords as passwords_mod
from idp.auth.passwords import BoundedPasswordService, default_concurrency, passwords
from idp.config import ConfigError
from tests import factories
from tests.idp.login_support import csrf, setup_directory


class SlowHasher:
    """The real argon2id hasher, each verification held until ``release`` is set, counting
    the verifications in flight and the threads they ran on."""

    def __init__(self, real: Any, *, hold: float = 0.05) -> None:
        self.real, self.hold = real, hold
        self.lock = threading.Lock()
        self.in_flight = self.peak = self.calls = 0
        self.threads: set[str] = set()
        self.entered = threading.Event()
        self.release = threading.Event()

    def verify(self, stored_hash: str, password: str) -> bool:
        with self.lock:
            self.in_flight += 1
            self.calls += 1
            self.peak = max(self.peak, self.in_flight)
            self.threads.add(threading.current_thread().name)
        self.entered.set()
        try:
            self.release.wait(timeout=self.hold)
            return bool(self.real.verify(stored_hash, password))
        finally:
            with self.lock:
                self.in_flight -= 1

    def __getattr__(self, name: str) -> Any:  # hash, check_needs_rehash: the real ones
        return getattr(self.real, name)


def _app(app_config: dict[str, Any], limit: int) -> Any:
    from idp.factory import create_app

    flask_app = create_app(
        {**app_config, "PASSWORD_HASH_CONCURRENCY": limit, "IP_FAILURE_LIMIT": 1000}
    )
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def make_app(app_config: dict[str, Any]) -> Any:
    from idp.stores.db import database

    made: list[Any] = []

    def make(limit: int) -> Any:
        made.append(_app(app_config, limit))
        return made[-1]

    yield make
    for flask_app in made:
        database(flask_app).engine.dispose()


def _slow(flask_app: Any, **options: Any) -> SlowHasher:
    service = passwords(flask_app)
    assert isinstance(service, BoundedPasswordService)
    slow = SlowHasher(service._hasher, **options)
    service._hasher = slow  # type: ignore[assignment]
    return slow


def _logins(
    flask_app: Any, forms: list[dict[str, str]]
) -> tuple[list[threading.Thread], list[int]]:
    """One thread per form, each posting ``/connexion`` from its own browser."""
    clients = [flask_app.test_client() for _ in forms]
    tokens = [csrf(client) for client in clients]
    statuses: list[int] = []

    def attempt(index: int) -> None:
        data = {"csrf_token": tokens[index], **forms[index]}
        statuses.append(clients[index].post("/connexion", data=data).status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(forms))]
    for thread in threads:
        thread.start()
    return threads, statuses


def _unknown(index: int) -> dict[str, str]:
    """A login for an identifier nobody has: the same argon2id check (the dummy hash),
    counted on its own key (no lockout between these attempts)."""
    return {
        "siret": factories.SIRET_A,
        "nom": f"Inconnu{index}",
        "prenom": "Personne",
        "mot_de_passe": "pas le bon mot de passe",
    }


def test_concurrent_logins_never_run_more_hashes_at_once_than_the_setting(make_app: Any) -> None:
    flask_app = make_app(2)
    session = flask_app.extensions["idp.db"].sessions()
    setup_directory(session)
    session.close()
    slow = _slow(flask_app)
    right = {
        "siret": factories.SIRET_A,
        "nom": "Dupont",
        "prenom": "Élodie",
        "mot_de_passe": factories.PASSWORD,
    }
    threads, statuses = _logins(flask_app, [right] + [_unknown(i) for i in range(9)])
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] * 9 + [303]
    assert slow.calls == 10
    assert slow.peak == 2, f"{slow.peak} argon2id computations at once for a bound of 2"
    # the same two threads kept for argon2id did every one (their memory stays in place)
    assert len(slow.threads) <= 2 and all(n.startswith("argon2id") for n in slow.threads)


def test_a_login_waiting_for_its_turn_holds_no_database_connection(make_app: Any) -> None:
    from idp.stores.db import database

    flask_app = make_app(1)
    service = passwords(flask_app)
    assert isinstance(service, BoundedPasswordService)
    slow = _slow(flask_app, hold=30.0)
    first, statuses = _logins(flask_app, [_unknown(0)])
    assert slow.entered.wait(timeout=30)
    others, more = _logins(flask_app, [_unknown(i) for i in range(1, 4)])
    queue = service._threads._work_queue  # the logins waiting for the argon2id thread
    deadline = time.monotonic() + 30
    while queue.qsize() < 3:
        assert time.monotonic() < deadline, "the other logins never queued for the hash"
        time.sleep(0.01)
    try:
        # one login hashing, three waiting: none holds a connection (nor a transaction)
        pool = database(flask_app).engine.pool
        assert isinstance(pool, QueuePool)  # SQLite in a file and PostgreSQL alike
        assert pool.checkedout() == 0
        assert slow.in_flight == 1
    finally:
        slow.release.set()
        for thread in first + others:
            thread.join(timeout=60)
    assert statuses + more == [200] * 4
    assert slow.peak == 1


def test_an_error_in_the_hash_reaches_the_caller() -> None:
    from rcd_store.passwords import HashParameters

    service = BoundedPasswordService(HashParameters(), 1)
    with pytest.raises(TypeError):
        service.hash(None)  # type: ignore[arg-type]
    stored = service.hash("une phrase de passe assez longue")
    assert service.verify(stored, "une phrase de passe assez longue")
    assert not service.verify(stored, "une autre phrase de passe")


def test_the_default_shares_the_cores_among_the_workers() -> None:
    assert default_concurrency(1, available=2) == 2
    assert default_concurrency(2, available=2) == 1
    assert default_concurrency(4, available=2) == 1
    assert default_concurrency(3, available=4) == 2  # rounded up: no core left idle
    assert passwords_mod.concurrency({}) == default_concurrency(1)
    assert passwords_mod.concurrency({"PASSWORD_HASH_CONCURRENCY": "3"}) == 3


@pytest.mark.parametrize("value", ["0", "-1", "abc", "2.5", "257", 0, True])
def test_a_bad_setting_stops_the_start_with_a_clear_error(
    app_config: dict[str, Any], value: Any
) -> None:
    from idp.factory import create_app

    with pytest.raises(ConfigError, match="IDP_PASSWORD_HASH_CONCURRENCY doit être"):
        create_app({**app_config, "PASSWORD_HASH_CONCURRENCY": value})


def test_a_bad_setting_in_the_environment_stops_idp_serve(
    idp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDP_PASSWORD_HASH_CONCURRENCY", "0")
    for name in ("OUTBOX", "EVENTS", "SAML_METADATA"):  # idp serve sets them when absent:
        monkeypatch.setenv(f"IDP_{name}_BACKGROUND", "0")  # restored after this test
    result = idp("serve", "--workers", "2", "--port", "19799")
    assert result.code != 0
    assert "IDP_PASSWORD_HASH_CONCURRENCY doit être un nombre entier de 1 à 256" in result.err


def test_serve_workers_passes_each_worker_its_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from idp.cli import serve

    launched: list[dict[str, str]] = []

    def execvpe(_file: str, _args: list[str], env: dict[str, str]) -> None:
        launched.append(env)

    monkeypatch.setattr("os.execvpe", execvpe)
    monkeypatch.delenv("IDP_PASSWORD_HASH_CONCURRENCY", raising=False)
    serve._exec_production("granian", "127.0.0.1", 5000, 4, "")
    assert launched[-1]["IDP_PASSWORD_HASH_CONCURRENCY"] == str(default_concurrency(4))
    monkeypatch.setenv("IDP_PASSWORD_HASH_CONCURRENCY", "3")  # the operator's choice stays
    serve._exec_production("granian", "127.0.0.1", 5000, 4, "")
    assert launched[-1]["IDP_PASSWORD_HASH_CONCURRENCY"] == "3"
