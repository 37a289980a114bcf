"""Malformed or misrouted OAuth requests get the OAuth error, never a 500 (issue 13
item 14): a ``redirect_uri`` or ``response_type`` holding a character that an OAuth error
description may not carry, and requests reaching the service over http behind a TLS
proxy that ``IDP_TRUSTED_PROXIES`` does not declare."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from tests.idp.oauth_support import REDIRECT, World, basic, log_in, setup_world

BEHIND_TLS_PROXY = "http://idp.example"  # what a worker sees when the proxy is not declared
ENDPOINTS = ("/oauth/token", "/oauth/introspect", "/oauth/revoke")


@pytest.fixture
def world(app: Any, session: Any) -> World:
    return setup_world(app, session, extra_grants=("client_credentials",))


def authorize(browser: Any, **overrides: str) -> Any:
    params = {
        "response_type": "code",
        "client_id": "rp-client",
        "redirect_uri": quote(REDIRECT, safe=""),
        "scope": "openid",
        "state": "s1",
        **overrides,
    }
    return browser.get("/oauth/authorize?" + "&".join(f"{k}={v}" for k, v in params.items()))


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://a.example/cb%0A",
        "https://a.example/cb%0D%0ALocation:%20https://evil.example/",
        quote(REDIRECT, safe="") + "%0A",
        quote(REDIRECT, safe="") + "%22",
        quote(REDIRECT, safe="") + "%5C",
        "https://a.example/cb%C3%A9",
    ],
)
def test_a_redirect_uri_no_error_may_quote_is_a_400_page(
    app: Any, world: World, redirect_uri: str
) -> None:
    browser = app.test_client()
    log_in(app, browser, world.declarant_id)
    response = authorize(browser, redirect_uri=redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "redirect_uri" in response.text


def test_a_response_type_no_error_may_quote_is_a_400(app: Any, world: World) -> None:
    browser = app.test_client()
    log_in(app, browser, world.declarant_id)
    for value in ("code%0A", "code%22", "tok%5Cen"):
        response = authorize(browser, response_type=value)
        assert response.status_code == 400, value
        assert "Location" not in response.headers


def _post(app: Any, world: World, path: str, base_url: str, **headers: str) -> Any:
    data = {"grant_type": "client_credentials"} if path == "/oauth/token" else {"token": "x"}
    return app.test_client().post(
        path,
        data=data,
        base_url=base_url,
        headers={**basic(world.client_id, world.secret or ""), **headers},
    )


def test_http_behind_an_undeclared_tls_proxy_gets_a_clear_oauth_error(
    app: Any, world: World
) -> None:
    for path in ENDPOINTS:
        response = _post(app, world, path, BEHIND_TLS_PROXY, **{"X-Forwarded-Proto": "https"})
        assert response.status_code == 400, (path, response.get_data(as_text=True))
        assert response.json["error"] == "invalid_request"
        assert "IDP_TRUSTED_PROXIES" in response.json["error_description"]
        assert response.headers["Cache-Control"] == "no-store"
    page = app.test_client().get(
        "/oauth/authorize", base_url=BEHIND_TLS_PROXY, query_string={"client_id": "rp-client"}
    )
    assert page.status_code == 400 and "IDP_TRUSTED_PROXIES" in page.text


def test_a_declared_tls_proxy_is_trusted(app: Any, world: World) -> None:
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    for path in ENDPOINTS:
        response = _post(app, world, path, BEHIND_TLS_PROXY, **{"X-Forwarded-Proto": "https"})
        assert response.status_code == 200, (path, response.get_data(as_text=True))
