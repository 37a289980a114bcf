"""Application-to-application grants: client credentials (RFC 8707 audiences), refresh
rotation with reuse detection, token exchange (RFC 8693) and JWT bearer (RFC 7523)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from idp.stores.models import IssuedToken
from tests.idp.oauth_a2a_support import (
    A2A,
    ACCESS_TOKEN_TYPE,
    AGIRC_API,
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
    verify,
)
from tests.idp.oauth_support import basic, setup_world

MACHINE_ACR = "urn:interops:acr:machine"
ASSERTED_ACR = "urn:interops:acr:partner-assertion"


@pytest.fixture
def world(app: Any, session: Any) -> A2A:
    return setup_a2a(app, session)


def credentials(app: Any, world: A2A, client_id: str = "urssaf-app", **data: Any) -> Any:
    return token_request(
        app.test_client(), world, client_id, {"grant_type": "client_credentials", **data}
    )


# ------------------------------------------------------------- client credentials


@pytest.mark.parametrize("client_id", ["urssaf-app", "urssaf-batch"])
def test_client_credentials_machine_token(app: Any, world: A2A, client_id: str) -> None:
    response = credentials(app, world, client_id)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["token_type"] == "Bearer" and "refresh_token" not in body
    assert 0 < body["expires_in"] <= 900
    token = body["access_token"]
    assert header_of(token)["typ"] == "at+jwt" and header_of(token)["alg"] == "ES256"
    vector = verify(app.test_client(), token, URSSAF_API)
    claims = vector.claims
    assert claims["sub"] == client_id and claims["client_id"] == client_id
    assert claims["aud"] == URSSAF_API and claims["iss"] == ISSUER
    assert claims["exp"] - claims["iat"] <= 900
    assert claims["pagm"] == ["DSN_DECL", "PASRAU_DECL"]  # the agreement's services
    assert "habilitations" not in claims and "siret" not in claims
    assert claims["acr"] == MACHINE_ACR and claims["amr"] == []
    assert "auth_time" not in claims and "given_name" not in claims


def test_no_scope_no_resource_gets_the_operator_api_by_default(app: Any, session: Any) -> None:
    world = setup_world(app, session, extra_grants=("client_credentials",))

    response = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(world.client_id, world.secret or ""),
    )
    assert response.status_code == 200, response.json
    assert claims_of(response.json["access_token"])["aud"] == f"{ISSUER}/api"
    assert response.json["scope"] == ""


def test_resource_of_a_partner_with_agreement_narrows_the_pagm(app: Any, world: A2A) -> None:
    response = credentials(app, world, resource=CNAV_API)
    assert response.status_code == 200, response.json
    claims = verify(app.test_client(), response.json["access_token"], CNAV_API).claims
    assert claims["aud"] == CNAV_API
    assert claims["pagm"] == ["DSN_DECL"]  # DSN is common; PASRAU and DUCS are not


def test_own_and_operator_audiences_are_allowed(app: Any, world: A2A) -> None:
    for resource in (URSSAF_API, f"{ISSUER}/api"):
        response = credentials(app, world, resource=resource)
        assert response.status_code == 200, response.json
        assert claims_of(response.json["access_token"])["aud"] == resource


@pytest.mark.parametrize(
    "resources",
    [
        [AGIRC_API],
        ["https://unknown.example/api"],
        ["urn:interops:partenaire:agirc"],
        [CNAV_API, URSSAF_API],
    ],
)
def test_resource_without_agreement_is_invalid_target(
    app: Any, world: A2A, resources: list[str]
) -> None:
    response = credentials(app, world, resource=resources)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_target"
    assert app.test_client() and not _issued(app, "urssaf-app")


def _issued(app: Any, client_id: str) -> list[IssuedToken]:
    from idp.stores.db import database

    with database(app).sessions() as s:
        return list(s.scalars(select(IssuedToken).where(IssuedToken.client_id == client_id)))


def test_client_credentials_needs_the_grant_and_registered_scopes(app: Any, world: A2A) -> None:
    assert credentials(app, world, "urssaf-app", scope="openid").status_code == 200
    refused = credentials(app, world, "urssaf-app", scope="admin")
    assert refused.status_code == 400 and refused.json["error"] == "invalid_scope"
    response = token_request(
        app.test_client(), world, "urssaf-app", {"grant_type": JWT_BEARER, "assertion": "x.y.z"}
    )
    assert response.status_code == 400


def test_client_credentials_wrong_secret_is_invalid_client(app: Any, world: A2A) -> None:

    response = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic("urssaf-app", "mauvais-secret"),
    )
    assert response.status_code in (400, 401) and response.json["error"] == "invalid_client"


# ------------------------------------------------------------ private_key_jwt attacks


def _assertion_request(app: Any, signed: str) -> Any:
    return app.test_client().post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": signed,
        },
    )


def test_replayed_client_assertion_is_refused(app: Any, world: A2A) -> None:
    signed = client_assertion(world.keys["urssaf-batch"], "urssaf-batch", jti="once")
    assert _assertion_request(app, signed).status_code == 200
    replayed = _assertion_request(app, signed)
    assert replayed.status_code in (400, 401) and replayed.json["error"] == "invalid_client"


def test_assertion_signed_with_another_clients_key_is_refused(app: Any, world: A2A) -> None:
    # cnav-batch signs as urssaf-batch (its own registered key, another client's name)
    forged = client_assertion(world.keys["cnav-batch"], "urssaf-batch", jti="forged")
    response = _assertion_request(app, forged)
    assert response.status_code in (400, 401) and response.json["error"] == "invalid_client"
    assert not _issued(app, "urssaf-batch")


# ---------------------------------------------------------------- refresh tokens


def refresh(app: Any, world: A2A, token: str) -> Any:
    return token_request(
        app.test_client(),
        world,
        "urssaf-app",
        {"grant_type": "refresh_token", "refresh_token": token},
    )


def test_refresh_token_rotates(app: Any, world: A2A, session: Any) -> None:
    first = code_flow_tokens(app, world)
    assert "refresh_token" in first and "id_token" in first
    second = refresh(app, world, first["refresh_token"])
    assert second.status_code == 200, second.json
    assert second.json["refresh_token"] != first["refresh_token"]
    claims = verify(app.test_client(), second.json["access_token"], URSSAF_API).claims
    assert claims["sub"] == world.declarant_id and claims["pagm"] == ["DSN_DECL", "PASRAU_DECL"]
    assert claims["acr"] == claims_of(first["access_token"])["acr"]
    assert claims["auth_time"] == claims_of(first["access_token"])["auth_time"]
    third = refresh(app, world, second.json["refresh_token"])
    assert third.status_code == 200, third.json
    rows = session.scalars(select(IssuedToken).where(IssuedToken.kind == "refresh")).all()
    assert len({r.family for r in rows}) == 1 and len(rows) == 3
    assert all(
        r.token_hash not in (first["refresh_token"], second.json["refresh_token"]) for r in rows
    )
    assert sum(r.rotated_at is None for r in rows) == 1
    assert len({r.expires_at for r in rows}) == 1  # the family's absolute expiry


def test_refresh_is_refused_once_the_account_is_locked(app: Any, world: A2A) -> None:
    from tests.idp.login_support import login_siret

    first = code_flow_tokens(app, world)
    browser = app.test_client()
    for _ in range(5):
        login_siret(browser, password="mauvais mot de passe")
    assert login_siret(browser).status_code == 429
    refused = refresh(app, world, first["refresh_token"])
    assert refused.status_code == 400 and refused.json["error"] == "invalid_grant"
    assert "verrouille" in refused.json["error_description"]


def test_refresh_token_used_twice_revokes_the_whole_family(
    app: Any, world: A2A, session: Any
) -> None:
    first = code_flow_tokens(app, world)
    second = refresh(app, world, first["refresh_token"]).json
    reused = refresh(app, world, first["refresh_token"])
    assert reused.status_code == 400 and reused.json["error"] == "invalid_grant"
    # the thief's copy and the legitimate one are both dead now
    assert refresh(app, world, second["refresh_token"]).json["error"] == "invalid_grant"
    rows = session.scalars(select(IssuedToken)).all()
    assert rows and all(r.revoked_at is not None for r in rows)
    for access in (first["access_token"], second["access_token"]):
        info = app.test_client().get(
            "/oauth/userinfo", headers={"Authorization": f"Bearer {access}"}
        )
        assert info.status_code == 401


def test_refresh_token_only_for_its_client_and_grant(app: Any, world: A2A, session: Any) -> None:
    first = code_flow_tokens(app, world)
    stolen = token_request(
        app.test_client(),
        world,
        "cnav-app",
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert stolen.status_code == 400 and stolen.json["error"] == "unauthorized_client"
    assert refresh(app, world, "inconnu").json["error"] == "invalid_grant"
    wider = token_request(
        app.test_client(),
        world,
        "urssaf-app",
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "scope": "email"},
    )
    assert wider.status_code == 400 and wider.json["error"] == "invalid_scope"


def test_no_refresh_token_without_the_grant(app: Any, session: Any) -> None:
    from tests.idp.oauth_support import REDIRECT, auth_params, get_code, log_in

    plain = setup_world(app, session)
    browser = app.test_client()
    log_in(app, browser, plain.declarant_id)
    code = get_code(browser, auth_params())
    body = (
        app.test_client()
        .post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
            headers=basic(plain.client_id, plain.secret or ""),
        )
        .json
    )
    assert "access_token" in body and "refresh_token" not in body


def test_expired_refresh_token_is_refused(app: Any, world: A2A, session: Any) -> None:
    first = code_flow_tokens(app, world)
    row = session.scalars(select(IssuedToken).where(IssuedToken.kind == "refresh")).one()
    row.expires_at = datetime(2000, 1, 1, tzinfo=UTC)
    session.commit()
    assert refresh(app, world, first["refresh_token"]).json["error"] == "invalid_grant"


# ---------------------------------------------------------------- token exchange


def exchange(
    app: Any, world: A2A, subject: str, client_id: str = "urssaf-app", **extra: Any
) -> Any:
    data = {
        "grant_type": EXCHANGE,
        "subject_token": subject,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        **extra,
    }
    return token_request(app.test_client(), world, client_id, data)


def test_exchange_narrows_to_the_requested_partner(app: Any, world: A2A) -> None:
    subject = code_flow_tokens(app, world)["access_token"]
    before = verify(app.test_client(), subject, URSSAF_API).claims
    assert before["pagm"] == ["DSN_DECL", "PASRAU_DECL"]
    response = exchange(app, world, subject, resource=CNAV_API)
    assert response.status_code == 200, response.json
    assert response.json["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert "refresh_token" not in response.json
    claims = verify(app.test_client(), response.json["access_token"], CNAV_API).claims
    assert claims["aud"] == CNAV_API and claims["sub"] == world.declarant_id
    assert claims["act"] == {"sub": "urssaf-app"}
    # DSN only: not PASRAU (CNAV does not receive it), not DUCS (the subject never carried it)
    assert claims["pagm"] == ["DSN_DECL"]
    assert [h["service"] for h in claims["habilitations"]] == ["DSN"]
    assert claims["exp"] <= before["exp"]
    assert claims["acr"] == before["acr"] and claims["auth_time"] == before["auth_time"]


def test_exchange_by_audience_parameter_and_nested_act(app: Any, world: A2A) -> None:
    subject = code_flow_tokens(app, world)["access_token"]
    for_cnav = exchange(app, world, subject, audience=CNAV_API).json["access_token"]
    back = exchange(app, world, for_cnav, "cnav-app", resource=URSSAF_API)
    assert back.status_code == 200, back.json
    claims = verify(app.test_client(), back.json["access_token"], URSSAF_API).claims
    assert claims["act"] == {"sub": "cnav-app", "act": {"sub": "urssaf-app"}}
    assert claims["pagm"] == ["DSN_DECL"]  # never widened back to PASRAU


def test_exchange_for_a_partner_without_agreement_is_invalid_target(app: Any, world: A2A) -> None:
    subject = code_flow_tokens(app, world)["access_token"]
    for target in (AGIRC_API, "https://unknown.example/api"):
        response = exchange(app, world, subject, resource=target)
        assert response.status_code == 400 and response.json["error"] == "invalid_target"


def test_exchange_refuses_foreign_forged_and_revoked_subject_tokens(
    app: Any, world: A2A, session: Any
) -> None:
    subject = code_flow_tokens(app, world)["access_token"]
    # a token meant for URSSAF cannot be exchanged by CNAV
    foreign = exchange(app, world, subject, "cnav-app", resource=URSSAF_API)
    assert foreign.status_code == 400 and foreign.json["error"] == "invalid_grant"
    head, payload, signature = subject.split(".")
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    assert exchange(app, world, tampered, resource=CNAV_API).json["error"] == "invalid_grant"
    machine = credentials(app, world, "cnav-app").json["access_token"]
    assert exchange(app, world, machine, resource=CNAV_API).json["error"] == "invalid_grant"
    for row in session.scalars(select(IssuedToken)):
        row.revoked_at = datetime.now(UTC)
    session.commit()
    assert exchange(app, world, subject, resource=CNAV_API).json["error"] == "invalid_grant"


@pytest.mark.parametrize("change", ["disabled", "locked"])
def test_exchange_refuses_a_subject_no_longer_active_or_locked(
    app: Any, world: A2A, session: Any, change: str
) -> None:
    """The lock and the status hold on every path that issues a token for a person:
    a token taken before the declarant was disabled or locked exchanges for nothing."""
    from rcd_store.models import Declarant, DeclarantStatus
    from tests.idp.login_support import login_siret

    subject = code_flow_tokens(app, world)["access_token"]
    if change == "disabled":
        session.get(Declarant, world.declarant_id).status = DeclarantStatus.DISABLED.value
        session.commit()
    else:
        browser = app.test_client()
        for _ in range(5):
            login_siret(browser, password="mauvais mot de passe")
        assert login_siret(browser).status_code == 429
    response = exchange(app, world, subject, resource=CNAV_API)
    assert response.status_code == 400 and response.json["error"] == "invalid_grant"


def test_exchange_request_checks(app: Any, world: A2A) -> None:
    subject = code_flow_tokens(app, world)["access_token"]
    bad_type = exchange(app, world, subject, resource=CNAV_API, subject_token_type="urn:x")
    assert bad_type.json["error"] == "invalid_request"
    missing = exchange(app, world, subject)
    assert missing.json["error"] == "invalid_request"
    not_allowed = token_request(
        app.test_client(),
        world,
        "cnav-batch",
        {
            "grant_type": EXCHANGE,
            "subject_token": subject,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "resource": CNAV_API,
        },
    )
    assert not_allowed.json["error"] == "unauthorized_client"


def test_machine_token_exchange_keeps_the_common_pagm(app: Any, world: A2A) -> None:
    machine = credentials(app, world, "urssaf-batch").json["access_token"]
    response = exchange(app, world, machine, "urssaf-batch", resource=CNAV_API)
    assert response.status_code == 200, response.json
    claims = verify(app.test_client(), response.json["access_token"], CNAV_API).claims
    assert claims["sub"] == "urssaf-batch" and claims["pagm"] == ["DSN_DECL"]
    assert claims["act"] == {"sub": "urssaf-batch"} and claims["acr"] == MACHINE_ACR


def test_a_revoked_machine_token_is_no_subject_token(app: Any, world: A2A) -> None:
    """A machine token has no row until revoked; revoked, it is refused as a subject."""
    machine = credentials(app, world).json["access_token"]
    revoked = app.test_client().post(
        "/oauth/revoke",
        data={"token": machine},
        headers=basic("urssaf-app", world.secrets["urssaf-app"]),
    )
    assert revoked.status_code == 200
    refused = exchange(app, world, machine, resource=CNAV_API)
    assert refused.status_code == 400 and refused.json["error"] == "invalid_grant"


# -------------------------------------------------------------------- JWT bearer


def bearer_assertion(
    world: A2A, *, jti: str, key: Any = None, sub: str | None = None, **kw: Any
) -> str:
    return client_assertion(
        key or world.keys["urssaf-batch"],
        "urssaf-batch",
        jti=jti,
        sub=sub or world.declarant_id,
        **kw,
    )


def jwt_bearer(app: Any, assertion: str, **extra: str) -> Any:
    return app.test_client().post(
        "/oauth/token", data={"grant_type": JWT_BEARER, "assertion": assertion, **extra}
    )


@pytest.fixture(params=["database", "redis"])
def replay_backend(request: pytest.FixtureRequest, app: Any) -> str:
    if request.param == "redis":
        from tests.conftest import REDIS_URL

        if not REDIS_URL:
            pytest.skip("IDP_TEST_REDIS_URL not set")
        import secrets

        import redis

        from idp.stores.replay import RedisReplayCache

        app.extensions["idp.replay"] = RedisReplayCache(
            redis.Redis.from_url(REDIS_URL), prefix=f"test:{secrets.token_hex(8)}:"
        )
    return str(request.param)


def test_jwt_bearer_issues_a_token_for_the_asserted_declarant(
    app: Any, world: A2A, replay_backend: str
) -> None:
    signed = bearer_assertion(world, jti="b-1")
    response = jwt_bearer(app, signed, scope="openid profile")
    assert response.status_code == 200, response.json
    claims = verify(app.test_client(), response.json["access_token"], URSSAF_API).claims
    assert claims["sub"] == world.declarant_id and claims["client_id"] == "urssaf-batch"
    assert claims["pagm"] == ["DSN_DECL", "PASRAU_DECL"]
    assert {h["service"] for h in claims["habilitations"]} == {"DSN", "PASRAU"}
    assert claims["family_name"] == "Dupont"
    assert claims["acr"] == ASSERTED_ACR and "auth_time" not in claims
    replayed = jwt_bearer(app, signed)
    assert replayed.status_code == 400 and replayed.json["error"] == "invalid_grant"


def test_jwt_bearer_refusals(app: Any, world: A2A, session: Any) -> None:
    cases = {
        "other key": bearer_assertion(world, jti="b-2", key=world.keys["cnav-batch"]),
        "wrong audience": bearer_assertion(world, jti="b-3", aud="https://other.example/token"),
        "too long": bearer_assertion(world, jti="b-4", lifetime=3600),
        "expired": bearer_assertion(world, jti="b-5", lifetime=-300),
        "unknown declarant": bearer_assertion(world, jti="b-6", sub="inconnu"),
    }
    for name, signed in cases.items():
        response = jwt_bearer(app, signed)
        assert response.status_code in (400, 401), name
        assert response.json["error"] in ("invalid_grant", "invalid_client"), (name, response.json)
    # a declarant with no habilitation at URSSAF's services
    from tests import factories

    stranger = factories.declarant(
        session, siret=factories.SIRET_A, last="Martin", first="Paul", email="paul@martin.example"
    )
    session.commit()
    refused = jwt_bearer(app, bearer_assertion(world, jti="b-7", sub=stranger.id))
    assert refused.status_code == 400 and refused.json["error"] == "invalid_grant"
    # a client without the grant (cnav-batch) cannot use its own key either
    own = client_assertion(
        world.keys["cnav-batch"], "cnav-batch", jti="b-8", sub=world.declarant_id
    )
    assert jwt_bearer(app, own).json["error"] == "unauthorized_client"
    assert not _issued(app, "urssaf-batch") and not _issued(app, "cnav-batch")


def test_replayed_code_revokes_the_refresh_token_too(app: Any, world: A2A) -> None:
    from tests.idp.oauth_support import REDIRECT, auth_params, get_code, log_in

    browser = app.test_client()
    log_in(app, browser, world.declarant_id)
    code = get_code(browser, auth_params("urssaf-app"))
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    first = token_request(app.test_client(), world, "urssaf-app", data)
    assert first.status_code == 200 and "refresh_token" in first.json
    replay = token_request(app.test_client(), world, "urssaf-app", data)
    assert replay.status_code == 400 and replay.json["error"] == "invalid_grant"
    assert refresh(app, world, first.json["refresh_token"]).json["error"] == "invalid_grant"
