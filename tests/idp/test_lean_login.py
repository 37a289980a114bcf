"""The login's lean path (idp.auth.lean_login): the ordinary success answered in front of
Flask exactly as the route answers it; everything else answered by the route, a failed
attempt once only."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from idp.auth.throttle import account_key
from idp.stores.models import LoginThrottle
from rcd_store.models import AuditEvent, Declarant, DeclarantStatus
from rcd_store.passwords import PasswordService
from tests import factories
from tests.idp.login_support import csrf, error_of, login_email, login_siret, setup_directory

WRONG = "pas le bon mot de passe"


class Route:
    """Counts the login posts Flask answered (its route, or its CSRF check before it)."""

    def __init__(self, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        from flask import request

        self.calls = 0
        dispatch = app.full_dispatch_request

        def counted() -> Any:
            if request.method == "POST" and request.path == "/connexion":
                self.calls += 1
            return dispatch()

        monkeypatch.setattr(app, "full_dispatch_request", counted)


@pytest.fixture
def route(app: Any, monkeypatch: pytest.MonkeyPatch) -> Route:
    return Route(app, monkeypatch)


@pytest.fixture
def declarant(session: Any) -> Any:
    return setup_directory(session)


@pytest.fixture
def verifies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2id verification made (its password)."""
    seen: list[str] = []
    lock = threading.Lock()
    original = PasswordService.verify

    def counted(self: PasswordService, stored_hash: str, password: str) -> bool:
        with lock:
            seen.append(password)
        return original(self, stored_hash, password)

    monkeypatch.setattr(PasswordService, "verify", counted)
    return seen


def _route_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every login goes to the route, as before the lean path."""
    from idp.auth import lean_login

    monkeypatch.setattr(lean_login.LeanLogin, "_login", lambda *_args: None)


def _events(session: Any) -> list[tuple[str, str | None, str | None, dict[str, Any]]]:
    session.expire_all()
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    found = [(e.kind, e.actor, e.target, json.loads(e.data)) for e in rows]
    return [e for e in found if e[0] != "audit.segment_opened"]


def _failures(session: Any, key: str) -> int | None:
    """The count of a lockout counter in the database (None: absent, or in Redis)."""
    session.expire_all()
    row = session.get(LoginThrottle, key)
    return None if row is None else int(row.failures)


def _cookie_attributes(header: str) -> list[str]:
    name_value, _sep, attributes = header.partition(";")
    return [name_value.partition("=")[0], *sorted(a.strip() for a in attributes.split(";"))]


@pytest.mark.parametrize("next_url", [None, "/profil?onglet=1", "https://ailleurs.example/"])
def test_the_lean_answer_is_the_route_s(
    app: Any,
    session: Any,
    declarant: Any,
    route: Route,
    sso_sessions: Any,
    monkeypatch: pytest.MonkeyPatch,
    next_url: str | None,
) -> None:
    """Same status, headers, target, cookie (a fresh one each), session and audit event;
    the route is not called for the lean one."""
    extra = {} if next_url is None else {"next": next_url}
    before = len(_events(session))
    lean = login_siret(app.test_client(), **extra)
    assert route.calls == 0, "the ordinary login is answered in front of Flask"
    lean_events = _events(session)[before:]
    lean_sessions = sso_sessions()
    _route_only(monkeypatch)
    flask = login_siret(app.test_client(), **extra)
    assert route.calls == 1
    flask_events = _events(session)[before + len(lean_events) :]
    flask_sessions = sso_sessions()[len(lean_sessions) :]
    assert lean.status_code == flask.status_code == 303
    assert lean.get_data() == flask.get_data() == b""
    assert lean.headers["Location"] == flask.headers["Location"]
    assert lean.headers["Location"] == (
        "/profil?onglet=1" if next_url == "/profil?onglet=1" else "/tableau-de-bord"
    )

    def plain(answer: Any) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in answer.headers.items() if k != "Set-Cookie")

    assert plain(lean) == plain(flask)
    assert lean.headers["Cache-Control"] == flask.headers["Cache-Control"]
    assert "frame-ancestors 'none'" in lean.headers["Content-Security-Policy"]
    lean_cookie, flask_cookie = lean.headers["Set-Cookie"], flask.headers["Set-Cookie"]
    assert _cookie_attributes(lean_cookie) == _cookie_attributes(flask_cookie)
    assert lean_cookie != flask_cookie
    assert lean_events == flask_events
    assert [e[0] for e in lean_events] == ["login.succeeded"]
    assert len(lean_sessions) == len(flask_sessions) == 1
    for one in (lean_sessions[0], flask_sessions[0]):
        assert (one.declarant_id, one.acr, one.amr, one.origin, one.participants) == (
            declarant.id,
            flask_sessions[0].acr,
            ["pwd"],
            "password",
            [],
        )


def test_the_email_form_and_a_replaced_session_on_the_lean_path(
    app: Any, session: Any, declarant: Any, route: Route, sso_sessions: Any
) -> None:
    """The email form too; a browser's previous session ends at its new login, and the
    account's counters are reset in the same transaction as the session opens."""
    client = app.test_client()
    assert login_siret(client, password=WRONG).status_code == 200  # the route's answer
    assert route.calls == 1
    assert login_email(client).status_code == 303
    assert route.calls == 1
    first = sso_sessions()
    assert login_siret(client).status_code == 303
    assert route.calls == 1
    second = sso_sessions()
    assert len(first) == len(second) == 1 and first[0].id_hash != second[0].id_hash
    if app.extensions.get("idp.redis") is None:  # the lockout lives in the database
        assert _failures(session, account_key(declarant_id=declarant.id)) == 0


def _wrong_token(client: Any) -> Any:
    csrf(client)
    return client.post(
        "/connexion",
        data={
            "csrf_token": "faux",
            "siret": factories.SIRET_A,
            "nom": "Dupont",
            "prenom": "Élodie",
            "mot_de_passe": factories.PASSWORD,
        },
    )


def _unknown(client: Any) -> Any:
    return login_siret(client, siret=factories.SIRET_B)


def _wrong_password(client: Any) -> Any:
    return login_siret(client, password=WRONG)


def _query(client: Any) -> Any:
    token = csrf(client)
    data = {
        "csrf_token": token,
        "courriel": "elodie@dupont.example",
        "mot_de_passe": factories.PASSWORD,
    }
    return client.post("/connexion?lang=en", data=data)


def _extra_field(client: Any) -> Any:
    return login_siret(client, autre="1")


def _suspended(client: Any) -> Any:
    return login_siret(client)


def _second_factor(client: Any) -> Any:
    return login_siret(client)


#: (the request, what changes before it, the route's answer: status and what it shows)
FALLBACKS: list[tuple[Any, str, int, str]] = [
    (_wrong_token, "", 400, "Jeton anti-CSRF"),
    (_unknown, "", 200, "Identifiants incorrects"),
    (_wrong_password, "", 200, "Identifiants incorrects"),
    (_query, "", 303, ""),
    (_extra_field, "", 303, ""),
    (_suspended, "suspend", 200, "Identifiants incorrects"),
    (_second_factor, "totp", 200, 'name="attente"'),
]


@pytest.mark.parametrize(("send", "change", "status", "shown"), FALLBACKS)
def test_what_is_not_the_ordinary_success_is_answered_by_the_route(
    app: Any,
    session: Any,
    declarant: Any,
    route: Route,
    verifies: list[str],
    send: Any,
    change: str,
    status: int,
    shown: str,
) -> None:
    """A CSRF failure, an unknown identifier, a wrong password, a query string, another
    field, a suspended declarant, a second factor to ask: the route answers, as it did
    before the lean path, and the password is checked once at most."""
    if change == "suspend":
        session.get(Declarant, declarant.id).status = DeclarantStatus.LOCKED.value
    if change == "totp":
        session.get(Declarant, declarant.id).totp_secret = "scellé"
    session.commit()
    answer = send(app.test_client())
    assert route.calls == 1
    assert answer.status_code == status
    assert shown in answer.get_data(as_text=True)
    assert len(verifies) <= 1
    if status == 303:
        assert answer.headers["Location"] == "/tableau-de-bord"


def test_a_failed_attempt_is_counted_once_and_answered_by_the_route(
    app: Any, session: Any, declarant: Any, route: Route, verifies: list[str]
) -> None:
    """The lean path made the attempt (reserved, password checked): the route answers it
    from the attempt handed over, without checking the password again, and the audit
    says so once; the fifth failure locks the account, which the route answers (429)."""
    client = app.test_client()
    before = len(_events(session))
    for count in range(1, 6):
        answer = login_siret(client, password=WRONG)
        assert answer.status_code == 200 and route.calls == count
        assert "Identifiants incorrects" in (error_of(answer) or "")
        assert verifies == [WRONG] * count
        if app.extensions.get("idp.redis") is None:
            assert _failures(session, account_key(declarant_id=declarant.id)) == count
    failed = _events(session)[before:]
    assert [(e[0], e[1], e[3]["reason"]) for e in failed] == [
        ("login.failed", declarant.id, "password")
    ] * 5
    locked = login_siret(client)
    assert locked.status_code == 429 and route.calls == 6
    assert int(locked.headers["Retry-After"]) > 0
    assert verifies == [WRONG] * 5  # the locked attempt checks nothing
    assert _events(session)[before + 5 :][0][3]["reason"] == "locked"


def test_a_store_down_during_the_attempt_is_answered_by_the_app(
    app: Any, declarant: Any, route: Route, verifies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the attempt is under way the route never tries it again: a store that does
    not answer is the app's 503 (and what to do), the password checked once."""
    from idp.auth.throttle import Throttle

    def down(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("UPDATE", {}, Exception("base injoignable"))

    monkeypatch.setattr(Throttle, "succeeded", down)
    answer = login_siret(app.test_client())
    assert answer.status_code == 503
    assert route.calls == 0
    assert len(verifies) == 1
