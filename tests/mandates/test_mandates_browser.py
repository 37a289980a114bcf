"""The mandate pages in a real browser (Playwright + Debian chromium) on a live server
(ports 19400-19499): the client's administrator grants a mandate with the keyboard-
reachable form, the mandataire's administrator habilitates its accountant within it;
axe-core finds no serious or critical violation, on a phone-sized screen too."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from rcd_store import services
from tests import factories as f
from tests.administration.test_admin_browser import (
    fits_the_screen,
    log_in,
    no_serious_violation,
)
from tests.browser import MARKS, browser
from tests.mandates.support import World, world

pytestmark = MARKS
__all__ = ["browser"]  # the shared chromium fixture (tests/browser.py)


def _server(app: Any) -> Any:
    for port in range(19400, 19500):
        try:
            return make_server("127.0.0.1", port, app, threaded=True)
        except OSError:
            continue
    raise AssertionError("no free port in 19400-19499")


@pytest.fixture
def live(app_config: dict[str, Any]) -> Iterator[tuple[Any, str, World]]:
    from idp.factory import create_app
    from idp.stores.db import database

    app = create_app({**app_config, "BASE_URL": "http://127.0.0.1"})
    session = database(app).sessions()
    found = world(session)
    session.commit()
    session.close()
    httpd = _server(app)
    base = f"http://127.0.0.1:{httpd.server_port}"
    app.config["BASE_URL"] = base
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield app, base, found
    httpd.shutdown()
    httpd.server_close()
    database(app).engine.dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 375, "height": 740})
    yield context.new_page()
    context.close()


def test_grant_then_habilitate_in_a_browser(live: Any, page: Any) -> None:
    app, base, w = live
    log_in(page, base, "elodie@dupont.example")
    page.goto(f"{base}/administration/entreprises/{w.client_id}/mandats")
    no_serious_violation(page)
    fits_the_screen(page)
    page.get_by_label("SIREN du mandataire").fill(f.SIRET_FIRM[:9])
    page.get_by_label("Nature du mandataire").select_option("concentrateur")
    page.get_by_label("Service DSN (DSN)").check()
    page.get_by_label("Date de fin", exact=False).fill("2099-12-31")
    with page.expect_navigation():
        page.get_by_role("button", name="Accorder le mandat").click()
    assert "Mandat accordé." in page.content()
    no_serious_violation(page)
    page.context.clear_cookies()
    log_in(page, base, "paul@cabinet.example")
    page.goto(f"{base}/administration/entreprises/{w.firm_id}/mandats")
    with page.expect_navigation():
        page.get_by_role("link", name="Boulangerie Dupont").click()
    no_serious_violation(page)
    fits_the_screen(page)
    page.get_by_label("Déclarant", exact=True).select_option(label="Lefèvre Claire")
    page.get_by_label("SIRET de l'établissement du client").fill(f.SIRET_A)
    with page.expect_navigation():
        page.get_by_role("button", name="Habiliter", exact=True).click()
    assert "Habilitation accordée." in page.content()
    from idp.stores.db import database

    session = database(app).sessions()
    try:
        rights = services.active_habilitations(session, w.accountant.id)
        assert [(h.establishment.siret, h.service.code) for h in rights] == [(f.SIRET_A, "DSN")]
    finally:
        session.close()
