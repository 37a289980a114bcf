"""End to end in a real browser (Playwright + Debian chromium): the portal and two demo
partner sites, each served by werkzeug in a thread on a free port.

Log in at the portal, click a service, land authenticated on the demo partner with
only that service's PAGM; start logins from a second partner (SP-initiated SAML, then
OpenID Connect) and arrive without the password; log out at the portal and be logged
out at both partners.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import MARKS, launch
from tests.conftest import MASTER_KEY

pytestmark = MARKS
SECOND = "Partenaire démo bis"


class Served:
    """A WSGI app on a free loopback port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def portal(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[dict[str, Any]]:
    from idp.demo import directory as demo
    from idp.demo.partner import create_partner_app
    from idp.factory import create_app
    from idp.stores.db import database
    from idp.tokens.signing import ensure_keys
    from rcd_store import audit

    audit.new_writer_segment()
    folder = tmp_path_factory.mktemp("portal")
    shutil.copyfile(sqlite_template, folder / "idp.sqlite3")
    idp_port = _free_port()
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{folder / 'idp.sqlite3'}",
            "INSTANCE_PATH": str(folder / "instance"),
            "MASTER_KEY": MASTER_KEY,
            "SECRET_KEY": "browser-test",
            "BASE_URL": f"http://127.0.0.1:{idp_port}",
        }
    )
    ensure_keys(app)
    logins = demo.load(app)
    from werkzeug.serving import make_server

    idp_server = make_server("127.0.0.1", idp_port, app, threaded=True)
    threading.Thread(target=idp_server.serve_forever, daemon=True).start()
    partners = []
    for name in (demo.DEMO_PARTNER, SECOND):
        port = _free_port()
        site = demo.partner_site(app, base_url=f"http://127.0.0.1:{port}", name=name)
        demo.register_partner_site(app, site)
        server = make_server("127.0.0.1", port, create_partner_app(site), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        partners.append((site, server))
    elodie = next(login for login in logins if login.email.startswith("elodie"))
    yield {
        "idp": f"http://127.0.0.1:{idp_port}",
        "first": partners[0][0].base_url,
        "second": partners[1][0].base_url,
        "elodie": elodie,
    }
    for server in [idp_server, *(s for _, s in partners)]:
        server.shutdown()
        server.server_close()
    database(app).engine.dispose()


@pytest.fixture(scope="module")
def page(portal: dict[str, Any]) -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(locale="fr-FR")
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        tab.password_prompts = []  # type: ignore[attr-defined]
        tab.on(
            "framenavigated",
            lambda frame: (
                frame.url.split("?")[0].endswith("/connexion")
                and tab.password_prompts.append(frame.url)
            ),
        )  # type: ignore[attr-defined]
        yield tab
        context.close()
        browser.close()


def _arrival(page: Any, protocol: str) -> Any:
    return page.locator(f'section.arrivee[data-protocol="{protocol}"]')


def test_1_portal_login_then_navigation_to_the_partner(portal: dict[str, Any], page: Any) -> None:
    from idp.demo.directory import DEMO_PASSWORD

    elodie = portal["elodie"]
    page.goto(f"{portal['idp']}/tableau-de-bord")
    assert "/connexion" in page.url
    page.get_by_role("textbox", name="SIRET de l'établissement").fill(elodie.siret)
    page.get_by_role("textbox", name="Nom", exact=True).fill("DUPONT")
    page.get_by_role("textbox", name="Prénom", exact=True).fill("elodie")
    page.locator("#mot_de_passe_siret").fill(DEMO_PASSWORD)
    page.locator("#mot_de_passe_siret").press("Enter")
    page.wait_for_url(f"{portal['idp']}/tableau-de-bord")
    assert page.get_by_role("heading", name="Tableau de bord").is_visible()
    page.get_by_role(
        "button", name="Accéder à Déclaration sociale nominative chez Partenaire démo"
    ).first.click()
    page.wait_for_url(f"{portal['first']}/")  # auto-posted jeton, verified by the partner
    arrival = _arrival(page, "saml")
    assert elodie.declarant_id in arrival.locator(".sujet").inner_text()
    assert arrival.locator(".pagm").inner_text() == "DSN_DECLARANT"  # no AT/MP, no retraite
    assert "navigation depuis le portail" in arrival.inner_text()
    page.password_prompts.clear()


def test_2_second_partner_saml_without_password(portal: dict[str, Any], page: Any) -> None:
    page.goto(f"{portal['second']}/")
    assert page.locator(".anonyme").is_visible()
    page.get_by_role("link", name="Se connecter avec le service d'identité (SAML)").click()
    page.wait_for_url(f"{portal['second']}/")
    arrival = _arrival(page, "saml")
    assert portal["elodie"].declarant_id in arrival.inner_text()
    assert "connexion SAML" in arrival.inner_text()
    assert page.password_prompts == []


def test_3_second_partner_oidc_without_password(portal: dict[str, Any], page: Any) -> None:
    page.goto(f"{portal['second']}/")
    page.get_by_role(
        "link", name="Se connecter avec le service d'identité (OpenID Connect)"
    ).click()
    page.wait_for_load_state()
    if page.url.startswith(portal["idp"]):  # consent, asked once per client
        page.get_by_role("button", name="Autoriser").click()
    page.wait_for_url(f"{portal['second']}/")
    arrival = _arrival(page, "oidc")
    assert portal["elodie"].declarant_id in arrival.inner_text()
    assert page.password_prompts == []


def test_4_logout_at_the_portal_logs_out_at_both_partners(
    portal: dict[str, Any], page: Any
) -> None:
    page.goto(f"{portal['idp']}/tableau-de-bord")
    with page.expect_response(lambda r: "/saml/slo" in r.url and portal["second"] in r.url):
        page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_load_state("networkidle")
    for partner in (portal["first"], portal["second"]):
        page.goto(f"{partner}/")
        assert page.locator(".anonyme").is_visible(), f"still logged in at {partner}"
        assert page.locator("section.arrivee").count() == 0
    page.goto(f"{portal['idp']}/tableau-de-bord")
    assert "/connexion" in page.url
