"""Issue 13 items 3 and 12: second-factor codes have a failure budget per pending login and
per account, whatever the source address and however many arrive at once; disabling the
second factor is under the same budget."""

from __future__ import annotations

import threading
from typing import Any

import pyotp
import pytest

from idp.auth import second_factor as totp
from tests.idp.login_support import csrf, error_of, login_siret, setup_directory
from tests.idp.test_totp import PAGE, _code_step, _enrol, _from, _pending_token

WRONG = "000000"
EXPIRED = "expiré"


@pytest.fixture(params=["configured", "database"])
def app_config(request: pytest.FixtureRequest, app_config: dict[str, Any]) -> dict[str, Any]:
    """Each test on the configured stores (Redis when ``IDP_TEST_REDIS_URL`` is set) and,
    with Redis configured, once more with the counters in the database."""
    if request.param == "configured":
        return app_config
    if not app_config.get("REDIS_URL"):
        pytest.skip("no Redis configured: the database run is the configured one")
    return {**app_config, "REDIS_URL": None}


@pytest.fixture
def secret(app: Any, session: Any) -> str:
    setup_directory(session)
    found, _codes = _enrol(app.test_client())
    return found


def _pending_from(app: Any, address: str) -> str:
    """Right password from ``address``: the pending login's token."""
    step = login_siret(_from(app, address))
    assert step.status_code == 200, error_of(step)
    return _pending_token(step)


def _count_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    lock = threading.Lock()
    original = totp.check_second_factor

    def counting(*args: Any, **kwargs: Any) -> bool:
        with lock:
            calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(totp, "check_second_factor", counting)
    return calls


def test_backend_is_the_one_configured(app: Any, app_config: dict[str, Any]) -> None:
    from idp.auth.throttle import throttle

    expected = "RedisBackend" if app_config.get("REDIS_URL") else "SqlBackend"
    assert type(throttle(app).backend).__name__ == expected


def test_a_pending_login_ends_after_five_wrong_codes_from_any_addresses(
    app: Any, secret: str
) -> None:
    pending = _pending_from(app, "192.0.2.1")
    for i in range(5):
        wrong = _code_step(_from(app, f"198.51.100.{i + 1}"), pending, WRONG)
        assert wrong.status_code == 200 and error_of(wrong).startswith("Code incorrect"), i
    late = _from(app, "203.0.113.50")
    right = _code_step(late, pending, pyotp.TOTP(secret).now())
    assert right.status_code == 200 and EXPIRED in error_of(right)
    assert late.get_cookie("idp_session") is None


def test_the_account_has_a_code_budget_across_pending_logins_and_addresses(
    app: Any, secret: str
) -> None:
    for i in range(5):  # five wrong codes, each on a new pending login from a new address
        pending = _pending_from(app, f"192.0.2.{i + 10}")
        wrong = _code_step(_from(app, f"198.51.100.{i + 10}"), pending, WRONG)
        assert wrong.status_code == 200 and error_of(wrong).startswith("Code incorrect"), i
    pending = _pending_from(app, "192.0.2.99")
    blocked = _code_step(_from(app, "198.51.100.99"), pending, pyotp.TOTP(secret).now())
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers


def test_concurrent_wrong_codes_on_one_pending_login_check_at_most_five(
    app: Any, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pending = _pending_from(app, "192.0.2.1")
    calls = _count_checks(monkeypatch)
    clients = [_from(app, f"198.51.100.{i + 1}") for i in range(20)]
    tokens = [csrf(c) for c in clients]
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def attempt(index: int) -> None:
        barrier.wait()
        response = clients[index].post(
            "/connexion/code",
            data={"csrf_token": tokens[index], "attente": pending, "code": WRONG},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == len(clients)
    assert len(calls) <= 5, f"{len(calls)} codes checked for a budget of 5"
    late = _code_step(_from(app, "203.0.113.50"), pending, pyotp.TOTP(secret).now())
    assert EXPIRED in error_of(late)


def _disable(client: Any, code: str) -> Any:
    return client.post(
        PAGE, data={"csrf_token": csrf(client, PAGE), "action": "desactiver", "code": code}
    )


def test_disabling_the_second_factor_has_the_same_budget(app: Any, secret: str) -> None:
    """Issue 13 item 12: 60 wrong codes in 0.3 s were all checked."""
    owner = app.test_client()
    done = _code_step(owner, _pending_token(login_siret(owner)), pyotp.TOTP(secret).now())
    assert done.status_code == 303
    statuses = [_disable(owner, WRONG).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    refused = _disable(owner, pyotp.TOTP(secret).now())
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert "active" in refused.get_data(as_text=True)  # still enrolled
