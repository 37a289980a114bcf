"""The operator console in a real browser (Playwright + Debian chromium) against a live
server on one of this area's ports: the operator logs in with the password and a TOTP
code (pyotp), adds a partner (first with a bad lifetime, refused beside the field), adds
a client with a widget origin (its secret shown once), edits the partner and the
client. axe-core finds no serious or critical violation on any console page, a refused
form included, on a phone-sized screen too."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from partners.models import OAuthClient, Partner
from partners.services import secret_matches
from rcd_store.models import AuditEvent
from tests import factories as f
from tests.administration.test_admin_browser import (  # the admin pages' browser set-up
    browser,
    no_serious_violation,
    pytestmark,
)
from tests.console.support import OPERATOR_EMAIL, Console, set_up
from tests.loopback import wsgi_server_in

__all__ = ["browser", "pytestmark"]
#: this area's ports
PORTS = range(8300, 8400)


class Live:
    def __init__(self, app: Any, base: str, console: Console) -> None:
        self.app, self.base, self.c = app, base, console

    def session(self) -> Any:
        from idp.stores.db import database

        return database(self.app).sessions()


def _server(app: Any) -> Any:
    return wsgi_server_in(app, PORTS)


@pytest.fixture
def live(app_config: dict[str, Any]) -> Iterator[Live]:
    from idp.factory import create_app
    from idp.stores.db import database

    app = create_app({**app_config, "BASE_URL": "http://127.0.0.1"})
    session = database(app).sessions()
    console = set_up(app, session)
    session.close()
    httpd = _server(app)
    base = f"http://127.0.0.1:{httpd.server_port}"
    app.config["BASE_URL"] = base
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield Live(app, base, console)
    httpd.shutdown()
    httpd.server_close()
    database(app).engine.dispose()


def _operator_logs_in(live: Live, page: Any) -> None:
    page.goto(f"{live.base}/console/")
    assert "/connexion" in page.url
    page.get_by_label("Adresse électronique", exact=True).fill(OPERATOR_EMAIL)
    page.locator("#mot_de_passe_courriel").fill(f.PASSWORD)
    with page.expect_navigation():
        page.locator("#form-courriel button[type=submit]").click()
    page.get_by_label("Code à 6 chiffres", exact=False).fill(pyotp.TOTP(live.c.totp).now())
    with page.expect_navigation():
        page.get_by_role("button", name="Valider").click()


def _save(page: Any, button: str) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()
    no_serious_violation(page)


def _add_partner(page: Any) -> None:
    with page.expect_navigation():
        page.get_by_role("link", name="Ajouter un partenaire").click()
    no_serious_violation(page)
    page.get_by_label("Nom de l'organisme").fill("Caisse Nationale")
    page.get_by_label("URL d'arrivée").fill("https://cnav.example/arrivee")
    page.get_by_label("Format du jeton").select_option("jwt")
    page.get_by_label("Durée de vie des jetons").fill("3600")
    page.get_by_label("DSN — Service DSN").check()
    _save(page, "Enregistrer le partenaire")
    field = page.get_by_label("Durée de vie des jetons")
    assert field.get_attribute("aria-invalid") == "true"
    assert "entre 30 et 300 secondes" in page.locator("#duree-erreur").inner_text()
    assert page.get_by_label("Nom de l'organisme").input_value() == "Caisse Nationale"
    field.fill("120")
    _save(page, "Enregistrer le partenaire")
    assert "Partenaire enregistré." in page.get_by_role("status").inner_text()


def _add_client(page: Any) -> str:
    with page.expect_navigation():
        page.get_by_role("link", name="Ajouter un client").click()
    no_serious_violation(page)
    page.get_by_label("Identifiant du client").fill("cnav-widget")
    page.get_by_label("URI de retour").fill("https://cnav.example/retour")
    page.get_by_label("Origines du widget").fill("https://cnav.example")
    page.get_by_label("Authentification du client").select_option("client_secret_basic")
    _save(page, "Enregistrer le client")
    secret = str(page.get_by_label("Secret", exact=True).input_value())
    with page.expect_navigation():
        page.get_by_role("link", name="Retour au partenaire").click()
    assert secret not in page.content()  # shown once
    return secret


def _theme(page: Any) -> None:
    """A theme whose text cannot be read on its background is refused, then one is set."""
    with page.expect_navigation():
        page.get_by_role("link", name="Modifier le thème du widget").click()
    no_serious_violation(page)
    page.get_by_label("Couleur du bouton", exact=False).fill("#777777")
    page.get_by_label("Couleur du texte du bouton", exact=False).fill("#888888")
    page.get_by_label("Libellé du bouton en français").fill("Se connecter")
    _save(page, "Enregistrer le thème")
    assert "contraste insuffisant" in page.locator("#theme_texte-erreur").inner_text()
    page.get_by_label("Couleur du texte du bouton", exact=False).fill("#ffffff")
    page.get_by_label("Couleur du bouton", exact=False).fill("#1a5e20")
    _save(page, "Enregistrer le thème")
    assert "Thème du widget enregistré." in page.get_by_role("status").inner_text()


def test_operator_adds_and_edits_a_partner(live: Live, browser: Any) -> None:
    page = browser.new_context(locale="fr-FR", viewport={"width": 375, "height": 740}).new_page()
    _operator_logs_in(live, page)
    assert page.url == f"{live.base}/console/"
    no_serious_violation(page)
    _add_partner(page)
    secret = _add_client(page)
    no_serious_violation(page)
    # edit the partner: another landing URL, the ATMP service instead of DSN
    page.get_by_label("URL d'arrivée").fill("https://cnav.example/portail")
    page.get_by_label("DSN — Service DSN").uncheck()
    page.get_by_label("ATMP — Service ATMP").check()
    _save(page, "Enregistrer les réglages")
    assert "Réglages du partenaire enregistrés." in page.get_by_role("status").inner_text()
    # edit the client: a second widget origin
    with page.expect_navigation():
        page.get_by_role("link", name="cnav-widget").click()
    no_serious_violation(page)
    page.get_by_label("Origines du widget").fill("https://cnav.example\nhttps://w.cnav.example")
    _save(page, "Enregistrer le client")
    assert "Client enregistré." in page.get_by_role("status").inner_text()
    _theme(page)  # from the partner's page, where the client's save led
    with page.expect_navigation():
        page.get_by_role("link", name="Importer des métadonnées SAML").click()
    no_serious_violation(page)
    with live.session() as session:
        partner = session.scalars(select(Partner).where(Partner.name == "Caisse Nationale")).one()
        assert partner.landing_url == "https://cnav.example/portail"
        assert [s.code for s in partner.services] == ["ATMP"]
        assert partner.token_lifetime_seconds == 120 and partner.token_format == "jwt"
        client = session.scalars(select(OAuthClient).where(OAuthClient.partner_id == partner.id))
        (found,) = client.all()
        assert found.origins == ["https://cnav.example", "https://w.cnav.example"]
        assert secret_matches(found.client_secret_hash, secret)
        assert partner.theme == {
            "primary": "#1a5e20",
            "text": "#ffffff",
            "label": {"fr": "Se connecter"},
        }
        actors = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.target == "Caisse Nationale")
        ).all()
        assert actors and set(actors) == {live.c.operator}
    page.context.close()
