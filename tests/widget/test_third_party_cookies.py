"""The widget login with third-party cookies blocked, the blocking shown to be real
(issue 17, "Must hold").

The IdP (``https://127.0.0.1:<port>``) and the partner's site
(``https://localhost:<port>``: another site) are served over HTTPS with a throwaway
self-signed certificate made here with ``cryptography`` (for ``localhost`` and
``127.0.0.1``), chromium started with ``--ignore-certificate-errors``. A probe mounted
beside each app under ``/essai-cookies`` (the IdP's own routes untouched) embeds, in a
page of the partner's origin, a frame of the IdP's origin that sets a cookie
``SameSite=None; Secure`` and then reloads to report whether the cookie came back:

- control: in a profile whose cookie setting allows third-party cookies
  (``profile.cookie_controls_mode`` 0), the cookie IS set and sent across the two origins;
- in a profile whose setting blocks them (``cookie_controls_mode`` 1, what chromium's
  "Block third-party cookies" writes), it is NOT, while the same frame opened first-party
  keeps its cookie (the probe can see one);
- in that blocked profile, the widget login completes: mount, popup login on the IdP,
  code by ``postMessage``, redeemed with the verifier, id_token verified.

Why an explicit "allow" profile for the control rather than chromium's default: this
Debian chromium (156) blocks third-party cookies in a fresh profile and in a Playwright
``new_context`` already (measured: the same probe reports no cookie there), so its default
cannot be told from "blocked"; only a profile that allows them shows the probe would see
a third-party cookie. (Plain HTTP is not what hid it: ``localhost`` and ``127.0.0.1`` are
trustworthy origins, where chromium accepts ``Secure`` cookies; the earlier probe's cookie
had no ``SameSite=None``, so it was ``Lax`` and never set from a cross-site frame, whatever
the setting.)"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, make_response, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from tests.browser import ARGS, CHROMIUM, MARKS
from tests.widget import partner_site
from tests.widget.test_readme_receiver import own_port
from tests.widget.test_widget_browser import (
    Stack,
    _popup_login,
    serving,
    verified_login,
)

PROBE = "/essai-cookies"
COOKIE = "essai_tiers"
TLS_ARGS = [*ARGS, "--ignore-certificate-errors"]
pytestmark = MARKS


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, valid one hour."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert, private = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, private


def _probe() -> Flask:
    """``/haut?cadre=<origin>``: a page embedding ``<origin>/essai-cookies/pose``, which
    sets the cookie and reloads to ``/lu``, which tells its parent (``window.report`` too)
    whether the request carried the cookie and whether the script can read it."""
    probe = Flask("cookie_probe")

    @probe.get("/haut")
    def top() -> str:
        frame = request.args.get("cadre", "")
        if not frame.startswith("https://127.0.0.1:") or not frame[18:].isdigit():
            return "cadre refusé"
        return (
            '<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Sonde</title>'
            "<script>addEventListener('message', (e) => { window.report = e.data; });</script>"
            f'</head><body><iframe src="{frame}{PROBE}/pose" title="sonde"></iframe></body></html>'
        )

    @probe.get("/pose")
    def put() -> Any:
        page = make_response(
            '<!doctype html><title>Pose</title><script>location.replace("lu");</script>'
        )
        page.headers["Set-Cookie"] = f"{COOKIE}=1; SameSite=None; Secure; Path={PROBE}"
        return page

    @probe.get("/lu")
    def read() -> str:
        sent = f"{COOKIE}=1" in (request.headers.get("Cookie") or "")
        return (
            "<!doctype html><title>Lu</title><script>"
            f"window.report = {{sent: {json.dumps(sent)}, "
            f"script: document.cookie.includes('{COOKIE}=1')}};"
            "parent.postMessage(window.report, '*');</script>"
        )

    return probe


@pytest.fixture(scope="module")
def tls() -> Iterator[tuple[Path, ssl.SSLContext]]:
    """The certificate (its file, trusted by ``requests`` for the partner back end's
    calls) and the servers' TLS context."""
    import os
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="tls-"))
    cert, key = _certificate(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    before = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(cert)
    yield cert, context
    if before is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = before


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tls: tuple[Path, ssl.SSLContext],
) -> Iterator[Stack]:
    probe = _probe()

    def with_probe(wsgi: Any) -> Any:
        return DispatcherMiddleware(wsgi, {PROBE: probe})

    folder = tmp_path_factory.mktemp("widget-tls")
    ports = (own_port(), own_port(), own_port())
    with serving(
        request, folder, ports, scheme="https", ssl_context=tls[1], wrap=with_probe
    ) as running:
        yield running


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


def _profile(folder: Path, *, blocked: bool) -> Path:
    """A browser profile whose cookie setting allows or blocks third-party cookies."""
    if blocked:
        return partner_site.strict_profile(folder)
    profile = folder / "profil-permissif"
    (profile / "Default").mkdir(parents=True)
    preferences = {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}
    (profile / "Default" / "Preferences").write_text(json.dumps(preferences))
    return profile


def _launch(playwright: Any, profile: Path) -> Any:
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=TLS_ARGS, locale="fr-FR"
    )


def _third_party(browser: Any, stack: Stack) -> dict[str, bool]:
    """What the IdP-origin frame in the partner's page reports."""
    page = browser.new_page()
    page.goto(f"{stack.partner}{PROBE}/haut?cadre={stack.idp}")
    page.wait_for_function("window.report !== undefined", timeout=15000)
    report: dict[str, bool] = page.evaluate("window.report")
    page.close()
    return report


def test_the_control_sees_a_third_party_cookie_when_the_profile_allows_them(
    stack: Stack, playwright: Any, tmp_path: Path
) -> None:
    browser = _launch(playwright, _profile(tmp_path, blocked=False))
    try:
        assert _third_party(browser, stack) == {"sent": True, "script": True}
        assert {c["name"] for c in browser.cookies() if c["domain"] == "127.0.0.1"} >= {COOKIE}
    finally:
        browser.close()


def test_widget_login_with_third_party_cookies_blocked(
    stack: Stack, playwright: Any, tmp_path: Path
) -> None:
    profile = _profile(tmp_path, blocked=True)
    browser = _launch(playwright, profile)
    try:
        assert _third_party(browser, stack) == {"sent": False, "script": False}
        first = browser.new_page()  # the same frame, first-party: it keeps its cookie
        first.goto(f"{stack.idp}{PROBE}/pose")
        first.wait_for_function("window.report !== undefined")
        first.reload()
        first.wait_for_function("window.report !== undefined")
        assert first.evaluate("window.report") == {"sent": True, "script": True}
        page = browser.new_page()
        page.goto(f"{stack.partner}/")
        assert page.url.startswith("https://localhost:")
        verified_login(stack, _popup_login(page))
    finally:
        browser.close()
    preferences = json.loads((profile / "Default" / "Preferences").read_text())
    assert preferences["profile"]["cookie_controls_mode"] == 1  # the browser kept the setting
