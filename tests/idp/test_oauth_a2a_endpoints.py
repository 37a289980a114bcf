"""Introspection (RFC 7662), revocation (RFC 7009), discovery of both, and the token
endpoint's per-client rate limit (database and Redis counters)."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from idp.stores.models import IssuedToken
from tests.idp.oauth_a2a_support import (
    A2A,
    CLIENT_ASSERTION_TYPE,
    CNAV_API,
    EXCHANGE,
    ISSUER,
    JWT_BEARER,
    URSSAF_API,
    claims_of,
    client_assertion,
    code_flow_tokens,
    header_of,
    setup_a2a,
    token_request,
)
from tests.idp.oauth_support import basic


@pytest.fixture
def world(app: Any, session: Any) -> A2A:
    return setup_a2a(app, session)


def machine_token(app: Any, world: A2A, client_id: str = "urssaf-app", **data: str) -> str:
    response = token_request(
        app.test_client(), world, client_id, {"grant_type": "client_credentials", **data}
    )
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def introspect(app: Any, world: A2A, token: str, client_id: str = "urssaf-app") -> Any:
    return app.test_client().post(
        "/oauth/introspect",
        data={"token": token},
        headers=basic(client_id, world.secrets[client_id]),
    )


def revoke(app: Any, world: A2A, token: str, client_id: str = "urssaf-app", **extra: str) -> Any:
    return app.test_client().post(
        "/oauth/revoke",
        data={"token": token, **extra},
        headers=basic(client_id, world.secrets[client_id]),
    )


def test_discovery_lists_the_endpoints_and_grants(app: Any, world: A2A) -> None:
    doc = app.test_client().get("/.well-known/openid-configuration").json
    assert doc["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
    assert doc["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
    assert "private_key_jwt" in doc["introspection_endpoint_auth_methods_supported"]
    assert "none" not in doc["revocation_endpoint_auth_methods_supported"]
    assert {"client_credentials", "refresh_token", EXCHANGE, JWT_BEARER} <= set(
        doc["grant_types_supported"]
    )


def test_introspection_of_an_active_token(app: Any, world: A2A) -> None:
    token = machine_token(app, world)
    response = introspect(app, world, token)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    body = response.json
    assert body["active"] is True and body["sub"] == "urssaf-app"
    assert body["client_id"] == "urssaf-app" and body["aud"] == URSSAF_API
    assert body["iss"] == ISSUER and body["exp"] > body["iat"]


def test_the_audience_may_introspect_others_may_not(app: Any, world: A2A) -> None:
    for_cnav = machine_token(app, world, resource=CNAV_API)
    assert introspect(app, world, for_cnav, "cnav-app").json["active"] is True
    own = machine_token(app, world)
    assert introspect(app, world, own, "cnav-app").json == {"active": False}


def _machine_token_at(app: Any, when: datetime) -> str:
    """A machine token of ``urssaf-app`` issued at ``when`` (its trace committed)."""
    from idp.tokens.issuing import MACHINE_ACR, token_service
    from token_suite.vector import IdentityVector

    vector = IdentityVector(subject="urssaf-app", acr=MACHINE_ACR, pagm=("DSN_DECL",))
    with app.app_context():
        token, _record = token_service().issue_grouped_access(
            vector, client_id="urssaf-app", scope="", audience=URSSAF_API, now=when
        )
    return token


def test_revoked_expired_and_unknown_tokens_are_inactive(
    app: Any, world: A2A, session: Any
) -> None:
    revoked = machine_token(app, world)
    assert session.scalars(select(IssuedToken)).first() is None  # its trace is its record
    assert revoke(app, world, revoked).status_code == 200
    assert introspect(app, world, revoked).json == {"active": False}
    row = session.scalars(select(IssuedToken)).one()  # the revocation list's row
    assert row.revoked_at is not None and row.client_id == "urssaf-app"
    assert revoke(app, world, revoked).status_code == 200  # again: nothing more
    expired = _machine_token_at(app, datetime(2000, 1, 1, tzinfo=UTC))
    assert introspect(app, world, expired).json == {"active": False}
    assert introspect(app, world, "inconnu").json == {"active": False}


def test_a_machine_token_not_signed_by_us_is_inactive(app: Any, world: A2A) -> None:
    """A token shaped as a machine token but signed by another key is no record."""
    from joserfc import jwt
    from joserfc.jwk import ECKey

    real = machine_token(app, world)
    forged_claims = {**claims_of(real), "sub": "urssaf-app", "scope": ""}
    key = ECKey.generate_key("P-256", parameters={"kid": header_of(real)["kid"]})
    forged = jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, forged_claims, key)
    assert introspect(app, world, forged).json == {"active": False}
    assert introspect(app, world, real).json["active"] is True
    assert revoke(app, world, forged).status_code == 200  # answered as an unknown token
    assert introspect(app, world, real).json["active"] is True


def test_introspection_and_revocation_need_client_authentication(app: Any, world: A2A) -> None:
    token = machine_token(app, world)
    for path in ("/oauth/introspect", "/oauth/revoke"):
        anonymous = app.test_client().post(path, data={"token": token})
        assert anonymous.status_code == 401 and anonymous.json["error"] == "invalid_client"
        wrong = app.test_client().post(
            path, data={"token": token}, headers=basic("urssaf-app", "mauvais")
        )
        assert wrong.status_code == 401
    assert introspect(app, world, token).json["active"] is True


def test_introspection_with_private_key_jwt(app: Any, world: A2A) -> None:
    token = machine_token(app, world, "urssaf-batch")
    signed = client_assertion(world.keys["urssaf-batch"], "urssaf-batch", jti="intro-1", aud=ISSUER)
    response = app.test_client().post(
        "/oauth/introspect",
        data={
            "token": token,
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": signed,
        },
    )
    assert response.status_code == 200 and response.json["active"] is True


def test_a_client_revokes_only_its_own_tokens(app: Any, world: A2A) -> None:
    token = machine_token(app, world)
    other = revoke(app, world, token, "cnav-app")
    assert other.status_code == 200  # as for an unknown token: no oracle (RFC 7009 2.2)
    assert introspect(app, world, token).json["active"] is True
    assert revoke(app, world, "inconnu").status_code == 200  # RFC 7009 2.2


def test_revoking_a_refresh_token_revokes_its_family(app: Any, world: A2A) -> None:
    tokens = code_flow_tokens(app, world)
    assert introspect(app, world, tokens["refresh_token"]).json["active"] is True
    assert (
        revoke(app, world, tokens["refresh_token"], token_type_hint="refresh_token").status_code
        == 200
    )
    assert introspect(app, world, tokens["access_token"]).json == {"active": False}
    again = token_request(
        app.test_client(),
        world,
        "urssaf-app",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert again.json["error"] == "invalid_grant"
    userinfo = app.test_client().get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401


def test_rotated_refresh_token_is_inactive(app: Any, world: A2A) -> None:
    tokens = code_flow_tokens(app, world)
    token_request(
        app.test_client(),
        world,
        "urssaf-app",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert introspect(app, world, tokens["refresh_token"]).json == {"active": False}


# -------------------------------------------------------------------- rate limit


@pytest.fixture(params=["database", "redis"])
def limited(request: pytest.FixtureRequest, app: Any) -> str:
    """A limit of 3 token requests per minute, counted in the database or in Redis."""
    from idp.auth.throttle import throttle

    app.config["TOKEN_RATE_LIMIT"] = 3
    if request.param == "redis":
        from tests.conftest import REDIS_URL

        if not REDIS_URL:
            pytest.skip("IDP_TEST_REDIS_URL not set")
        import redis

        from idp.auth.throttle import RedisBackend

        backend = RedisBackend(
            redis.Redis.from_url(REDIS_URL), prefix=f"test:{secrets.token_hex(8)}:"
        )
        app.extensions["idp.throttle"] = replace(throttle(app), backend=backend)
    return str(request.param)


def test_token_endpoint_rate_limit_per_client(app: Any, world: A2A, limited: str) -> None:
    for _ in range(3):
        machine_token(app, world)
    refused = token_request(
        app.test_client(), world, "urssaf-app", {"grant_type": "client_credentials"}
    )
    assert refused.status_code == 429
    assert refused.json["error"] == "too_many_requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["Content-Type"].startswith("application/json")
    # a wrong secret under the same client id spends nothing of it: refused as such
    guessed = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic("urssaf-app", "devine"),
    )
    assert guessed.status_code == 401 and guessed.json["error"] == "invalid_client"
    # other clients keep their own budget, whatever their authentication method
    machine_token(app, world, "cnav-app")
    machine_token(app, world, "urssaf-batch")


def test_rate_limit_zero_disables_it(app: Any, world: A2A) -> None:
    app.config["TOKEN_RATE_LIMIT"] = 0
    for _ in range(5):
        machine_token(app, world)
