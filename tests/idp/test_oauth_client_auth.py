"""Client authentication at the token, introspection and revocation endpoints (issue 13
items 7 and 15): no oracle, no enumeration, and a client's budget spent by it alone.

- A wrong secret and an unknown client get the very same answer, on every endpoint and
  with every authentication method (stops client id enumeration).
- Revoking another client's live token answers exactly as revoking an unknown string
  (RFC 7009 2.2) and leaves the token alive (stops a token oracle).
- A client's token budget is charged only once it has authenticated; failed
  authentications count against the source address (600 wrong secrets from elsewhere
  do not make the client's own next request 429).
"""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey

from tests.idp.oauth_a2a_support import (
    A2A,
    CLIENT_ASSERTION_TYPE,
    ISSUER,
    JWT_BEARER,
    client_assertion,
    setup_a2a,
    token_request,
)
from tests.idp.oauth_support import basic

ENDPOINTS = ("/oauth/token", "/oauth/introspect", "/oauth/revoke")
ATTACKER = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def world(app: Any, session: Any) -> A2A:
    return setup_a2a(app, session)


def machine_token(app: Any, world: A2A, client_id: str = "urssaf-app") -> str:
    response = token_request(
        app.test_client(), world, client_id, {"grant_type": "client_credentials"}
    )
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def answer(response: Any) -> tuple[int, Any, str | None]:
    """What a caller can tell apart: status, body and challenge."""
    return response.status_code, response.json, response.headers.get("WWW-Authenticate")


def _form(path: str) -> dict[str, str]:
    return {"grant_type": "client_credentials"} if path == "/oauth/token" else {"token": "x"}


def test_an_unknown_client_gets_the_wrong_secret_answer(app: Any, world: A2A) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "x", "alg": "ES256"})
    for path in ENDPOINTS:
        post = app.test_client().post
        form = _form(path)
        by_basic = [
            post(path, data=form, headers=basic(client_id, "mauvais"))
            for client_id in ("urssaf-app", "client-inconnu")
        ]
        by_post = [
            post(path, data={**form, "client_id": client_id, "client_secret": "mauvais"})
            for client_id in ("urssaf-app", "client-inconnu")
        ]
        by_assertion = [
            post(
                path,
                data={
                    **form,
                    "client_assertion_type": CLIENT_ASSERTION_TYPE,
                    "client_assertion": client_assertion(
                        stranger, client_id, jti=f"{path}-{client_id}", aud=ISSUER
                    ),
                },
            )
            for client_id in ("urssaf-batch", "client-inconnu")
        ]
        for known, unknown in (by_basic, by_post, by_assertion):
            assert answer(known) == answer(unknown), path
            assert known.status_code == 401 and known.json["error"] == "invalid_client"
        assert answer(by_basic[0]) == answer(by_post[0]) == answer(by_assertion[0])
    # a public client's id alone, at the code grant
    code_grant = [
        app.test_client().post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": "c", "client_id": client_id},
        )
        for client_id in ("urssaf-app", "client-inconnu")
    ]
    assert answer(code_grant[0]) == answer(code_grant[1])


def test_jwt_bearer_answers_alike_for_an_unknown_issuer(app: Any, world: A2A) -> None:
    stranger = ECKey.generate_key("P-256", parameters={"kid": "x", "alg": "ES256"})
    answers = [
        answer(
            app.test_client().post(
                "/oauth/token",
                data={
                    "grant_type": JWT_BEARER,
                    "assertion": client_assertion(
                        stranger, client_id, jti=f"b-{client_id}", sub=world.declarant_id
                    ),
                },
            )
        )
        for client_id in ("urssaf-batch", "client-inconnu")
    ]
    assert answers[0] == answers[1] and answers[0][0] == 400


def test_revoking_another_clients_token_answers_like_an_unknown_string(
    app: Any, world: A2A
) -> None:
    token = machine_token(app, world)

    def revoke(value: str) -> Any:
        return app.test_client().post(
            "/oauth/revoke",
            data={"token": value},
            headers=basic("cnav-app", world.secrets["cnav-app"]),
        )

    others = revoke(token)
    unknown = revoke("jeton-inconnu")
    assert answer(others) == answer(unknown) and others.status_code == 200
    assert others.get_data() == unknown.get_data()
    alive = app.test_client().post(
        "/oauth/introspect",
        data={"token": token},
        headers=basic("urssaf-app", world.secrets["urssaf-app"]),
    )
    assert alive.json["active"] is True


def test_failed_authentications_do_not_spend_the_clients_budget(app: Any, world: A2A) -> None:
    """The review's case, with the default limits: 600 wrong-secret requests naming B."""
    guesser = app.test_client()
    answers = {
        guesser.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic("urssaf-app", f"devine-{n}"),
            environ_base=ATTACKER,
        ).status_code
        for n in range(600)
    }
    machine_token(app, world)  # B, from its own address: its budget is whole
    assert answers == {401, 429}  # refused, then the guessing address is held off


def test_failed_authentications_are_counted_per_address(app: Any, world: A2A) -> None:
    app.config["CLIENT_AUTH_FAILURE_LIMIT"] = 3
    guesser = app.test_client()

    def guess(secret: str, path: str = "/oauth/token") -> Any:
        return guesser.post(
            path, data=_form(path), headers=basic("urssaf-app", secret), environ_base=ATTACKER
        )

    assert [guess("a").status_code, guess("b", "/oauth/introspect").status_code] == [401, 401]
    assert guess("c", "/oauth/revoke").status_code == 401
    held = guess(world.secrets["urssaf-app"])  # even the right secret, from this address
    assert held.status_code == 429 and held.json["error"] == "too_many_requests"
    assert 1 <= int(held.headers["Retry-After"]) <= 60
    assert guess("d", "/oauth/introspect").status_code == 429
    machine_token(app, world)  # another address is not held


def test_the_budget_is_the_authenticated_clients(app: Any, world: A2A) -> None:
    app.config["TOKEN_RATE_LIMIT"] = 2
    for _ in range(2):
        machine_token(app, world)
    spent = token_request(
        app.test_client(), world, "urssaf-app", {"grant_type": "client_credentials"}
    )
    assert spent.status_code == 429 and "Retry-After" in spent.headers
    # a wrong secret naming the spent client is an authentication failure, not a 429
    wrong = app.test_client().post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic("urssaf-app", "x")
    )
    assert wrong.status_code == 401
    machine_token(app, world, "cnav-app")
