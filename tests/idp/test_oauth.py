"""The OpenID Connect provider's rules, through the Flask test client."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from idp.stores.models import AuthorizationCode, Consent, IssuedToken
from tests.idp.oauth_support import (
    REDIRECT,
    World,
    auth_params,
    basic,
    consent,
    get_code,
    log_in,
    pkce,
    query_of,
    setup_world,
)
from token_suite import jwt as interops_jwt
from token_suite.jwt import trust_from_jwks

ISSUER = "http://idp.test"


@pytest.fixture
def world(app: Any, session: Any) -> World:
    return setup_world(app, session, claims=("email",))


@pytest.fixture
def browser(app: Any, world: World) -> Any:
    client = app.test_client()
    log_in(app, client, world.declarant_id)
    return client


def redeem(client: Any, world: World, code: str, **extra: str) -> Any:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, **extra}
    return client.post(
        "/oauth/token", data=data, headers=basic(world.client_id, world.secret or "")
    )


def verify(client: Any, token: str, audience: str, typ: str | None = None) -> Any:
    """Our token for ``audience``; ``typ=None``: an ID token, whose header has no ``typ``."""
    if typ is None:
        head = token.split(".")[0]
        assert "typ" not in json.loads(base64.urlsafe_b64decode(head + "==="))
    return interops_jwt.verify(
        token,
        trust=trust_from_jwks(client.get("/.well-known/jwks.json").json),
        audience=audience,
        issuer=ISSUER,
        typ=typ,
        replay=interops_jwt.InMemoryReplayCache(),
    )


# ------------------------------------------------------------------- discovery


def test_discovery_document(app: Any, world: World) -> None:
    doc = app.test_client().get("/.well-known/openid-configuration").json
    assert doc["issuer"] == ISSUER
    assert doc["authorization_endpoint"] == f"{ISSUER}/oauth/authorize"
    assert doc["token_endpoint"] == f"{ISSUER}/oauth/token"
    assert doc["userinfo_endpoint"] == f"{ISSUER}/oauth/userinfo"
    assert doc["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert doc["end_session_endpoint"] == f"{ISSUER}/oauth/logout"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert "ES256" in doc["id_token_signing_alg_values_supported"]
    assert "authorization_code" in doc["grant_types_supported"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "none",
        "private_key_jwt",
    }
    assert {"openid", "profile", "email"} <= set(doc["scopes_supported"])
    assert {"sub", "nonce", "auth_time", "pagm", "habilitations"} <= set(doc["claims_supported"])


# --------------------------------------------------------------- redirect URIs


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        REDIRECT + "/",
        REDIRECT + "?x=1",
        "https://RP.example/callback",
    ],
)
def test_unregistered_redirect_uri_gets_a_page_never_a_redirect(
    browser: Any, redirect_uri: str
) -> None:
    response = browser.get("/oauth/authorize", query_string=auth_params(redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "evil" not in response.headers.get("Location", "")
    assert "<h1>" in response.text


def test_unknown_client_and_missing_redirect_uri_get_a_page(browser: Any) -> None:
    unknown = browser.get("/oauth/authorize", query_string=auth_params(client_id="inconnu"))
    assert unknown.status_code == 400 and "Location" not in unknown.headers
    params = auth_params()
    del params["redirect_uri"]
    missing = browser.get("/oauth/authorize", query_string=params)
    assert missing.status_code == 400 and "Location" not in missing.headers


def test_error_after_redirect_validation_goes_back_with_iss(browser: Any) -> None:
    response = browser.get("/oauth/authorize", query_string=auth_params(response_type="token"))
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT)
    assert query["error"] == "unsupported_response_type"
    assert query["iss"] == ISSUER and query["state"] == "etat-1"


# --------------------------------------------------------------- the code flow


def test_code_flow_tokens(app: Any, browser: Any, world: World) -> None:
    verifier, challenge = pkce()
    response = consent(browser, auth_params(challenge=challenge, scope="openid profile email"))
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert query["iss"] == ISSUER and query["state"] == "etat-1"
    tokens = redeem(app.test_client(), world, query["code"], code_verifier=verifier)
    assert tokens.status_code == 200, tokens.json
    assert tokens.headers["Cache-Control"] == "no-store"
    body = tokens.json
    assert body["token_type"] == "Bearer" and "_jti" not in body
    id_token = verify(browser, body["id_token"], audience=world.client_id)
    claims = id_token.claims
    assert claims["nonce"] == "nonce-1" and claims["azp"] == world.client_id
    assert claims["sub"] == world.declarant_id and claims["sid"]
    assert claims["exp"] - claims["iat"] <= 300 and "auth_time" in claims
    assert claims["acr"] and claims["amr"] == ["pwd"]
    assert claims["email"] == "elodie@dupont.example"  # allowed for this partner, asked for
    assert id_token.pagm == ("DSN_DECL",)  # minimised: DUCS is not this partner's
    access = verify(browser, body["access_token"], audience=f"{ISSUER}/api", typ="at+jwt")
    assert access.claims["client_id"] == world.client_id
    assert access.claims["scope"] == "openid profile email"
    assert access.claims["exp"] - access.claims["iat"] <= 900
    assert [h.service for h in access.habilitations] == ["DSN"]
    header = body["access_token"].split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(header + "==="))["typ"] == "at+jwt"
    info = browser.get(
        "/oauth/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}
    )
    assert info.status_code == 200, info.json
    assert info.json["sub"] == world.declarant_id and info.json["pagm"] == ["DSN_DECL"]
    assert info.json["family_name"] == "Dupont" and info.json["email"] == "elodie@dupont.example"
    assert info.json["habilitations"] == [
        {"service": "DSN", "siret": "73282932000074", "role": "DECLARANT"}
    ]


def test_email_only_where_allowed(app: Any, session: Any) -> None:
    world = setup_world(app, session)  # partner without the "email" claim
    client = app.test_client()
    log_in(app, client, world.declarant_id)
    code = get_code(client, auth_params(scope="openid profile email"))
    body = redeem(client, world, code).json
    assert "email" not in verify(client, body["id_token"], world.client_id).claims
    info = client.get(
        "/oauth/userinfo", headers={"Authorization": "Bearer " + body["access_token"]}
    )
    assert "email" not in info.json


def test_access_token_audience_is_the_partner_api(app: Any, session: Any) -> None:
    world = setup_world(app, session, api_audience="urn:urssaf:api")
    client = app.test_client()
    log_in(app, client, world.declarant_id)
    body = redeem(client, world, get_code(client, auth_params())).json
    assert (
        verify(client, body["access_token"], "urn:urssaf:api", typ="at+jwt").subject
        == world.declarant_id
    )


def test_code_is_stored_hashed_and_short_lived(app: Any, browser: Any, session: Any) -> None:
    code = get_code(browser, auth_params())
    row = session.scalars(select(AuthorizationCode)).one()
    assert row.code_hash != code and code not in row.code_hash
    assert row.expires_at - datetime.now(UTC) <= timedelta(seconds=60)


def test_expired_code_is_refused(app: Any, browser: Any, world: World, session: Any) -> None:
    code = get_code(browser, auth_params())
    row = session.scalars(select(AuthorizationCode)).one()
    row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()
    assert redeem(app.test_client(), world, code).json["error"] == "invalid_grant"


def test_code_reuse_is_refused_and_revokes_the_first_tokens(
    app: Any, browser: Any, world: World, session: Any
) -> None:
    code = get_code(browser, auth_params())
    first = redeem(app.test_client(), world, code)
    assert first.status_code == 200
    access = first.json["access_token"]
    bearer = {"Authorization": "Bearer " + access}
    assert browser.get("/oauth/userinfo", headers=bearer).status_code == 200
    second = redeem(app.test_client(), world, code)
    assert second.status_code == 400 and second.json["error"] == "invalid_grant"
    assert "access_token" not in second.json
    row = session.scalars(select(AuthorizationCode)).one()
    assert row.issued and row.used_at is not None
    revoked = session.scalars(select(IssuedToken).where(IssuedToken.jti.in_(row.issued))).all()
    assert revoked and all(t.revoked_at is not None for t in revoked)
    refused = browser.get("/oauth/userinfo", headers=bearer)
    assert refused.status_code == 401 and refused.json["error"] == "invalid_token"
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def test_code_works_only_for_its_client(app: Any, browser: Any, world: World, session: Any) -> None:
    from partners.services import ClientSettings, PartnerSettings, add_partner

    other = add_partner(
        session,
        PartnerSettings(
            name="CNAV", client=ClientSettings(client_id="other-client", redirect_uris=[REDIRECT])
        ),
    )
    session.commit()
    code = get_code(browser, auth_params())
    stolen = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=basic("other-client", other.client_secret or ""),
    )
    assert stolen.json["error"] == "invalid_grant"


def test_redirect_uri_must_match_at_the_token_endpoint(
    app: Any, browser: Any, world: World
) -> None:
    code = get_code(browser, auth_params())
    response = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT + "/x"},
        headers=basic(world.client_id, world.secret or ""),
    )
    assert response.json["error"] == "invalid_grant"


# ------------------------------------------------------------------------ PKCE


@pytest.fixture
def public(app: Any, session: Any) -> tuple[World, Any]:
    world = setup_world(app, session, client_id="spa-client", token_auth="none")
    client = app.test_client()
    log_in(app, client, world.declarant_id)
    return world, client


def test_pkce_required_for_public_clients(public: tuple[World, Any]) -> None:
    world, browser = public
    response = browser.get("/oauth/authorize", query_string=auth_params(world.client_id))
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert query["error"] == "invalid_request" and "PKCE" in query["error_description"]


def test_pkce_plain_is_refused(public: tuple[World, Any]) -> None:
    world, browser = public
    verifier, _challenge = pkce()
    response = browser.get(
        "/oauth/authorize",
        query_string=auth_params(
            world.client_id, code_challenge=verifier, code_challenge_method="plain"
        ),
    )
    assert query_of(response.headers["Location"])["error"] == "invalid_request"
    no_method = browser.get(
        "/oauth/authorize", query_string=auth_params(world.client_id, code_challenge=verifier)
    )
    assert query_of(no_method.headers["Location"])["error"] == "invalid_request"


def test_public_client_with_s256(app: Any, public: tuple[World, Any]) -> None:
    world, browser = public
    verifier, challenge = pkce()
    code = get_code(browser, auth_params(world.client_id, challenge=challenge))
    token = app.test_client().post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": world.client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200 and token.json["id_token"]


def test_wrong_or_missing_verifier_is_refused(app: Any, public: tuple[World, Any]) -> None:
    world, browser = public
    _verifier, challenge = pkce()
    for extra in ({"code_verifier": pkce()[0]}, {}):
        code = get_code(browser, auth_params(world.client_id, challenge=challenge))
        response = app.test_client().post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_id": world.client_id,
                **extra,
            },
        )
        assert response.status_code == 400
        assert response.json["error"] in ("invalid_grant", "invalid_request")


def test_pkce_allowed_for_confidential_clients(app: Any, browser: Any, world: World) -> None:
    verifier, challenge = pkce()
    code = get_code(browser, auth_params(challenge=challenge))
    assert redeem(app.test_client(), world, code).status_code == 400  # verifier then required
    code = get_code(browser, auth_params(challenge=challenge))
    assert redeem(app.test_client(), world, code, code_verifier=verifier).status_code == 200


# ---------------------------------------------------------- prompt and max_age


def test_no_session_goes_to_the_login_page(app: Any, world: World) -> None:
    response = app.test_client().get("/oauth/authorize", query_string=auth_params())
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/connexion?") and "force" not in query_of(location)
    assert query_of(location)["next"].startswith("/oauth/authorize?")


def test_prompt_none_without_session_redirects_login_required(app: Any, world: World) -> None:
    response = app.test_client().get("/oauth/authorize", query_string=auth_params(prompt="none"))
    assert response.status_code == 302
    query = query_of(response.headers["Location"])
    assert response.headers["Location"].startswith(REDIRECT)
    assert (
        query["error"] == "login_required" and query["state"] == "etat-1" and query["iss"] == ISSUER
    )


def test_prompt_none_with_session_and_remembered_consent_gives_a_code(
    browser: Any, world: World, session: Any
) -> None:
    none = browser.get("/oauth/authorize", query_string=auth_params(prompt="none"))
    assert query_of(none.headers["Location"])["error"] == "consent_required"
    get_code(browser, auth_params())  # consent given once
    assert session.scalars(select(Consent)).one().scopes == ["openid", "profile"]
    silent = browser.get("/oauth/authorize", query_string=auth_params(prompt="none"))
    assert silent.status_code == 302 and "code" in query_of(silent.headers["Location"])
    again = browser.get("/oauth/authorize", query_string=auth_params())
    assert again.status_code == 302, "consent remembered: no page"


def test_consent_is_per_scope(browser: Any, world: World) -> None:
    get_code(browser, auth_params(scope="openid"))
    wider = browser.get("/oauth/authorize", query_string=auth_params(scope="openid profile"))
    assert wider.status_code == 200 and "Autoriser" in wider.text
    assert wider.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in wider.headers["Content-Security-Policy"]


def test_consent_refused(browser: Any, world: World) -> None:
    response = consent(browser, auth_params(), decision="refuser")
    assert query_of(response.headers["Location"])["error"] == "access_denied"


def test_consent_post_needs_csrf(browser: Any, world: World) -> None:
    response = browser.post(
        "/oauth/authorize", query_string=auth_params(), data={"decision": "autoriser"}
    )
    assert response.status_code == 400 and "Location" not in response.headers


@pytest.mark.parametrize("extra", [{"prompt": "login"}, {"max_age": "0"}])
def test_prompt_login_and_max_age_zero_show_the_login_form_again(
    app: Any, browser: Any, world: World, extra: dict[str, str]
) -> None:
    get_code(browser, auth_params())  # consent remembered
    response = browser.get("/oauth/authorize", query_string=auth_params(**extra))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/connexion?") and query_of(location)["force"] == "1"
    back = query_of(location)["next"]
    # logging in again (a new session) satisfies the request: a code, no loop
    log_in(app, browser, world.declarant_id)
    done = browser.get(back)
    assert done.status_code == 302 and "code" in query_of(done.headers["Location"])


def test_prompt_none_with_max_age_zero_is_login_required(browser: Any, world: World) -> None:
    response = browser.get("/oauth/authorize", query_string=auth_params(prompt="none", max_age="0"))
    assert query_of(response.headers["Location"])["error"] == "login_required"


def test_max_age_compared_with_auth_time(
    app: Any, browser: Any, world: World, session: Any
) -> None:
    from tests.conftest import live_sso_sessions, save_sso_session

    get_code(browser, auth_params())
    assert "code" in query_of(
        browser.get("/oauth/authorize", query_string=auth_params(max_age="600")).headers["Location"]
    )
    [row] = live_sso_sessions(app)
    row.auth_time = datetime.now(UTC) - timedelta(seconds=700)
    save_sso_session(app, row)
    old = browser.get("/oauth/authorize", query_string=auth_params(max_age="600"))
    assert old.headers["Location"].startswith("/connexion?")


def test_forged_login_marker_is_ignored(browser: Any, world: World) -> None:
    get_code(browser, auth_params())
    response = browser.get(
        "/oauth/authorize", query_string=auth_params(prompt="login", login_after="1.forged.sig")
    )
    assert response.headers["Location"].startswith("/connexion?")


# ----------------------------------------------------------- client auth


def test_client_secret_basic_with_special_characters(app: Any, session: Any) -> None:
    secret = "s3cr+t:é %&/=?ü"
    world = setup_world(app, session, secret=secret)
    browser = app.test_client()
    log_in(app, browser, world.declarant_id)
    code = get_code(browser, auth_params())
    assert redeem(app.test_client(), world, code).status_code == 200
    code = get_code(browser, auth_params())
    raw = base64.b64encode(f"{world.client_id}:{secret}".encode()).decode()  # not urlencoded
    wrong = app.test_client().post(
        "/oauth/token",
        headers={"Authorization": "Basic " + raw},
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
    )
    assert wrong.status_code == 401 and wrong.json["error"] == "invalid_client"


def test_client_secret_post(app: Any, session: Any) -> None:
    world = setup_world(app, session, token_auth="client_secret_post")
    browser = app.test_client()
    log_in(app, browser, world.declarant_id)
    code = get_code(browser, auth_params())
    basic_refused = redeem(app.test_client(), world, code)
    assert basic_refused.json["error"] == "invalid_client"
    code = get_code(browser, auth_params())
    ok = app.test_client().post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": world.client_id,
            "client_secret": world.secret,
        },
    )
    assert ok.status_code == 200


def test_confidential_client_cannot_skip_authentication(
    app: Any, browser: Any, world: World
) -> None:
    code = get_code(browser, auth_params())
    response = app.test_client().post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": world.client_id,
        },
    )
    assert response.status_code in (400, 401) and response.json["error"] == "invalid_client"


@pytest.fixture
def rsa_client(app: Any, session: Any) -> tuple[World, Any]:
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "rp-1", "alg": "RS256", "use": "sig"})
    world = setup_world(
        app, session, token_auth="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]}
    )
    return world, key


def assertion(
    key: Any,
    client_id: str,
    *,
    jti: str = "a-1",
    aud: str = f"{ISSUER}/oauth/token",
    lifetime: int = 120,
) -> str:
    import time

    from joserfc import jwt

    now = int(time.time())
    return jwt.encode(
        {"alg": "RS256", "kid": "rp-1"},
        {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "jti": jti,
            "iat": now,
            "exp": now + lifetime,
        },
        key,
    )


@pytest.fixture(params=["database", "redis"])
def replay_backend(request: pytest.FixtureRequest, app: Any) -> str:
    """The shared replay cache: the database's, or Redis when IDP_TEST_REDIS_URL is set."""
    if request.param == "redis":
        from tests.conftest import REDIS_URL

        if not REDIS_URL:
            pytest.skip("IDP_TEST_REDIS_URL not set")
        import secrets

        import redis

        from idp.stores.replay import RedisReplayCache

        client = redis.Redis.from_url(REDIS_URL)
        app.extensions["idp.replay"] = RedisReplayCache(
            client, prefix=f"test:{secrets.token_hex(8)}:"
        )
    return str(request.param)


def test_private_key_jwt_and_replay(
    app: Any, rsa_client: tuple[World, Any], replay_backend: str
) -> None:
    world, key = rsa_client
    browser = app.test_client()
    log_in(app, browser, world.declarant_id)

    def token_request(client_assertion: str) -> Any:
        code = get_code(browser, auth_params())
        return app.test_client().post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": client_assertion,
            },
        )

    signed = assertion(key, world.client_id)
    assert token_request(signed).status_code == 200
    replayed = token_request(signed)
    assert replayed.status_code in (400, 401) and replayed.json["error"] == "invalid_client"
    assert (
        token_request(
            assertion(key, world.client_id, jti="a-2", aud="https://other.example/token")
        ).json["error"]
        == "invalid_client"
    )
    assert (
        token_request(assertion(key, world.client_id, jti="a-3", lifetime=3600)).json["error"]
        == "invalid_client"
    )
    from joserfc.jwk import RSAKey

    stranger = RSAKey.generate_key(2048, parameters={"kid": "rp-1"})
    assert (
        token_request(assertion(stranger, world.client_id, jti="a-4")).json["error"]
        == "invalid_client"
    )
    assert token_request(assertion(key, world.client_id, jti="a-5")).status_code == 200


# ------------------------------------------------------------------- userinfo


def test_userinfo_refuses_missing_forged_and_foreign_tokens(
    app: Any, browser: Any, world: World
) -> None:
    assert browser.get("/oauth/userinfo").status_code == 401
    body = redeem(app.test_client(), world, get_code(browser, auth_params())).json
    forged = body["access_token"][:-4] + (
        "AAAA" if not body["access_token"].endswith("AAAA") else "BBBB"
    )
    assert (
        browser.get("/oauth/userinfo", headers={"Authorization": "Bearer " + forged}).status_code
        == 401
    )
    id_as_access = browser.get(
        "/oauth/userinfo", headers={"Authorization": "Bearer " + body["id_token"]}
    )
    assert id_as_access.status_code == 401


# --------------------------------------------------------------------- logout


def _id_token(app: Any, browser: Any, world: World) -> str:
    return str(redeem(app.test_client(), world, get_code(browser, auth_params())).json["id_token"])


def test_logout_with_hint_ends_the_session_and_redirects(
    app: Any, browser: Any, world: World, session: Any
) -> None:
    from tests.conftest import live_sso_sessions

    hint = _id_token(app, browser, world)
    response = browser.get(
        "/oauth/logout",
        query_string={"id_token_hint": hint, "post_logout_redirect_uri": REDIRECT, "state": "s1"},
    )
    assert response.status_code == 302 and response.headers["Location"] == REDIRECT + "?state=s1"
    assert live_sso_sessions(app) == []
    after = browser.get("/oauth/authorize", query_string=auth_params(prompt="none"))
    assert query_of(after.headers["Location"])["error"] == "login_required"


def test_logout_refuses_unregistered_post_logout_uri(app: Any, browser: Any, world: World) -> None:
    hint = _id_token(app, browser, world)
    response = browser.get(
        "/oauth/logout",
        query_string={"id_token_hint": hint, "post_logout_redirect_uri": "https://evil.example/"},
    )
    assert response.status_code == 200 and "Location" not in response.headers
    assert "evil.example" not in response.text


def test_logout_accepts_an_expired_hint_but_not_a_forged_one(
    app: Any, browser: Any, world: World
) -> None:
    from idp.oidc.views import verify_id_token_hint
    from idp.tokens.signing import keyring
    from keys.model import KeyUse
    from token_suite.vector import IdentityVector

    with app.test_request_context():
        old = interops_jwt.issue(
            IdentityVector(subject=world.declarant_id),
            signer=keyring().active(KeyUse.JWT),
            issuer=ISSUER,
            audience=world.client_id,
            now=datetime.now(UTC) - timedelta(hours=2),
            typ=None,  # an ID token
        )
        assert verify_id_token_hint(old)["sub"] == world.declarant_id
    forged = old[:-4] + ("AAAA" if not old.endswith("AAAA") else "BBBB")
    assert browser.get("/oauth/logout", query_string={"id_token_hint": forged}).status_code == 400


def test_logout_without_hint_asks_for_confirmation(
    app: Any, browser: Any, world: World, session: Any
) -> None:
    from tests.conftest import live_sso_sessions
    from tests.idp.oauth_support import hidden_fields

    page = browser.get(
        "/oauth/logout",
        query_string={"client_id": world.client_id, "post_logout_redirect_uri": REDIRECT},
    )
    assert page.status_code == 200 and "Se déconnecter" in page.text
    assert len(live_sso_sessions(app)) == 1
    fields = hidden_fields(page.text)
    done = browser.post("/oauth/logout", data=fields)
    assert done.status_code == 303 and done.headers["Location"] == REDIRECT
    assert live_sso_sessions(app) == []


def test_frontchannel_logout_tells_oidc_clients(app: Any, session: Any) -> None:
    """OIDC Front-Channel Logout 1.0: the portal's logout page loads the client's URI with
    iss and sid; a client without one is not told (and nothing breaks)."""
    from idp.sessions import sso as sessions
    from idp.stores import db
    from partners.models import OAuthClient

    world = setup_world(app, session)
    stored = session.scalars(select(OAuthClient)).one()
    stored.frontchannel_logout_uri = "https://rp.example/fc-logout?x=1"
    session.commit()
    client = app.test_client()
    row = log_in(app, client, world.declarant_id)
    get_code(client, auth_params(world.client_id))
    discovery = client.get("/.well-known/openid-configuration").json
    assert discovery["frontchannel_logout_supported"] is True
    with app.test_request_context():
        fresh = sessions.by_sid(db.session(), row.sid)
        urls = sessions.logout_urls(fresh)
        assert urls == [f"https://rp.example/fc-logout?x=1&iss=http%3A%2F%2Fidp.test&sid={row.sid}"]
        stored = db.session().scalars(select(OAuthClient)).one()
        stored.frontchannel_logout_uri = None
        db.session().commit()
        assert sessions.logout_urls(fresh) == []
