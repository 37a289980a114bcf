"""Enrolment in a real browser (Playwright + Debian chromium) against a live server:
enrol a company, open the verification link from the outbox, read the activation code
from the letter's PDF, become administrator; the legal representative's objection
removes a candidate; a join request accepted by an administrator gives the person the
habilitations chosen (they see the service on their dashboard). axe-core finds no
serious or critical violation on the login, enrolment and join pages."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import MARKS, browser
from tests.enrolment import pages_support as p
from tests.enrolment import support as s
from tests.flows.server_support import free_port

pytestmark = MARKS
__all__ = ["browser"]  # the shared chromium fixture (tests/browser.py)


class Live:
    """The app served on a free port, and its base URL."""

    def __init__(self, app: Any, base: str) -> None:
        self.app, self.base = app, base


@pytest.fixture
def live(app_config: dict[str, Any]) -> Iterator[Live]:
    from werkzeug.serving import make_server

    from idp.factory import create_app
    from idp.stores.db import database

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app({**app_config, "BASE_URL": base})
    session = database(app).sessions()
    s.company(session)
    session.close()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield Live(app, base)
    httpd.shutdown()
    httpd.server_close()
    database(app).engine.dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(locale="fr-FR")
    yield context.new_page()
    context.close()


def no_serious_violation(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    report = Axe().run(page)
    serious = [
        (v["id"], v["help"])
        for v in report.response["violations"]
        if v.get("impact") in ("serious", "critical")
    ]
    assert serious == [], (page.url, serious)


def fill_request(page: Any, who: Any, siret: str) -> None:
    page.get_by_label("SIRET de l'établissement").fill(siret)
    page.get_by_label("Nom", exact=True).fill(who.last_name)
    page.get_by_label("Prénom", exact=True).fill(who.first_name)
    page.get_by_label("Adresse électronique").fill(who.email)
    page.get_by_label("Mot de passe", exact=True).fill(who.password)
    page.get_by_label("Confirmation du mot de passe").fill(who.password)
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer ma demande").click()


def open_verification(page: Any, live: Live, who: Any) -> None:
    mails = [m for m in p.emails(live.app) if m.recipient == who.email]
    found = re.search(
        rf"{re.escape(live.base)}(/inscription/verifier\?jeton=[\w-]+)", mails[-1].text
    )
    assert found, mails[-1].text
    page.goto(live.base + found.group(1))
    with page.expect_navigation():
        page.get_by_role("button", name="Confirmer mon adresse").click()
    page.wait_for_selector("#adresse-verifiee")


def log_in(page: Any, who: Any) -> None:
    page.get_by_label("Adresse électronique", exact=True).fill(who.email)
    page.locator("#mot_de_passe_courriel").fill(who.password)
    with page.expect_navigation():
        page.locator("#form-courriel button[type=submit]").click()


def enrol(page: Any, live: Live) -> tuple[str, str, str]:
    page.goto(f"{live.base}/connexion")
    no_serious_violation(page)
    with page.expect_navigation():
        page.get_by_role("link", name="Inscrire mon entreprise").click()
    no_serious_violation(page)
    fill_request(page, s.CANDIDATE, "73282932000075")  # a wrong check digit first
    assert "clé de contrôle" in page.locator("#erreur-siret").inner_text()
    assert page.get_by_label("SIRET de l'établissement").get_attribute("aria-invalid") == "true"
    no_serious_violation(page)  # the page with its errors too
    fill_request(page, s.CANDIDATE, s.SIRET)
    page.wait_for_selector("#demande-envoyee")
    open_verification(page, live, s.CANDIDATE)
    return letter_codes(live)


def letter_codes(live: Live) -> tuple[str, str, str]:
    text = " ".join(p.letters(live.app)[-1].text.split())
    activation = p.ACTIVATION.search(text)
    objection = p.OBJECTION.search(text)
    link = re.search(rf"{re.escape(live.base)}(/inscription/opposition\?jeton=[\w-]{{19}})", text)
    assert activation and objection and link, text
    return activation.group(1), objection.group(1), link.group(1)


def test_enrol_and_become_administrator(live: Live, page: Any) -> None:
    activation, _, _ = enrol(page, live)
    with page.expect_navigation():
        page.get_by_role("link", name="Saisir mon code d'activation").click()
    log_in(page, s.CANDIDATE)  # the activation page asks to log in first, then comes back
    assert page.url.startswith(f"{live.base}/inscription/activation")
    no_serious_violation(page)
    page.get_by_label("Code d'activation").fill(activation)
    with page.expect_navigation():
        page.get_by_role("button", name="Activer").click()
    assert "Vous êtes administrateur" in page.locator("#activation-faite").inner_text()
    with page.expect_navigation():
        page.get_by_role("link", name="Demandes pour rejoindre l'entreprise").click()
    assert page.get_by_role("heading", name="Demandes en attente").is_visible()
    no_serious_violation(page)


def test_the_legal_representatives_objection_removes_the_candidate(
    live: Live, page: Any, browser: Any
) -> None:
    _, _, link = enrol(page, live)
    representative = browser.new_context(locale="fr-FR").new_page()
    representative.goto(live.base + link)
    no_serious_violation(representative)
    assert "Camille Martin" in representative.content()
    with representative.expect_navigation():
        representative.get_by_role("button", name="Je m'oppose : retirer cette personne").click()
    assert "est refusée" in representative.locator("#opposition-faite").inner_text()
    representative.context.close()
    page.goto(f"{live.base}/connexion")
    log_in(page, s.CANDIDATE)
    assert page.get_by_role("alert").inner_text().startswith("Identifiants incorrects")


def test_a_join_request_accepted_gives_the_habilitations(
    live: Live, page: Any, browser: Any
) -> None:
    from idp.stores.db import database

    session = database(live.app).sessions()
    s.person(session, s.SIRET, "Élodie", "Dupont", "elodie@dupont.example", admin=True)
    session.commit()
    session.close()
    page.goto(f"{live.base}/connexion")
    with page.expect_navigation():
        page.get_by_role("link", name="Rejoindre mon entreprise").click()
    no_serious_violation(page)
    fill_request(page, s.JOINER, s.SIRET_OTHER_ESTABLISHMENT)
    page.wait_for_selector("#demande-envoyee")
    open_verification(page, live, s.JOINER)
    admin = browser.new_context(locale="fr-FR").new_page()
    admin.goto(f"{live.base}/administration/demandes")
    log_in(admin, s.Identity("", "", "elodie@dupont.example", s.PASSWORD))
    request = admin.locator("article.demande", has_text="Louis Bernard")
    request.get_by_label("Service (ligne 1)").select_option(label="Service DSN")
    request.get_by_label("Rôle (ligne 1)").select_option("DECLARANT")
    no_serious_violation(admin)
    with admin.expect_navigation():
        request.get_by_role("button", name="Accepter").click()
    assert "Demande acceptée" in admin.locator("#decision-faite").inner_text()
    admin.context.close()
    assert "acceptée" in p.emails(live.app)[-1].text
    page.goto(f"{live.base}/tableau-de-bord")
    log_in(page, s.JOINER)
    assert page.url.startswith(f"{live.base}/tableau-de-bord")
    assert "Service DSN" in page.content() and s.SIRET_OTHER_ESTABLISHMENT in page.content()


def _token_claims(live: Live, declarant_id: str) -> dict[str, Any]:
    """The claims of a fresh Interops-R token for the URSSAF partner (its services)."""
    import base64
    import json

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
    payload = issued.token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _declarant_id(live: Live, email: str) -> str:
    from sqlalchemy import select

    from idp.stores.db import database
    from rcd_store.models import Declarant

    with database(live.app).sessions() as session:
        return str(session.scalars(select(Declarant.id).where(Declarant.email == email)).one())


def _save_cell(admin: Any, cell: str, granted: bool) -> None:
    box = admin.locator(f'input[name="accorde"][value="{cell}"]')
    box.set_checked(granted)
    with admin.expect_navigation():
        admin.get_by_role("button", name="Enregistrer les habilitations").click()


def test_the_whole_issue_scenario(live: Live, page: Any, browser: Any) -> None:
    """Enrol, activate, invite a declarant (they choose their password through the
    emailed link), grant a habilitation: they log in and see the service; revoke it and
    the next token no longer carries it."""
    activation, _, _ = enrol(page, live)
    page.goto(f"{live.base}/inscription/activation")
    log_in(page, s.CANDIDATE)
    page.get_by_label("Code d'activation").fill(activation)
    with page.expect_navigation():
        page.get_by_role("button", name="Activer").click()
    page.goto(f"{live.base}/administration/")
    with page.expect_navigation():
        page.get_by_role("link", name="Boulangerie Dupont").first.click()
    with page.expect_navigation():
        page.get_by_role("link", name="Inviter un déclarant").click()
    page.get_by_label("Nom", exact=True).fill("Durand")
    page.get_by_label("Prénom", exact=True).fill("Paul")
    page.get_by_label("Adresse électronique").fill("paul@boulangerie.example")
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer l'invitation").click()
    invitation = [m for m in p.emails(live.app) if m.recipient == "paul@boulangerie.example"]
    found = re.search(rf"{re.escape(live.base)}(/invitation\?jeton=[\w-]+)", invitation[-1].text)
    assert found, invitation[-1].text
    paul = browser.new_context(locale="fr-FR").new_page()
    paul.goto(live.base + found.group(1))
    paul.get_by_label("Mot de passe", exact=True).fill(s.PASSWORD)
    paul.get_by_label("Confirmation").fill(s.PASSWORD)
    with paul.expect_navigation():
        paul.get_by_role("button", name="Activer mon compte").click()
    paul.wait_for_selector("#invitation-acceptee")
    paul_id = _declarant_id(live, "paul@boulangerie.example")
    company = re.search(r"/administration/entreprises/\d+", page.url)
    assert company, page.url
    company_path = live.base + company.group(0)
    page.goto(f"{company_path}/declarants/{paul_id}")
    cell = f"{s.SIRET}|DSN|DECLARANT"
    _save_cell(page, cell, True)
    paul.goto(f"{live.base}/tableau-de-bord")
    log_in(paul, s.Identity("", "", "paul@boulangerie.example", s.PASSWORD))
    assert "Service DSN" in paul.content()
    granted = _token_claims(live, paul_id)
    assert any("DSN" in json_text(h) for h in granted["habilitations"]), granted
    page.goto(f"{company_path}/declarants/{paul_id}")
    _save_cell(page, cell, False)
    assert "habilitations" not in _token_claims(live, paul_id)
    paul.reload()
    assert "Service DSN" not in paul.content()
    paul.context.close()


def json_text(value: Any) -> str:
    import json

    return json.dumps(value)
