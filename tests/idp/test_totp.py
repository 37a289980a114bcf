"""Second factor: enrolment, login with a code, no replay, recovery codes, acr/amr."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from idp.auth import second_factor as totp
from idp.stores.models import OneTimeSecret
from rcd_store.models import Declarant
from tests.conftest import live_sso_sessions
from tests.idp.login_support import csrf, error_of, login_siret, post, setup_directory
from token_suite.vector import ACR_TOTP

PAGE = "/compte/double-authentification"


@pytest.fixture
def declarant(session: Any) -> Any:
    return setup_directory(session)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def _clear_of_step_end(margin: float = 5.0) -> None:
    """Wait for the next time step when this one ends within ``margin`` seconds.

    A code from one step back is accepted; were the step to turn between making
    that code and checking it (a slow run, once in CI on PostgreSQL), it would
    be two steps back and rightly refused.
    """
    left = 30 - time.time() % 30
    if left < margin:
        time.sleep(left + 0.1)


def _enrol(client: Any) -> tuple[str, list[str]]:
    """Log in, enrol, confirm with a code; returns the secret and the recovery codes."""
    assert login_siret(client).status_code == 303
    page = client.get(PAGE).get_data(as_text=True)
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', page).group(1)
    assert "otpauth://totp/" in page
    pending = re.search(r'name="attente" value="([^"]+)"', page).group(1)
    _clear_of_step_end()
    code = pyotp.TOTP(secret).at(datetime.now(UTC) - timedelta(seconds=30))  # one step back
    response = post(client, PAGE, {"attente": pending, "code": code}, token_from=PAGE)
    html = response.get_data(as_text=True)
    codes = re.findall(r"<li><code>([A-Z2-7-]+)</code></li>", html)
    assert response.status_code == 200 and len(codes) == 10
    return secret, codes


def _pending_token(response: Any) -> str:
    return re.search(r'name="attente" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def _code_step(client: Any, pending: str, code: str) -> Any:
    return post(client, "/connexion/code", {"attente": pending, "code": code, "next": "/x"})


def test_enrolment_needs_a_session(client: Any) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302 and response.headers["Location"].startswith(
        "/connexion?next="
    )


def test_enrol_then_login_asks_the_code(client: Any, session: Any, declarant: Any) -> None:
    secret, codes = _enrol(client)
    session.expire_all()
    stored_secret = session.get(Declarant, declarant.id).totp_secret
    assert secret not in stored_secret and stored_secret.startswith(totp.SEALED_PREFIX)
    with client.application.app_context():
        assert totp.open_secret(declarant.id, stored_secret) == secret
        with pytest.raises(totp.KeyDecryptionError):  # bound to its row
            totp.open_secret("Dautre", stored_secret)
        with pytest.raises(totp.KeyDecryptionError):
            totp.open_secret(declarant.id, secret)
    stored = list(
        session.scalars(
            select(OneTimeSecret.secret_hash).where(OneTimeSecret.purpose == "recovery")
        )
    )
    assert len(stored) == 10 and not set(codes) & set(stored)  # hashed only
    fresh = client.application.test_client()
    response = login_siret(fresh)
    assert response.status_code == 200 and 'name="code"' in response.get_data(as_text=True)
    assert fresh.get_cookie("idp_session") is None  # no session before the code
    done = _code_step(fresh, _pending_token(response), pyotp.TOTP(secret).now())
    assert done.status_code == 303 and done.headers["Location"] == "/x"
    cookie = fresh.get_cookie("idp_session").value
    row = next(r for r in live_sso_sessions(client.application) if r.amr == ["pwd", "otp"])
    assert row.acr == ACR_TOTP and cookie


def test_a_code_cannot_be_replayed(client: Any, declarant: Any) -> None:
    secret, _codes = _enrol(client)
    code = pyotp.TOTP(secret).now()
    first = client.application.test_client()
    assert _code_step(first, _pending_token(login_siret(first)), code).status_code == 303
    second = client.application.test_client()
    replay = _code_step(second, _pending_token(login_siret(second)), code)
    assert replay.status_code == 200 and error_of(replay).startswith("Code incorrect")
    assert second.get_cookie("idp_session") is None


def test_recovery_code_works_once(client: Any, declarant: Any) -> None:
    _secret, codes = _enrol(client)
    first = client.application.test_client()
    used = _code_step(first, _pending_token(login_siret(first)), codes[0].lower())
    assert used.status_code == 303
    second = client.application.test_client()
    again = _code_step(second, _pending_token(login_siret(second)), codes[0])
    assert again.status_code == 200 and error_of(again).startswith("Code incorrect")


def test_pending_token_is_single_use_and_needed(client: Any, declarant: Any) -> None:
    secret, _codes = _enrol(client)
    other = client.application.test_client()
    pending = _pending_token(login_siret(other))
    assert _code_step(other, "forged", pyotp.TOTP(secret).now()).status_code == 200
    assert other.get_cookie("idp_session") is None
    assert _code_step(other, pending, pyotp.TOTP(secret).now()).status_code == 303
    reuse = _code_step(client.application.test_client(), pending, "000000")
    assert "expiré" in error_of(reuse)


def test_wrong_codes_count_toward_the_lockout(client: Any, declarant: Any) -> None:
    _enrol(client)
    other = client.application.test_client()
    pending = _pending_token(login_siret(other))  # reservation 1 (password right, not reset)
    statuses = [_code_step(other, pending, "000000").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]


def test_wrong_enrolment_code_enrols_nothing(client: Any, session: Any, declarant: Any) -> None:
    login_siret(client)
    page = client.get(PAGE).get_data(as_text=True)
    pending = re.search(r'name="attente" value="([^"]+)"', page).group(1)
    response = post(client, PAGE, {"attente": pending, "code": "000000"}, token_from=PAGE)
    assert "Code incorrect" in error_of(response)
    tampered = post(client, PAGE, {"attente": pending + "x", "code": "000000"}, token_from=PAGE)
    assert tampered.status_code == 400
    session.expire_all()
    assert session.get(Declarant, declarant.id).totp_secret is None


def test_disable_with_a_code(client: Any, session: Any, declarant: Any) -> None:
    secret, _codes = _enrol(client)
    login = client.application.test_client()
    _code_step(login, _pending_token(login_siret(login)), pyotp.TOTP(secret).now())
    token = csrf(login, PAGE)
    response = login.post(
        PAGE, data={"csrf_token": token, "action": "desactiver", "code": _codes[1]}
    )
    assert "désactivée" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Declarant, declarant.id).totp_secret is None


def test_verify_totp_unit(session: Any, declarant: Any) -> None:
    secret = totp.new_secret()
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    code = pyotp.TOTP(secret).at(now)
    assert not totp.verify_totp(session, declarant.id, secret, "12345", now=now)
    assert totp.verify_totp(session, declarant.id, secret, code, now=now)
    assert not totp.verify_totp(
        session, declarant.id, secret, code, now=now + timedelta(seconds=20)
    )
    assert not totp.verify_totp(
        session, declarant.id, secret, pyotp.TOTP(secret).at(now), now=now + timedelta(minutes=5)
    )


def _from(app: Any, address: str) -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def test_second_factor_ignores_failures_from_other_addresses(app: Any, declarant: Any) -> None:
    """docs/architecture.md, "Sécurité par défaut": a login with a second factor ignores the
    per-account count of failures from other addresses; a declarant without one stays locked."""
    owner = app.test_client()
    secret, _ = _enrol(owner)
    attacker = _from(app, "192.0.2.66")
    statuses = [
        login_siret(attacker, password="mauvais mot de passe !").status_code for _ in range(6)
    ]
    assert statuses[-1] == 429  # the account is locked for the attacker's address
    legit = _from(app, "192.0.2.10")
    step = login_siret(legit)
    assert step.status_code == 200  # password accepted: the code is asked
    done = _code_step(legit, _pending_token(step), pyotp.TOTP(secret).now())
    assert done.status_code == 303
    # the attacker's address is still locked out of the account
    assert login_siret(attacker).status_code == 429


def test_without_second_factor_other_addresses_stay_locked(app: Any, declarant: Any) -> None:
    attacker = _from(app, "192.0.2.66")
    for _ in range(6):
        login_siret(attacker, password="mauvais mot de passe !")
    legit = _from(app, "192.0.2.10")
    assert login_siret(legit).status_code == 429
