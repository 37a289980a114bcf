"""The administration in a real browser (Playwright + Debian chromium) against a live
server on one of this area's ports: an administrator (made with the domain) invites a
declarant, who opens the emailed link (the outbox's file sender) and chooses a
password; the administrator ticks a habilitation in the matrix; the declarant logs in
and sees the service on the dashboard, and a token carries it; the administrator
unticks it and the next token no longer carries it. axe-core finds no serious or
critical violation on any administration page, on a phone-sized screen too."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests import factories as f
from tests.administration.support import Directory, outbox_link, two_companies
from tests.browser import MARKS, browser
from tests.loopback import wsgi_server_in

#: this area's ports (19300-19399)
PORTS = range(19300, 19400)
pytestmark = MARKS
__all__ = ["browser"]  # the shared chromium fixture (tests/browser.py)


class Live:
    def __init__(self, app: Any, base: str, directory: Directory) -> None:
        self.app, self.base, self.d = app, base, directory


def _server(app: Any) -> Any:
    return wsgi_server_in(app, PORTS)


@pytest.fixture
def live(app_config: dict[str, Any]) -> Iterator[Live]:
    from idp.factory import create_app
    from idp.stores.db import database

    app = create_app({**app_config, "BASE_URL": "http://127.0.0.1"})
    session = database(app).sessions()
    directory = two_companies(session)
    session.close()
    httpd = _server(app)
    base = f"http://127.0.0.1:{httpd.server_port}"
    app.config["BASE_URL"] = base
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield Live(app, base, directory)
    httpd.shutdown()
    httpd.server_close()
    database(app).engine.dispose()


def no_serious_violation(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    report = Axe().run(page)
    serious = [
        (v["id"], v["help"])
        for v in report.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
    assert serious == [], (page.url, serious)


def fits_the_screen(page: Any) -> None:
    """Nothing but the matrix's own scrolling region is wider than the screen."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.url


def log_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique", exact=True).fill(email)
    page.locator("#mot_de_passe_courriel").fill(f.PASSWORD)
    with page.expect_navigation():
        page.locator("#form-courriel button[type=submit]").click()


def token_claims(live: Live, declarant_id: str) -> dict[str, Any]:
    """The claims of a fresh Interops-R token for the URSSAF partner's services."""
    from idp.stores.db import database
    from idp.tokens.issuing import issue_for_partner, token_service
    from idp.tokens.signing import ensure_keys

    ensure_keys(live.app)
    session = database(live.app).sessions()
    try:
        with live.app.app_context():
            issued = issue_for_partner(
                token_service(live.app),
                session,
                declarant_id=declarant_id,
                partner="URSSAF",
                service=None,
                fmt="jwt",
            )
        session.commit()
    finally:
        session.close()
    payload = str(issued.token).split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def _declarant_id(live: Live, email: str) -> str:
    from sqlalchemy import select

    from idp.stores.db import database
    from rcd_store.models import Declarant

    with database(live.app).sessions() as session:
        return str(session.scalars(select(Declarant.id).where(Declarant.email == email)).one())


def _save_cell(admin: Any, cell: str, granted: bool) -> None:
    admin.locator(f'input[name="accorde"][value="{cell}"]').set_checked(granted)
    with admin.expect_navigation():
        admin.get_by_role("button", name="Enregistrer les habilitations").click()
    assert "Habilitations enregistrées." in admin.get_by_role("status").inner_text()


def _invite(admin: Any) -> None:
    with admin.expect_navigation():
        admin.get_by_role("link", name="Inviter un déclarant").first.click()
    no_serious_violation(admin)
    admin.get_by_label("Nom", exact=True).fill("Nouvelle")
    admin.get_by_label("Prénom", exact=True).fill("Nina")
    admin.get_by_label("Adresse électronique").fill("nina@a.example")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Envoyer l'invitation").click()
    assert "Invitation envoyée" in admin.get_by_role("status").inner_text()
    no_serious_violation(admin)


def test_invite_grant_see_revoke(live: Live, browser: Any) -> None:
    admin = browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 740}).new_page()
    log_in(admin, live.base, "alice@a.example")
    with admin.expect_navigation():
        admin.get_by_role("link", name="Administration").click()
    no_serious_violation(admin)
    with admin.expect_navigation():
        admin.get_by_role("link", name="Boulangerie Dupont").click()
    no_serious_violation(admin)
    company = admin.url
    _invite(admin)
    link = outbox_link(live.app, "nina@a.example")
    nina = browser.new_context(locale="fr-FR").new_page()
    nina.goto(link)
    no_serious_violation(nina)
    nina.get_by_label("Mot de passe", exact=True).fill(f.PASSWORD)
    nina.get_by_label("Confirmation").fill(f.PASSWORD)
    with nina.expect_navigation():
        nina.get_by_role("button", name="Activer mon compte").click()
    nina.wait_for_selector("#invitation-acceptee")
    nina_id = _declarant_id(live, "nina@a.example")
    admin.goto(f"{company}/declarants/{nina_id}")
    no_serious_violation(admin)
    fits_the_screen(admin)
    cell = f"{f.SIRET_A}|DSN|DECLARANT"
    _save_cell(admin, cell, True)
    log_in(nina, live.base, "nina@a.example")
    assert "Service DSN" in nina.content()
    assert "DSN" in json.dumps(token_claims(live, nina_id).get("habilitations"))
    _save_cell(admin, cell, False)
    assert "DSN" not in json.dumps(token_claims(live, nina_id).get("habilitations", []))
    nina.reload()
    assert "Service DSN" not in nina.content()
    nina.context.close()
    admin.context.close()


def test_every_administration_page_is_accessible(live: Live, browser: Any) -> None:
    admin = browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 740}).new_page()
    log_in(admin, live.base, "alice@a.example")
    base = f"{live.base}/administration/entreprises/{live.d.company_a}"
    for path in (
        "/etablissements",
        "/declarants",
        "/inviter",
        f"/passation?declarant={live.d.member_a}",
    ):
        admin.goto(base + path)
        assert admin.locator("h1").count() == 1
        no_serious_violation(admin)
        fits_the_screen(admin)
    admin.goto(base + "/etablissements")
    with admin.expect_navigation():
        admin.get_by_role("link", name="732 829 320 00074").click()
    no_serious_violation(admin)
    # the search works from the keyboard alone
    admin.goto(base + "/declarants")
    admin.get_by_label("Nom, prénom ou adresse électronique (début)").fill("dup")
    with admin.expect_navigation():
        admin.get_by_label("Nom, prénom ou adresse électronique (début)").press("Enter")
    assert admin.locator('tbody th[scope="row"]').count() == 1
    # the check can fail: an unlabelled matrix box is a violation
    admin.goto(f"{base}/declarants/{live.d.member_a}")
    admin.evaluate("document.querySelectorAll('td.case label').forEach(l => l.remove())")
    with pytest.raises(AssertionError):
        no_serious_violation(admin)
    admin.context.close()
