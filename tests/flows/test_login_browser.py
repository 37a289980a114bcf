"""The login page in a real browser (Playwright + Debian chromium) against a real server
(werkzeug ``make_server`` in a thread on a free port): the SIRET form, the email form,
the single error message, and logout with its confirm button."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import factories
from tests.browser import MARKS, browser
from tests.conftest import MASTER_KEY

pytestmark = MARKS
__all__ = ["browser"]  # the shared chromium fixture (tests/browser.py)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[str]:
    from werkzeug.serving import make_server

    from idp.factory import create_app
    from idp.stores.db import database
    from rcd_store import audit
    from tests.idp.login_support import setup_directory

    audit.new_writer_segment()
    folder = tmp_path_factory.mktemp("login-browser")
    shutil.copyfile(sqlite_template, folder / "idp.sqlite3")
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{folder / 'idp.sqlite3'}",
            "INSTANCE_PATH": str(folder / "instance"),
            "MASTER_KEY": MASTER_KEY,
            "SECRET_KEY": "browser-test",
            "BASE_URL": "http://127.0.0.1",
        }
    )
    session = database(app).sessions()
    setup_directory(session)
    session.close()
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()
    database(app).engine.dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="fr-FR")
    yield context.new_page()
    context.close()


def test_login_with_the_siret_form(server: str, page: Any) -> None:
    page.goto(f"{server}/connexion?next=/bienvenue")
    page.get_by_label("SIRET de l'établissement").fill(factories.SIRET_A)
    page.get_by_label("Nom", exact=True).fill("DUPONT")
    page.get_by_label("Prénom", exact=True).fill("elodie")
    page.locator("#mot_de_passe_siret").fill(factories.PASSWORD)
    with page.expect_navigation():
        page.locator("#form-siret button[type=submit]").click()
    assert page.url == f"{server}/bienvenue"  # next followed (the page itself may be a 404)
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["idp_session"]["httpOnly"]
    # logout: a confirm button, then "Vous êtes déconnecté"
    page.goto(f"{server}/deconnexion")
    page.get_by_role("button", name="Me déconnecter").click()
    page.wait_for_selector("text=Vous êtes déconnecté")
    assert "idp_session" not in {c["name"] for c in page.context.cookies()}


def test_login_with_the_email_form_by_keyboard(server: str, page: Any) -> None:
    page.goto(f"{server}/connexion")
    page.get_by_label("Adresse électronique", exact=True).fill("elodie@dupont.example")
    page.locator("#mot_de_passe_courriel").fill(factories.PASSWORD)
    with page.expect_navigation():
        page.locator("#mot_de_passe_courriel").press("Enter")
    assert page.url.startswith(f"{server}/tableau-de-bord")
    assert "idp_session" in {c["name"] for c in page.context.cookies()}


def test_wrong_password_shows_one_message(server: str, page: Any) -> None:
    page.goto(f"{server}/connexion")
    page.get_by_label("Adresse électronique", exact=True).fill("elodie@dupont.example")
    page.locator("#mot_de_passe_courriel").fill("pas le bon mot de passe")
    with page.expect_navigation():
        page.locator("#form-courriel button[type=submit]").click()
    alert = page.get_by_role("alert")
    assert alert.inner_text().startswith("Identifiants incorrects")
