"""The widget in a real browser (Playwright + Debian chromium): the partner's page on
``http://localhost:<port>``, the IdP on ``http://127.0.0.1:<port>`` (two sites, two real
servers). The popup logs in on the IdP, the partner page gets the code by
``postMessage``, and the partner back end (this test) redeems it with the verifier and
verifies the id_token with ``token_suite``; the same with popups blocked (full-page
redirect and ``handleCallback``), and, over HTTPS, with third-party cookies blocked
(``test_third_party_cookies``, which shows the blocking is real). Refusals: a page on an
unregistered origin, forged messages, a wrong ``code_verifier``, framing of the login."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import pytest
import requests

from tests import factories
from tests.browser import MARKS, launch
from tests.conftest import MASTER_KEY, PG_URL, REDIS_URL
from tests.conftest import _truncate as truncate
from tests.flows.server_support import free_port
from tests.idp.oauth_support import pkce
from tests.widget import partner_site
from tests.widget.support import CLIENT_ID, callback_of, widget_world

EMAIL = "elodie@dupont.example"
NONCE = partner_site.NONCE
pytestmark = MARKS


@dataclass
class Stack:
    idp: str  # http://127.0.0.1:<port>
    partner: str  # http://localhost:<port>, registered
    stranger: str  # http://localhost:<other port>, not registered
    declarant_id: str
    secret: str


def _serve(app: Any, port: int, ssl_context: Any = None) -> Any:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, app, threaded=True, ssl_context=ssl_context)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _stores(request: pytest.FixtureRequest, folder: Path) -> dict[str, str]:
    """SQLite (a copy of the migrated template), or the emptied PostgreSQL and Redis of
    ``IDP_TEST_DATABASE_URL`` / ``IDP_TEST_REDIS_URL`` when set, as in production."""
    if not PG_URL:
        shutil.copyfile(request.getfixturevalue("sqlite_template"), folder / "idp.sqlite3")
        return {"DATABASE_URL": f"sqlite:///{folder / 'idp.sqlite3'}"}
    truncate(request.getfixturevalue("pg_engine"))
    if not REDIS_URL:
        return {"DATABASE_URL": PG_URL}
    import redis

    with redis.Redis.from_url(REDIS_URL) as client:
        client.flushdb()
    return {"DATABASE_URL": PG_URL, "REDIS_URL": REDIS_URL}


@contextmanager
def serving(
    request: pytest.FixtureRequest,
    folder: Path,
    ports: tuple[int, int, int],
    *,
    scheme: str = "http",
    ssl_context: Any = None,
    wrap: Callable[[Any], Any] = lambda wsgi: wsgi,
) -> Iterator[Stack]:
    """The IdP on ``<scheme>://127.0.0.1:<port>``, the partner's site on its registered
    origin ``<scheme>://localhost:<port>`` and on a stranger's, each served (through
    ``wrap``) until the block ends."""
    from idp.factory import create_app
    from idp.stores.db import database
    from idp.stores.models import Consent
    from rcd_store import audit
    from widget.routes import integrity

    audit.new_writer_segment()
    idp_port, partner_port, stranger_port = ports
    idp = f"{scheme}://127.0.0.1:{idp_port}"
    partner = f"{scheme}://localhost:{partner_port}"
    app = create_app(
        {
            **_stores(request, folder),
            "INSTANCE_PATH": str(folder / "instance"),
            "MASTER_KEY": MASTER_KEY,
            "SECRET_KEY": "widget-browser-test",
            "BASE_URL": idp,
        }
    )
    session = database(app).sessions()
    world = widget_world(
        app, session, base_url=idp, origins=(partner,), redirect_uris=(f"{partner}/retour",)
    )
    # consent given earlier: the popup shows the login form, then answers at once
    session.add(
        Consent(declarant_id=world.declarant_id, client_id=CLIENT_ID, scopes=["openid", "profile"])
    )
    session.commit()
    session.close()
    site = partner_site.create(idp=idp, client_id=CLIENT_ID, integrity=integrity())
    servers = [
        _serve(wrap(wsgi), port, ssl_context)
        for wsgi, port in ((app, idp_port), (site, partner_port), (site, stranger_port))
    ]
    assert world.secret is not None
    try:
        yield Stack(
            idp,
            partner,
            f"{scheme}://localhost:{stranger_port}",
            world.declarant_id,
            world.secret,
        )
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        database(app).engine.dispose()


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("widget-browser")
    with serving(request, folder, (free_port(), free_port(), free_port())) as running:
        yield running


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    chromium = launch(playwright)
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    opened = browser.new_context(locale="fr-FR")
    yield opened
    opened.close()


# --------------------------------------------------------------------- helpers


def _button(page: Any) -> Any:
    return page.get_by_role("button", name="Se connecter avec Interops")


def _log_in(window: Any) -> None:
    """The IdP's own login form, in the popup (or the redirected page)."""
    window.get_by_label("Adresse électronique", exact=True).fill(EMAIL)
    window.locator("#mot_de_passe_courriel").fill(factories.PASSWORD)
    window.locator("#mot_de_passe_courriel").press("Enter")


def _results(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate("window.results"))


def _popup_login(page: Any) -> dict[str, Any]:
    """Mount, click, log in in the popup; what the partner page's onSuccess received."""
    page.wait_for_function("window.ready()")
    with page.expect_popup() as opened:
        _button(page).click()
    popup = opened.value
    _log_in(popup)
    page.wait_for_function("window.results.length > 0", timeout=15000)
    results = _results(page)
    assert len(results) == 1 and "ok" in results[0], results
    return dict(results[0]["ok"])


def redeem(stack: Stack, result: dict[str, Any], verifier: str | None = None) -> Any:
    """The partner back end: the code and its verifier at the token endpoint."""
    return requests.post(
        f"{stack.idp}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": result["redirectUri"],
            "code_verifier": verifier or result["codeVerifier"],
        },
        auth=(CLIENT_ID, stack.secret),
        timeout=10,
    )


def verified_login(stack: Stack, result: dict[str, Any]) -> Any:
    """Redeem, then verify the id_token with token_suite against the published JWKS."""
    from token_suite import jwt as interops_jwt
    from token_suite.trust import trust_from_jwks

    answer = redeem(stack, result)
    assert answer.status_code == 200, answer.text
    jwks = requests.get(f"{stack.idp}/.well-known/jwks.json", timeout=10).json()
    vector = interops_jwt.verify(
        answer.json()["id_token"],
        trust=trust_from_jwks(jwks, issuer=stack.idp),
        audience=CLIENT_ID,
    )
    assert vector.subject == stack.declarant_id
    assert vector.claims["nonce"] == NONCE
    return vector


# ----------------------------------------------------------------------- flows


def test_popup_login_gives_the_partner_a_code_it_redeems(stack: Stack, context: Any) -> None:
    page = context.new_page()
    page.goto(f"{stack.partner}/")
    result = _popup_login(page)
    assert result["redirectUri"] == callback_of(stack.idp)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,128}", result["codeVerifier"])
    assert page.evaluate("document.getElementById('connexion').shadowRoot.mode") == "open"
    status = page.get_by_role("status")
    assert status.inner_text() == "Connexion réussie."
    verified_login(stack, result)


def test_declarative_widget_in_english(stack: Stack, context: Any) -> None:
    page = context.new_page()
    page.goto(f"{stack.partner}/declaratif")
    button = page.get_by_role("button", name="Sign in with Interops")
    with page.expect_popup() as opened:
        button.click()
    _log_in(opened.value)
    page.wait_for_function("window.results.length > 0", timeout=15000)
    result = _results(page)[0]
    assert "ok" in result, result
    verified_login(stack, result["ok"])


def test_popup_blocked_falls_back_to_a_full_page_redirect(stack: Stack, context: Any) -> None:
    context.add_init_script("window.open = () => null;")  # what a popup blocker returns
    page = context.new_page()
    page.goto(f"{stack.partner}/")
    page.wait_for_function("window.ready()")
    with page.expect_navigation():
        _button(page).click()
    assert page.url.startswith(f"{stack.idp}/connexion")
    with page.expect_navigation(url=re.compile(r".*/retour.*")):
        _log_in(page)
    page.wait_for_function("window.results.length > 0")
    results = _results(page)
    assert len(results) == 1 and "ok" in results[0], results
    result = results[0]["ok"]
    assert result["redirectUri"] == f"{stack.partner}/retour"
    assert "code=" not in page.url  # handleCallback took the code out of the address bar
    assert page.evaluate("sessionStorage.length") == 0  # the verifier is used once
    verified_login(stack, result)
    page.reload()  # the same answer again: no state any more
    page.wait_for_function("window.results.length > 0")
    assert _results(page)[0]["error"]["error"] == "invalid_state"


def test_code_redeemed_with_another_verifier_is_refused(stack: Stack, context: Any) -> None:
    page = context.new_page()
    page.goto(f"{stack.partner}/")
    result = _popup_login(page)
    wrong, _challenge = pkce()
    refused = redeem(stack, result, verifier=wrong)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert "id_token" not in refused.text


def _state_of(popup: Any) -> str:
    found = re.search(r"[?&]state=([A-Za-z0-9_-]+)", unquote(unquote(popup.url)))
    assert found, popup.url
    return found.group(1)


def test_forged_messages_are_ignored(stack: Stack, context: Any) -> None:
    page = context.new_page()
    page.goto(f"{stack.partner}/")
    page.wait_for_function("window.ready()")
    with page.expect_popup() as opened:
        _button(page).click()
    popup = opened.value
    popup.wait_for_load_state()
    state = _state_of(popup)
    forged = {"type": "interops-widget", "state": state, "code": "forged", "iss": stack.idp}
    # 1. from the partner page itself (not the IdP's origin, not the popup)
    page.evaluate("m => window.postMessage(m, '*')", forged)
    # 2. from another window of the IdP's origin (not our popup)
    with page.expect_popup() as other:
        page.evaluate("u => { window.other = window.open(u, 'autre'); }", f"{stack.idp}/connexion")
    other.value.wait_for_load_state()
    other.value.evaluate("m => window.opener.postMessage(m, '*')", {**forged, "code": "forged-2"})
    # 3. from our popup, with another state
    popup.evaluate(
        "m => window.opener.postMessage(m, '*')", {**forged, "state": "autre", "code": "forged-3"}
    )
    page.wait_for_timeout(800)
    assert _results(page) == []
    _log_in(popup)  # the real answer is still accepted
    page.wait_for_function("window.results.length > 0", timeout=15000)
    results = _results(page)
    assert len(results) == 1 and results[0]["ok"]["code"] not in ("forged", "forged-2", "forged-3")
    verified_login(stack, results[0]["ok"])


def test_unregistered_origin_gets_an_error_and_no_code(stack: Stack, context: Any) -> None:
    page = context.new_page()
    page.goto(f"{stack.stranger}/?sans_sri=1")
    page.wait_for_function("window.results.length > 0")
    results = _results(page)
    assert len(results) == 1 and results[0]["error"]["error"] == "unavailable", results
    assert _button(page).count() == 0 and page.get_by_role("button").is_disabled()
    assert page.get_by_role("status").inner_text() == "Connexion Interops indisponible sur ce site."
    # even past the widget, opening the popup by hand: the code is posted to the
    # registered origin only, so this page hears nothing
    page.evaluate("window.heard = []; addEventListener('message', e => heard.push(e.data))")
    _verifier, challenge = pkce()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": callback_of(stack.idp),
            "scope": "openid profile",
            "state": "etat-etranger",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    with page.expect_popup() as opened:
        page.evaluate(
            "u => { window.w = window.open(u, 'x'); }", f"{stack.idp}/oauth/authorize?{query}"
        )
    popup = opened.value
    _log_in(popup)
    popup.get_by_role("heading", name="Connexion réussie.").wait_for()
    assert "etat-etranger" in popup.content()  # the page did post its answer...
    page.wait_for_timeout(800)
    assert page.evaluate("window.heard") == []  # ...but not to this origin


def test_login_page_refuses_to_be_framed(stack: Stack, context: Any) -> None:
    page = context.new_page()
    refusals: list[str] = []
    page.on("console", lambda message: refusals.append(message.text))
    page.goto(f"{stack.partner}/cadre")
    page.wait_for_timeout(1000)
    frames = [frame for frame in page.frames if frame != page.main_frame]
    assert len(frames) == 1
    assert frames[0].locator("#mot_de_passe_courriel").count() == 0
    assert any("frame-ancestors" in text for text in refusals), refusals


def test_widget_button_has_no_serious_accessibility_violation(stack: Stack, context: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    page = context.new_page()
    page.goto(f"{stack.partner}/")
    page.wait_for_function("window.ready()")
    axe = Axe()
    report = axe.run(page, context="#connexion", options={"resultTypes": ["violations", "passes"]})
    serious = [
        v["id"] for v in report.response["violations"] if v.get("impact") in ("serious", "critical")
    ]
    assert serious == []
    assert "button-name" in {rule["id"] for rule in report.response["passes"]}
    # the check can fail: a button without a name is a critical violation
    page.evaluate(
        "document.getElementById('connexion').shadowRoot.querySelector('button').textContent = ''"
    )
    broken = axe.run(page, context="#connexion")
    assert "button-name" in {v["id"] for v in broken.response["violations"]}


def test_closing_the_popup_is_an_error_and_a_new_attempt_works(stack: Stack, context: Any) -> None:
    page = context.new_page()
    page.goto(f"{stack.partner}/")
    page.wait_for_function("window.ready()")
    with page.expect_popup() as opened:
        _button(page).click()
    opened.value.close()
    page.wait_for_function("window.results.length > 0")
    assert _results(page)[0]["error"]["error"] == "popup_closed"
    assert page.get_by_role("status").inner_text() == "Fenêtre de connexion fermée avant la fin."
    page.evaluate("window.results = []")
    page.wait_for_function("window.ready()")  # a fresh verifier and state
    verified_login(stack, _popup_login(page))


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("code=c&state=etat-seme&iss=http%3A%2F%2Fautre.example", "invalid_issuer"),
        ("error=access_denied&state=etat-seme&iss={idp}", "access_denied"),
        ("code=c&state=autre-etat&iss={idp}", "invalid_state"),
    ],
    ids=["other-issuer", "authorization-error", "unknown-state"],
)
def test_handle_callback_refuses_what_it_did_not_ask_for(
    stack: Stack, context: Any, answer: str, expected: str
) -> None:
    page = context.new_page()
    page.goto(f"{stack.partner}/retour")
    page.evaluate(
        "s => sessionStorage.setItem('interops-widget:etat-seme', JSON.stringify(s))",
        {
            "verifier": "v" * 43,
            "redirectUri": f"{stack.partner}/retour",
            "issuer": stack.idp,
            "at": page.evaluate("Date.now()"),
        },
    )
    page.goto(f"{stack.partner}/retour?{answer.format(idp=stack.idp)}")
    page.wait_for_function("window.results.length > 0")
    assert _results(page) == [{"error": {"error": expected, "error_description": expected}}]
    assert "state=" not in page.url


def test_the_button_works_from_the_keyboard(stack: Stack, context: Any) -> None:
    page = context.new_page()
    page.goto(f"{stack.partner}/")
    page.wait_for_function("window.ready()")
    page.keyboard.press("Tab")  # the first focusable element of the page: the widget's button
    focused = page.evaluate(
        "document.activeElement.id + ':' + "
        "document.activeElement.shadowRoot.activeElement.textContent"
    )
    assert focused == "connexion:Se connecter avec Interops"
    with page.expect_popup() as opened:
        page.keyboard.press("Enter")
    _log_in(opened.value)
    page.wait_for_function("window.results.length > 0", timeout=15000)
    assert "ok" in _results(page)[0]
