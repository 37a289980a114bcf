"""The token endpoint's lean path (idp.oidc.lean_token): a plain machine token answered in
front of Flask with the same rules, headers and trace as the route; anything else, and
every refusal before the client's budget is charged, answered by the route itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder, run_wsgi_app

from idp.oidc.lean_token import LeanTokenEndpoint
from idp.stores import group_commit as group_commit_module
from idp.stores.models import IssuedToken
from rcd_store.models import AuditEvent
from tests.idp.oauth_a2a_support import (
    A2A,
    CNAV_API,
    URSSAF_API,
    claims_of,
    setup_a2a,
    verify,
)
from tests.idp.oauth_support import basic

MACHINE = {"grant_type": "client_credentials"}


@pytest.fixture
def world(app: Any, session: Any) -> A2A:
    return setup_a2a(app, session)


def lean_layer(app: Any) -> Any:
    layer = app.wsgi_app
    while not isinstance(layer, LeanTokenEndpoint):  # down the WSGI layers
        layer = getattr(layer, "app", None) or layer._wrapped
    return layer


@pytest.fixture
def route_calls(app: Any) -> list[int]:
    """Counts the requests handed to Flask (the lean path answers the rest)."""
    calls: list[int] = []
    layer = lean_layer(app)
    flask_app = layer._wrapped

    def counted(environ: Any, start_response: Any) -> Any:
        calls.append(1)
        return flask_app(environ, start_response)

    layer._wrapped = counted
    return calls


def post(
    app: Any, world: A2A, data: dict[str, Any], client_id: str = "urssaf-app", **kw: Any
) -> Any:
    headers = basic(client_id, world.secrets.get(client_id, "faux"))
    return app.test_client().post("/oauth/token", data=data, headers=headers, **kw)


def issued(session: Any) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(IssuedToken)) or 0)


def issued_events(session: Any) -> int:
    session.expire_all()
    query = select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "token.issued")
    return int(session.scalar(query) or 0)


def test_a_machine_token_is_answered_in_front_of_flask(
    app: Any, world: A2A, session: Any, route_calls: list[int]
) -> None:
    response = post(app, world, {**MACHINE, "resource": CNAV_API})
    assert response.status_code == 200, response.json
    assert route_calls == []  # the lean path answered
    claims = verify(app.test_client(), response.json["access_token"], CNAV_API).claims
    assert claims["sub"] == "urssaf-app" and claims["aud"] == CNAV_API
    assert claims["pagm"] == ["DSN_DECL"] and claims["acr"] == "urn:interops:acr:machine"
    assert response.json["token_type"] == "Bearer" and "_jti" not in response.json
    # its trace committed, its only record: no row until it is revoked
    assert issued(session) == 0 and issued_events(session) == 1
    event = session.scalars(select(AuditEvent).where(AuditEvent.kind == "token.issued")).one()
    assert claims["jti"] in event.data and event.actor == "urssaf-app"


def _both(app: Any, world: A2A) -> tuple[Any, Any]:
    """One request answered by the lean path, the same one by the route behind it."""
    layer = lean_layer(app)
    answers = []
    for wsgi in (app.wsgi_app, layer._wrapped):
        builder = EnvironBuilder(
            path="/oauth/token",
            method="POST",
            data={**MACHINE, "scope": "openid"},
            headers=basic("urssaf-app", world.secrets["urssaf-app"]),
            base_url="http://localhost",
        )
        with app.app_context():
            body, status, headers = run_wsgi_app(wsgi, builder.get_environ())
        answers.append((status, dict(headers), b"".join(body)))
    return answers[0], answers[1]


def test_the_lean_answer_is_the_routes(app: Any, world: A2A, route_calls: list[int]) -> None:
    import json

    lean, routed = _both(app, world)
    assert route_calls == [1]  # the second went through the route
    assert lean[0] == routed[0] == "200 OK"
    for headers in (lean[1], routed[1]):
        headers.pop("Content-Length")
    assert lean[1] == routed[1]
    assert lean[1]["Cache-Control"] == "no-store" and lean[1]["Pragma"] == "no-cache"
    assert lean[1]["X-Content-Type-Options"] == "nosniff"
    mine, theirs = json.loads(lean[2]), json.loads(routed[2])
    assert mine.keys() == theirs.keys() and mine["scope"] == theirs["scope"] == "openid"
    assert claims_of(mine["access_token"]).keys() == claims_of(theirs["access_token"]).keys()


@pytest.mark.parametrize(
    ("data", "client_id", "kw", "status", "error"),
    [
        (MACHINE, "cnav-app-inconnu", {}, 401, "invalid_client"),  # unknown client
        ({**MACHINE, "client_id": "urssaf-app"}, "urssaf-app", {}, None, None),  # extra field
        ({"grant_type": "authorization_code"}, "urssaf-app", {}, 400, None),  # another grant
        (MACHINE, "urssaf-app", {"query_string": "lang=en"}, 200, None),  # a query string
        (MACHINE, "urssaf-app", {"base_url": "http://idp.example"}, 400, "invalid_request"),
        ({**MACHINE, "resource": ["a", "b"]}, "urssaf-app", {}, 400, "invalid_target"),
    ],
)
def test_anything_else_goes_to_the_route(
    app: Any,
    world: A2A,
    route_calls: list[int],
    data: dict[str, Any],
    client_id: str,
    kw: dict[str, Any],
    status: int | None,
    error: str | None,
) -> None:
    response = post(app, world, data, client_id, **kw)
    assert route_calls == [1]
    if status is not None:
        assert response.status_code == status, response.json
    if error is not None:
        assert response.json["error"] == error


def test_a_wrong_secret_is_the_routes_and_counts_against_the_address(
    app: Any, world: A2A, session: Any, route_calls: list[int]
) -> None:
    app.config["CLIENT_AUTH_FAILURE_LIMIT"] = 2
    wrong = basic("urssaf-app", "pas-le-bon")
    for _ in range(2):
        response = app.test_client().post("/oauth/token", data=MACHINE, headers=wrong)
        assert response.status_code == 401 and response.json["error"] == "invalid_client"
    assert route_calls == [1, 1]
    held = post(app, world, MACHINE)  # the right secret, from the held address
    assert held.status_code == 429 and "Retry-After" in held.headers
    assert route_calls == [1, 1, 1] and issued(session) == 0


def test_a_client_without_the_grant_gets_the_routes_unauthorized_client(
    app: Any, session: Any, route_calls: list[int]
) -> None:
    from tests.idp.oauth_support import setup_world

    world = setup_world(app, session)  # a code-flow client only
    response = app.test_client().post(
        "/oauth/token", data=MACHINE, headers=basic(world.client_id, world.secret or "")
    )
    assert response.status_code == 400 and response.json["error"] == "unauthorized_client"
    assert route_calls == [1] and issued(session) == 0


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({**MACHINE, "scope": "rcd.admin"}, "invalid_scope"),  # not registered for the client
        ({**MACHINE, "resource": "https://inconnu.example/api"}, "invalid_target"),
    ],
)
def test_refusals_after_the_charge_are_worded_as_the_route_words_them(
    app: Any, world: A2A, session: Any, route_calls: list[int], data: dict[str, Any], error: str
) -> None:
    lean = post(app, world, data)
    assert route_calls == [] and lean.status_code == 400 and lean.json["error"] == error
    assert lean.headers["Cache-Control"] == "no-store" and lean.headers["Pragma"] == "no-cache"
    routed = post(app, world, {**data, "client_id": "urssaf-app"})  # the route's answer
    assert route_calls == [1] and routed.json == lean.json
    assert issued(session) == 0 and issued_events(session) == 0


def test_the_clients_budget_holds_on_the_lean_path(
    app: Any, world: A2A, session: Any, route_calls: list[int]
) -> None:
    app.config["TOKEN_RATE_LIMIT"] = 2
    assert [post(app, world, MACHINE).status_code for _ in range(2)] == [200, 200]
    refused = post(app, world, MACHINE)
    assert refused.status_code == 429 and refused.json["error"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) > 0
    assert route_calls == [] and issued_events(session) == 2


def test_no_token_leaves_when_its_trace_is_not_committed(
    app: Any, world: A2A, session: Any, route_calls: list[int], monkeypatch: Any
) -> None:
    from sqlalchemy.exc import OperationalError

    def fail(_session: Any) -> None:
        raise OperationalError("COMMIT", {}, Exception("disque plein"))

    fault: Callable[[Any], None] = fail
    monkeypatch.setattr(group_commit_module, "before_commit", fault)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = post(app, world, {**MACHINE, "resource": URSSAF_API})
    assert response.status_code == 503 and "access_token" not in response.get_data(as_text=True)
    assert route_calls == [] and issued(session) == 0 and issued_events(session) == 0


def test_a_store_down_is_a_503_after_one_wait_not_two(
    app: Any, world: A2A, route_calls: list[int], monkeypatch: Any
) -> None:
    """A store that does not answer during the read-only checks is answered by the app's
    own error handler (503, JSON), without the route waiting for the store again."""
    from sqlalchemy.exc import OperationalError

    from idp.oidc import registry

    asked: list[str] = []

    def down(client_id: str) -> Any:
        asked.append(client_id)
        raise OperationalError("SELECT", {}, Exception("délai dépassé"))

    monkeypatch.setattr(registry, "client", down)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = post(app, world, MACHINE)
    assert response.status_code == 503 and response.is_json
    assert asked == ["urssaf-app"] and route_calls == []  # one wait, no second try
