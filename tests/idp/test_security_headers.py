"""Every answer carries the secure headers; a page's own framing choice is kept."""

from __future__ import annotations

from typing import Any

import pytest

from idp.web.security_headers import BASE_POLICY


@pytest.mark.parametrize(
    "path",
    ["/", "/connexion", "/nulle-part", "/mot-de-passe/oubli", "/healthz", "/.well-known/jwks.json"],
)
def test_every_answer_has_the_secure_headers(app: Any, path: str) -> None:
    response = app.test_client().get(path)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in response.headers  # served over http here
    if response.mimetype == "text/html":
        policy = response.headers["Content-Security-Policy"]
        assert policy.startswith(BASE_POLICY) and "frame-ancestors 'none'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"


def test_a_page_keeps_its_own_framing_choice_and_nothing_else_is_framed(app: Any) -> None:
    from flask import Response

    from idp.web.security_headers import secure

    with app.test_request_context():
        framed = Response("<p>x</p>", mimetype="text/html")
        framed.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
        policy = secure(framed).headers["Content-Security-Policy"]
        assert policy == f"{BASE_POLICY}; frame-ancestors 'self'"
        assert "X-Frame-Options" not in framed.headers
        already = Response("<p>x</p>", mimetype="text/html")
        already.headers["Content-Security-Policy"] = "base-uri 'self'"
        policy = secure(already).headers["Content-Security-Policy"]
        assert policy == "base-uri 'self'; frame-ancestors 'none'"
        # a page with its own script policy but no framing choice is still never framed
        scripted = Response("<p>x</p>", mimetype="text/html")
        scripted.headers["Content-Security-Policy"] = "script-src 'nonce-n'"
        policy = secure(scripted).headers["Content-Security-Policy"]
        assert policy == f"{BASE_POLICY}; script-src 'nonce-n'; frame-ancestors 'none'"
        assert scripted.headers["X-Frame-Options"] == "DENY"


def test_https_services_send_hsts(app_config: dict[str, Any]) -> None:
    from idp.factory import create_app
    from idp.stores.db import database

    app = create_app({**app_config, "BASE_URL": "https://idp.example"})
    response = app.test_client().get("/healthz", base_url="https://idp.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    database(app).engine.dispose()
    redis_client = app.extensions.get("idp.redis")
    if redis_client is not None:
        redis_client.close()
