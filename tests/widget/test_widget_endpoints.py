"""The widget's endpoints in-process: the script (budget, SRI, caching, CORS), its
settings (registered origins only) and the callback page (the code goes to the
client's registered origins only, never a forged or foreign code)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from idp import config as idp_config
from tests.idp.oauth_support import auth_params, get_code, log_in, pkce
from tests.widget.support import CLIENT_ID, callback_of, widget_world

BASE = "https://idp.test"
PARTNER = "https://partner.example"
OTHER = "https://other.example"
BUDGET = 15 * 1024
README = Path(__file__).resolve().parents[2] / "widget" / "README.md"
_RESULT = re.compile(
    r'<script type="application/json" id="interops-widget-result">(.*?)</script>', re.DOTALL
)


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    return {**app_config, "BASE_URL": BASE}


@pytest.fixture
def world(app: Any, session: Any) -> Any:
    return widget_world(app, session, base_url=BASE, origins=(PARTNER,))


def _result(html: str) -> dict[str, Any] | None:
    found = _RESULT.search(html)
    return json.loads(found.group(1)) if found else None


def test_script_is_within_budget_and_cached_for_a_year(client: Any) -> None:
    answer = client.get("/widget/v1/widget.js")
    assert answer.status_code == 200 and answer.mimetype == "text/javascript"
    assert len(answer.data) < BUDGET, f"widget.js is {len(answer.data)} bytes"
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert b"InteropsWidget" in answer.data and b"crypto.subtle.digest" in answer.data


def test_sri_is_the_hash_of_the_served_bytes_and_in_the_readme(client: Any) -> None:
    body = client.get("/widget/v1/widget.js").data
    expected = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()
    published = client.get("/widget/v1/widget.js.sri")
    assert published.status_code == 200 and published.text.strip() == expected
    assert expected in README.read_text("utf-8"), "update the integrity value in widget/README.md"


@pytest.mark.parametrize(
    ("origin", "same"),
    [
        ("https://PARTNER.example", True),
        ("https://partner.example:443", True),
        ("https://partner.example:8443", False),
        ("http://partner.example", False),
        ("https://partner.example.evil", False),
        ("null", False),
        ("https://partner.example:x", False),
    ],
)
def test_origins_compare_as_browsers_serialise_them(origin: str, same: bool) -> None:
    from widget.registry import same_origin

    assert same_origin(PARTNER, origin) is same


def test_script_cors_only_for_a_registered_origin(client: Any, world: Any) -> None:
    mine = client.get("/widget/v1/widget.js", headers={"Origin": PARTNER})
    assert mine.headers["Access-Control-Allow-Origin"] == PARTNER
    assert "Origin" in mine.headers["Vary"]
    foreign = client.get("/widget/v1/widget.js", headers={"Origin": OTHER})
    assert foreign.status_code == 200 and "Access-Control-Allow-Origin" not in foreign.headers


def test_settings_for_a_registered_origin(client: Any, world: Any) -> None:
    answer = client.get(
        f"/widget/v1/config?client_id={CLIENT_ID}&lang=en", headers={"Origin": PARTNER}
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == PARTNER
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.json["issuer"] == BASE
    assert answer.json["authorization_endpoint"] == f"{BASE}/oauth/authorize"
    assert answer.json["redirect_uri"] == callback_of(BASE)
    assert answer.json["labels"]["button"] == "Sign in with Interops"


@pytest.mark.parametrize(
    ("client_id", "origin"),
    [(CLIENT_ID, OTHER), (CLIENT_ID, None), ("unknown-client", PARTNER)],
    ids=["unregistered-origin", "no-origin", "unknown-client"],
)
def test_settings_refused_without_cors(
    client: Any, world: Any, client_id: str, origin: str | None
) -> None:
    headers = {"Origin": origin} if origin else {}
    answer = client.get(f"/widget/v1/config?client_id={client_id}", headers=headers)
    assert answer.status_code == 403 and answer.json["error"] == "origin_not_registered"
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_a_client_without_the_widget_callback_gets_no_settings(
    client: Any, world: Any, session: Any
) -> None:
    from partners.services import client_by_id

    row = client_by_id(session, CLIENT_ID)
    assert row is not None
    row.redirect_uris = ["https://partner.example/retour"]
    session.commit()
    answer = client.get(f"/widget/v1/config?client_id={CLIENT_ID}", headers={"Origin": PARTNER})
    assert answer.status_code == 403


def _widget_code(app: Any, client: Any, world: Any, state: str = "etat-widget") -> str:
    log_in(app, client, world.declarant_id)
    _verifier, challenge = pkce()
    params = auth_params(CLIENT_ID, challenge=challenge, redirect_uri=callback_of(BASE))
    params["state"] = state
    return get_code(client, params)


def test_callback_posts_the_code_to_the_registered_origins_only(
    app: Any, client: Any, world: Any
) -> None:
    code = _widget_code(app, client, world)
    page = client.get(f"/widget/v1/callback/{CLIENT_ID}?code={code}&state=etat-widget&iss={BASE}")
    assert page.status_code == 200
    payload = _result(page.text)
    assert payload is not None
    assert payload["targets"] == [PARTNER]  # from the registry, whatever the request says
    assert payload["message"] == {
        "type": "interops-widget",
        "code": code,
        "state": "etat-widget",
        "iss": BASE,
    }
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["Cache-Control"] == "no-store"
    assert '<script src="/widget/v1/callback.js">' in page.text
    script = client.get("/widget/v1/callback.js")
    assert script.status_code == 200 and b"postMessage(payload.message, origin)" in script.data


@pytest.mark.parametrize("how", ["forged", "other-client", "unknown-client", "no-origins"])
def test_callback_forwards_no_code_it_cannot_vouch_for(
    app: Any, client: Any, world: Any, session: Any, how: str
) -> None:
    from partners.services import client_by_id

    code, path = _widget_code(app, client, world), CLIENT_ID
    if how == "forged":
        code = "x" * 43
    elif how == "other-client":
        widget_world_second(session)
        path = "second-client"
    elif how == "unknown-client":
        path = "unknown-client"
    else:
        row = client_by_id(session, CLIENT_ID)
        assert row is not None
        row.origins = []
        session.commit()
    page = client.get(f"/widget/v1/callback/{path}?code={code}&state=s")
    assert page.status_code == 400
    assert _result(page.text) is None and code not in page.text and "callback.js" not in page.text


def widget_world_second(session: Any) -> None:
    """A second partner's client, with the widget: a code of the first is not its own."""
    from partners.services import ClientSettings, PartnerSettings, add_partner

    add_partner(
        session,
        PartnerSettings(
            name="Second",
            client=ClientSettings(
                client_id="second-client",
                redirect_uris=[callback_of(BASE, "second-client")],
                origins=[OTHER],
                grants=["authorization_code"],
            ),
        ),
    )
    session.commit()


def test_callback_forwards_an_authorization_error(client: Any, world: Any) -> None:
    page = client.get(f"/widget/v1/callback/{CLIENT_ID}?error=access_denied&state=s1")
    payload = _result(page.text)
    assert page.status_code == 200 and payload is not None
    assert payload["targets"] == [PARTNER]
    assert payload["message"]["error"] == "access_denied" and "code" not in payload["message"]


def test_unregistered_redirect_gets_an_error_page_and_no_code(
    app: Any, client: Any, world: Any
) -> None:
    log_in(app, client, world.declarant_id)
    _verifier, challenge = pkce()
    for target in (f"{OTHER}/widget", f"{BASE}/widget/v1/callback/second-client"):
        params = auth_params(CLIENT_ID, challenge=challenge, redirect_uri=target)
        answer = client.get("/oauth/authorize", query_string=params)
        assert answer.status_code == 400 and "Location" not in answer.headers
        assert "code=" not in answer.text


def test_login_and_consent_pages_refuse_framing(app: Any, client: Any, world: Any) -> None:
    login = client.get("/connexion")
    assert "frame-ancestors 'none'" in login.headers["Content-Security-Policy"]
    assert login.headers["X-Frame-Options"] == "DENY"
    log_in(app, client, world.declarant_id)
    _verifier, challenge = pkce()
    params = auth_params(CLIENT_ID, challenge=challenge, redirect_uri=callback_of(BASE))
    consent = client.get("/oauth/authorize", query_string=params)
    assert consent.status_code == 200 and "Autoriser" in consent.text
    assert "frame-ancestors 'none'" in consent.headers["Content-Security-Policy"]


def test_the_widget_is_plugged_in_by_the_extensions_setting(app_config: dict[str, Any]) -> None:
    from idp.factory import create_app
    from idp.stores.db import database

    assert idp_config.load(None, {"IDP_EXTENSIONS": "widget.routes, x.y"})["EXTENSIONS"] == [
        "widget.routes",
        "x.y",
    ]
    bare = create_app({**app_config, "EXTENSIONS": []})
    try:
        assert bare.test_client().get("/widget/v1/widget.js").status_code == 404
    finally:
        database(bare).engine.dispose()


@pytest.fixture
def client(app: Any) -> Any:
    agent = app.test_client()
    agent.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "idp.test"})
    return agent
