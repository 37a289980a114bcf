"""Interoperability: Authlib's own OAuth 2 client, configured only from our discovery
document, runs the code flow with PKCE S256 against a live server; the ID token is
validated with joserfc against the published JWKS (iss, aud, nonce, exp)."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from tests.idp.oauth_support import REDIRECT, World, log_in, setup_world

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def live(app: Any) -> Iterator[str]:
    """The app on a free port; the issuer is that URL exactly."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join()


def browser_for(app: Any, world: World) -> requests.Session:
    """A user agent holding a live SSO session (the login page is tested elsewhere)."""
    flask_client = app.test_client()
    log_in(app, flask_client, world.declarant_id)
    cookie = flask_client.get_cookie("idp_session")
    agent = requests.Session()
    agent.cookies.set("idp_session", cookie.value, domain="127.0.0.1", path="/")
    return agent


def authorize_in_browser(agent: requests.Session, url: str) -> str:
    """Follow the authorization URL, press « Autoriser »; the callback URL the RP receives."""
    page = agent.get(url, allow_redirects=False)
    assert page.status_code == 200 and "Autoriser" in page.text
    token = _CSRF.search(page.text)
    assert token is not None
    answer = agent.post(
        url, data={"csrf_token": token.group(1), "decision": "autoriser"}, allow_redirects=False
    )
    assert answer.status_code == 302
    callback = answer.headers["Location"]
    assert callback.startswith(REDIRECT)
    return str(callback)


def validate_id_token(
    id_token: str, discovery: dict[str, Any], *, client_id: str, nonce: str
) -> dict[str, Any]:
    keys = KeySet.import_key_set(requests.get(discovery["jwks_uri"], timeout=5).json())
    decoded = jwt.decode(
        id_token, keys, algorithms=discovery["id_token_signing_alg_values_supported"]
    )
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": discovery["issuer"]},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
        auth_time={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "none"])
def test_authlib_rp_completes_the_code_flow(
    app: Any, session: Any, live: str, auth_method: str
) -> None:
    world = setup_world(app, session, token_auth=auth_method)
    discovery = requests.get(f"{live}/.well-known/openid-configuration", timeout=5).json()
    assert discovery["issuer"] == live
    assert "S256" in discovery["code_challenge_methods_supported"]
    assert auth_method in discovery["token_endpoint_auth_methods_supported"]

    rp = OAuth2Session(
        world.client_id,
        world.secret,
        scope="openid profile",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
    )
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        discovery["authorization_endpoint"], nonce=nonce, code_verifier=verifier
    )
    callback = authorize_in_browser(browser_for(app, world), url)
    query = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert query["state"] == state
    assert query["iss"] == discovery["issuer"]  # RFC 9207: the RP checks who answered

    token = rp.fetch_token(
        discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    claims = validate_id_token(token["id_token"], discovery, client_id=world.client_id, nonce=nonce)
    assert claims["sub"] == world.declarant_id and claims["azp"] == world.client_id

    info = rp.get(discovery["userinfo_endpoint"], timeout=5)
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]

    replay = requests.post(
        discovery["token_endpoint"],
        timeout=5,
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": REDIRECT,
            "client_id": world.client_id,
            "code_verifier": verifier,
        },
        auth=(world.client_id, world.secret) if world.secret else None,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert rp.get(discovery["userinfo_endpoint"], timeout=5).status_code == 401  # revoked
