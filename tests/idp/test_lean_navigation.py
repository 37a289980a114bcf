"""SSO navigation's lean path (idp.portal.lean_navigation): the ordinary success answered
in front of Flask exactly as the route answers it; everything else answered by the route."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from rcd_store import services
from rcd_store.models import AuditEvent, Declarant, DeclarantStatus
from tests import factories as f
from tests.idp.portal_support import csrf_of, hidden_fields, log_in, saml_partner, saml_response_of
from token_suite import Trust, saml
from token_suite.replay import InMemoryReplayCache

SP = "https://urssaf.example/sp"
ACS = "https://urssaf.example/acs"


@pytest.fixture(autouse=True)
def _keys(app: Any) -> None:
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)


class Route:
    """Counts the navigations Flask answered (its route, or its CSRF check before it):
    the lean path answers in front of Flask."""

    def __init__(self, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        from flask import request

        self.calls = 0
        dispatch = app.full_dispatch_request

        def counted() -> Any:
            if request.path.startswith("/navigation/"):
                self.calls += 1
            return dispatch()

        monkeypatch.setattr(app, "full_dispatch_request", counted)


@pytest.fixture
def route(app: Any, monkeypatch: pytest.MonkeyPatch) -> Route:
    return Route(app, monkeypatch)


def _world(app: Any, session: Any) -> tuple[Any, Any, str]:
    f.company(session, f.SIRET_A, "Boulangerie Dupont")
    f.service(session, "DSN", "URSSAF", {"DECLARANT": "DSN_DECL"})
    f.service(session, "NET", "URSSAF", {"DECLARANT": "NET_DECL"})
    person = f.declarant(session)
    for code in ("DSN", "NET"):
        services.grant_habilitation(
            session, declarant_id=person.id, siret=f.SIRET_A, service_code=code
        )
    saml_partner(session, "URSSAF", ["DSN", "NET"], entity_id=SP, acs=ACS)
    session.commit()
    client = app.test_client()
    log_in(app, client, person.id)
    token = csrf_of(client.get("/tableau-de-bord").get_data(as_text=True))
    return person, client, token


def _post(client: Any, token: str, path: str = "/navigation/DSN", **fields: str) -> Any:
    return client.post(path, data={"csrf_token": token, **fields})


def _warm(client: Any, token: str, route: Route) -> None:
    """A first navigation: the route answers it (the partner joins the session's
    participants, the page is rendered ahead); the next one is the lean path's."""
    assert _post(client, token).status_code == 200 and route.calls == 1
    assert _post(client, token).status_code == 200 and route.calls == 1


def _read(client: Any, answer: Any) -> tuple[Any, str]:
    html = answer.get_data(as_text=True)
    trust = Trust.from_metadata(client.get("/saml/metadata").data)
    document = saml_response_of(html)
    vector = saml.verify(document, trust=trust, audience=SP, replay=InMemoryReplayCache())
    return vector, html.replace(dict(hidden_fields(html))["SAMLResponse"], "<token>")


def _events(session: Any) -> list[tuple[str, str | None, str | None, list[str]]]:
    session.expire_all()
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    return [(e.kind, e.actor, e.target, sorted(json.loads(e.data))) for e in rows]


def test_the_lean_answer_is_the_route_s(
    app: Any, session: Any, route: Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same status, headers, page, verified jeton (a fresh one each) and audit events."""
    from idp.portal import lean_navigation

    _person, client, token = _world(app, session)
    _warm(client, token, route)
    before = len(_events(session))
    lean = _post(client, token)
    assert route.calls == 1
    lean_events = _events(session)[before:]
    monkeypatch.setattr(lean_navigation.LeanNavigation, "_page", lambda *_args: None)
    flask = _post(client, token)
    assert route.calls == 2
    flask_events = _events(session)[before + len(lean_events) :]
    assert lean.status_code == flask.status_code == 200
    assert sorted(lean.headers.items()) == sorted(flask.headers.items())
    assert lean.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in lean.headers["Content-Security-Policy"]
    (lean_vector, lean_page), (flask_vector, flask_page) = (
        _read(client, lean),
        _read(client, flask),
    )
    assert lean_vector.pagm == flask_vector.pagm == ("DSN_DECL",)
    assert lean_vector.habilitations == flask_vector.habilitations
    assert lean_vector.subject == flask_vector.subject
    assert lean_page == flask_page and f'action="{ACS}"' in lean_page
    assert saml_response_of(lean.get_data(as_text=True)) != saml_response_of(
        flask.get_data(as_text=True)
    )
    assert [e[0] for e in lean_events] == ["token.issued", "portal.navigation"]
    assert lean_events == flask_events


def test_the_session_and_the_rule_are_read_in_one_statement(
    app: Any, session: Any, route: Route
) -> None:
    """Issue 18: one statement reads the session (when it lives in the database) and the
    rule, fresh, on the navigation's one service; Redis holds the session otherwise, and
    the rule is then the one statement. On PostgreSQL, one statement needs no
    transaction: it runs in autocommit (no BEGIN and ROLLBACK round trips around it)."""
    from sqlalchemy import event

    from idp.stores.db import database

    _person, client, token = _world(app, session)
    _warm(client, token, route)
    reads: list[str] = []
    isolation: list[str | None] = []

    def seen(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and (
            "sso_session" in statement or "habilitation" in statement
        ):
            reads.append(statement)
            isolation.append(conn.get_execution_options().get("isolation_level"))

    engine = database(app).engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert _post(client, token).status_code == 200 and route.calls == 1
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(reads) == 1
    assert "habilitation.service_id =" in reads[0]  # one service, no expanding list
    assert ("sso_session" in reads[0]) == (app.extensions.get("idp.redis") is None)
    assert isolation == ["AUTOCOMMIT" if engine.dialect.name == "postgresql" else None]


def test_the_lean_page_follows_the_language_cookie(app: Any, session: Any, route: Route) -> None:
    _person, client, token = _world(app, session)
    _warm(client, token, route)
    client.get("/tableau-de-bord?lang=en")  # the choice remembered in a cookie
    english = _post(client, token)  # the English page is not rendered yet: the route
    assert route.calls == 2 and "Continue to URSSAF" in english.get_data(as_text=True)
    again = _post(client, token)
    assert route.calls == 2 and "Continue to URSSAF" in again.get_data(as_text=True)


def _suspend(session: Any, person: Any) -> None:
    session.get(Declarant, person.id).status = DeclarantStatus.LOCKED.value
    session.commit()


def _revoke(session: Any, person: Any) -> None:
    services.revoke_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
    )
    session.commit()


def _aged(app: Any, minutes: int) -> None:
    """Every session last seen ``minutes`` ago (in whichever store holds them)."""
    from idp.sessions.store import store
    from idp.stores import db

    with app.app_context():
        sessions = store()
        for record in sessions.records():
            record.last_seen_at = datetime.now(UTC) - timedelta(minutes=minutes)
            sessions.save(record)
        db.session().commit()


def _nothing(session: Any, person: Any) -> None:
    return None


#: (what changes, the request, the route's answer): each handed to the Flask route
REFUSALS: list[tuple[Callable[[Any, Any], None], dict[str, Any], int]] = [
    (_suspend, {}, 302),
    (_revoke, {}, 403),
    (_nothing, {"path": "/navigation/INCONNU"}, 404),
    (_nothing, {"path": "/navigation/DSN?lang=en"}, 200),
    (_nothing, {"partner": "AUTRE"}, 404),
    (_nothing, {"token": "faux"}, 400),
    (_nothing, {"cookie": None}, 302),
    (_nothing, {"extra": "1"}, 200),
]


@pytest.mark.parametrize(("change", "request_", "status"), REFUSALS)
def test_what_is_not_the_ordinary_success_goes_to_the_route(
    app: Any,
    session: Any,
    route: Route,
    change: Callable[[Any, Any], None],
    request_: dict[str, Any],
    status: int,
) -> None:
    """A declarant suspended or a right withdrawn since the last navigation (never
    cached), an unknown service or partner, a query string, a wrong CSRF token, no
    session, an unexpected field: the route answers, as it did before."""
    from idp.sessions.sso import COOKIE

    person, client, token = _world(app, session)
    _warm(client, token, route)
    change(session, person)
    if "cookie" in request_:
        client.delete_cookie(COOKIE)
    fields = {k: v for k, v in request_.items() if k in ("partner", "extra")}
    answer = _post(
        client, request_.get("token", token), request_.get("path", "/navigation/DSN"), **fields
    )
    assert route.calls == 2
    assert answer.status_code == status
    assert ("SAMLResponse" in answer.get_data(as_text=True)) == (status == 200)


@pytest.mark.parametrize("minutes", [120, 5])
def test_a_session_idle_or_to_touch_goes_to_the_route(
    app: Any, session: Any, route: Route, minutes: int
) -> None:
    """Idle past its timeout: the route deletes it (login page); not seen for a
    minute: the route touches it (and answers the navigation)."""
    _person, client, token = _world(app, session)
    _warm(client, token, route)
    _aged(app, minutes)
    answer = _post(client, token)
    assert route.calls == 2
    assert answer.status_code == (302 if minutes > 30 else 200)
    if minutes <= 30:  # touched by the route: the next one is the lean path's again
        assert _post(client, token).status_code == 200 and route.calls == 2


def test_a_first_navigation_to_a_partner_goes_to_the_route(
    app: Any, session: Any, route: Route
) -> None:
    """The partner joins the session's participants (Single Logout) on the route, and a
    destination's page is rendered ahead there; then the lean path answers."""
    person, client, token = _world(app, session)
    _warm(client, token, route)
    assert _post(client, token, "/navigation/NET").status_code == 200 and route.calls == 2
    assert _post(client, token, "/navigation/NET").status_code == 200 and route.calls == 2
    other = app.test_client()  # another browser: a session without participants
    log_in(app, other, person.id)
    other_token = csrf_of(other.get("/tableau-de-bord").get_data(as_text=True))
    assert _post(other, other_token).status_code == 200 and route.calls == 3
    assert _post(other, other_token).status_code == 200 and route.calls == 3


def test_a_store_down_is_a_503_after_one_wait_not_two(
    app: Any, session: Any, route: Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's error handler answers 503 (and what to do), as for any page whose store
    is down, in front of the route: the request does not wait for the store again."""
    from idp.portal.lean_navigation import SessionAndRule

    _person, client, token = _world(app, session)
    _warm(client, token, route)
    calls = route.calls
    asked: list[int] = []

    def down(*_args: Any, **_kwargs: Any) -> Any:
        asked.append(1)
        raise OperationalError("SELECT", {}, Exception("base injoignable"))

    monkeypatch.setattr(SessionAndRule, "get", down)  # the session, and the rule with it
    monkeypatch.setattr(SessionAndRule, "rule", down)  # (or after it, from Redis)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    answer = _post(client, token)
    assert answer.status_code == 503 and "Retry-After" in answer.headers
    assert route.calls == calls and asked == [1]


def test_a_token_without_a_session_must_be_grouped(app: Any) -> None:
    """The lean path holds no ORM session: its token's trace goes to the group commit;
    an ungrouped token has nowhere to be audited without one."""
    from idp.tokens.issuing import token_service
    from token_suite.vector import IdentityVector

    vector = IdentityVector(subject="D1", siret=None, family_name="A", given_name="B")
    with app.app_context(), pytest.raises(TypeError):
        token_service().issue(None, vector, fmt="saml", audience="https://urssaf.example/sp")


def test_a_jwt_partner_gets_its_token_from_the_lean_path_too(
    app: Any, session: Any, route: Route
) -> None:
    """An Interops-R partner: the page rendered ahead for the ``jeton`` field."""
    from tests.idp.portal_support import jwt_partner
    from token_suite import jwt as interops_jwt

    person, client, token = _world(app, session)
    f.service(session, "ATMP", "Paie", {"DECLARANT": "ATMP_GESTION"})
    services.grant_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="ATMP"
    )
    audience = jwt_partner(session, "Paie", ["ATMP"], landing_url="https://paie.example/arrivee")
    for calls in (1, 1):
        html = _post(client, token, "/navigation/ATMP").get_data(as_text=True)
        assert route.calls == calls
    trust = Trust.from_jwks(
        client.get("/.well-known/jwks.json").get_json(), issuer="http://idp.test"
    )
    vector = interops_jwt.verify(
        dict(hidden_fields(html))["jeton"],
        trust=trust,
        audience=audience,
        replay=InMemoryReplayCache(),
    )
    assert vector.pagm == ("ATMP_GESTION",)
