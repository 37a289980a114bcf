"""Registration through the widget in a real browser (Playwright + Debian chromium): the
partner's page on ``http://localhost:<port>`` mounts the widget in ``register`` mode
(« Créer un compte »), the IdP on ``http://127.0.0.1:<port>`` runs the enrolment in the
popup (``prompt=create``): the form, the verification link read from the outbox and
opened in the same browser, the activation code read from the letter. The flow resumes
and the partner page gets a code; its back end redeems it with the verifier and
verifies the id_token with ``token_suite``: its ``sub`` is the new declarant. A join
request waiting for its administrators ends with ``registration_pending`` and no code;
with popups blocked, the full-page redirect ends on the partner's ``redirectUri``.

The partner is open to identity-only use: the new declarant needs no habilitation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import select

from rcd_store.enrolment.people import Identity
from tests.browser import MARKS
from tests.conftest import MASTER_KEY
from tests.enrolment import support as s
from tests.enrolment.test_enrolment_browser import (
    Live,
    fill_request,
    letter_codes,
    log_in,
    no_serious_violation,
    open_verification,
)
from tests.flows.server_support import free_port_in
from tests.idp.registration_support import SIRET_THIRD, registration_world
from tests.widget import partner_site
from tests.widget import test_widget_browser as login_suite
from tests.widget.support import CLIENT_ID, callback_of
from tests.widget.test_widget_browser import (
    NONCE,
    Stack,
    _serve,
    _stores,
    verified_login,
)

# the login suite's browser fixtures, shared (one chromium per module)
playwright, browser, context = login_suite.playwright, login_suite.browser, login_suite.context

pytestmark = MARKS
PARTNER = "Portail Identité"
#: the ports this suite may use
PORTS = range(8100, 8200)


def _port() -> int:
    return free_port_in(PORTS)


@dataclass
class Registering:
    stack: Stack  # the partner's client (CLIENT_ID) and secret; no declarant yet
    live: Live  # the IdP app and base URL, for the outbox helpers


@pytest.fixture(scope="module")
def registering(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registering]:
    from idp.factory import create_app
    from idp.stores.db import database
    from rcd_store import audit
    from widget.routes import integrity

    audit.new_writer_segment()
    folder = tmp_path_factory.mktemp("widget-registration")
    ports = [_port() for _ in range(3)]
    while len(set(ports)) < 3:
        ports = [_port() for _ in range(3)]
    idp, partner = f"http://127.0.0.1:{ports[0]}", f"http://localhost:{ports[1]}"
    app = create_app(
        {
            **_stores(request, folder),
            "INSTANCE_PATH": str(folder / "instance"),
            "MASTER_KEY": MASTER_KEY,
            "SECRET_KEY": "widget-registration-test",
            "BASE_URL": idp,
        }
    )
    session = database(app).sessions()
    world = registration_world(
        app,
        session,
        client_id=CLIENT_ID,
        redirect_uris=(callback_of(idp), f"{partner}/retour"),
        origins=(partner,),
    )
    session.close()
    site = partner_site.create(idp=idp, client_id=CLIENT_ID, integrity=integrity())
    servers = [_serve(app, ports[0]), _serve(site, ports[1]), _serve(site, ports[2])]
    stranger = f"http://localhost:{ports[2]}"
    yield Registering(Stack(idp, partner, stranger, "", world.secret), Live(app, idp))
    for server in servers:
        server.shutdown()
        server.server_close()
    database(app).engine.dispose()


def _declarant_id(live: Live, email: str) -> str:
    from idp.stores.db import database
    from rcd_store.models import Declarant

    with database(live.app).sessions() as session:
        return str(session.scalars(select(Declarant.id).where(Declarant.email == email)).one())


def _results(page: Any) -> list[dict[str, Any]]:
    return list(page.evaluate("window.results"))


def _open_registration(page: Any, partner: str) -> Any:
    """The partner's page in register mode; « Créer un compte » opens the popup on the
    IdP's choices."""
    page.goto(f"{partner}/?mode=register")
    page.wait_for_function("window.ready()")
    with page.expect_popup() as opened:
        page.get_by_role("button", name="Créer un compte").click()
    popup = opened.value
    popup.wait_for_selector("#choix-inscription")
    return popup


def _choose(window: Any, link: str) -> None:
    with window.expect_navigation():
        window.get_by_role("link", name=link).click()


def _continue(window: Any) -> None:
    with window.expect_navigation():
        window.get_by_role("link", name=f"Continuer vers {PARTNER}").click()


def test_enrolment_in_the_popup_gives_the_partner_a_code_for_the_new_declarant(
    registering: Registering, context: Any
) -> None:
    stack, live = registering.stack, registering.live
    page = context.new_page()
    popup = _open_registration(page, stack.partner)
    no_serious_violation(popup)
    _choose(popup, "Inscrire mon entreprise")
    fill_request(popup, s.CANDIDATE, s.SIRET)
    popup.wait_for_selector("#demande-envoyee")
    assert popup.get_by_role("link", name=f"Continuer vers {PARTNER}").is_visible()
    open_verification(popup, live, s.CANDIDATE)  # the link from the outbox, in this browser
    activation, _objection, _link = letter_codes(live)
    _choose(popup, "Saisir mon code d'activation")
    log_in(popup, s.CANDIDATE)
    popup.get_by_label("Code d'activation").fill(activation)
    with popup.expect_navigation():
        popup.get_by_role("button", name="Activer").click()
    assert "Vous êtes administrateur" in popup.locator("#activation-faite").inner_text()
    assert _results(page) == []  # nothing reached the partner yet
    _continue(popup)  # the authorization request resumes: consent, then the code
    with popup.expect_event("close"):
        popup.get_by_role("button", name="Autoriser").click()
    page.wait_for_function("window.results.length > 0", timeout=15000)
    results = _results(page)
    assert len(results) == 1 and "ok" in results[0], results
    assert page.get_by_role("status").inner_text() == "Compte créé : vous êtes connecté."
    result = results[0]["ok"]
    assert result["redirectUri"] == callback_of(stack.idp)
    new = _declarant_id(live, s.CANDIDATE.email)
    vector = verified_login(replace(stack, declarant_id=new), result)
    assert vector.claims["nonce"] == NONCE
    assert vector.habilitations == () and vector.pagm == ()  # identity-only: none needed


def test_a_join_request_waiting_for_administrators_is_an_error_without_code(
    registering: Registering, context: Any
) -> None:
    stack, live = registering.stack, registering.live
    page = context.new_page()
    popup = _open_registration(page, stack.partner)
    _choose(popup, "Rejoindre mon entreprise")
    fill_request(popup, s.JOINER, s.SIRET_ELSEWHERE)
    popup.wait_for_selector("#demande-envoyee")
    _continue(popup)  # too early: the address is not verified yet, nothing is sent
    popup.wait_for_selector("#inscription-a-confirmer")
    no_serious_violation(popup)
    assert _results(page) == []
    open_verification(popup, live, s.JOINER)
    _continue(popup)
    waiting = popup.locator("#inscription-en-attente")
    assert "attend la décision de ses administrateurs" in waiting.inner_text()
    no_serious_violation(popup)
    with popup.expect_event("close"):
        popup.get_by_role("link", name=f"Revenir sur le site de {PARTNER}").click()
    page.wait_for_function("window.results.length > 0", timeout=15000)
    results = _results(page)
    assert len(results) == 1 and results[0]["error"]["error"] == "registration_pending", results
    assert page.get_by_role("status").inner_text().startswith("Votre compte n'est pas encore actif")


def test_popup_blocked_registration_ends_on_the_partner_redirect_page(
    registering: Registering, context: Any
) -> None:
    stack, live = registering.stack, registering.live
    who = Identity("Martin", "Paul", "paul@menuiserie.example", s.PASSWORD)
    context.add_init_script("window.open = () => null;")  # what a popup blocker returns
    page = context.new_page()
    page.goto(f"{stack.partner}/?mode=register")
    page.wait_for_function("window.ready()")
    with page.expect_navigation():
        page.get_by_role("button", name="Créer un compte").click()
    page.wait_for_selector("#choix-inscription")
    assert page.url == f"{stack.idp}/creer-un-compte"
    _choose(page, "Inscrire mon entreprise")
    fill_request(page, who, SIRET_THIRD)
    page.wait_for_selector("#demande-envoyee")
    open_verification(page, live, who)
    _continue(page)
    log_in(page, who)  # not logged in yet: the login page, then back to the request
    with page.expect_navigation(url=f"{stack.partner}/retour**"):
        page.get_by_role("button", name="Autoriser").click()
    page.wait_for_function("window.results.length > 0")
    results = _results(page)
    assert len(results) == 1 and "ok" in results[0], results
    assert results[0]["ok"]["redirectUri"] == f"{stack.partner}/retour"
    new = _declarant_id(live, who.email)
    verified_login(replace(stack, declarant_id=new), results[0]["ok"])
