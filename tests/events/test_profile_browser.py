"""The profile page in a real browser (Playwright + Debian chromium) against a live
server: a declarant corrects their name (a refused one first: the error is shown beside
the field and nothing changes), asks for a new address, opens the link from the outbox
and confirms it. axe-core finds no serious or critical violation on the profile page,
with and without errors, nor on the confirmation page."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from rcd_store.models import Declarant
from tests import factories
from tests.enrolment.test_enrolment_browser import (  # noqa: F401  (fixtures)
    Live,
    browser,
    live,
    no_serious_violation,
    page,
    pytestmark,
)

EMAIL = "elodie@dupont.example"


def _person(app: Any) -> Declarant:
    from idp.stores.db import database

    session = database(app).sessions()
    try:
        found = session.scalars(select(Declarant).where(Declarant.first_name_key == "elodie"))
        return found.one()
    finally:
        session.close()


def test_a_declarant_edits_their_profile(live: Live, page: Any) -> None:  # noqa: F811
    from idp.stores.db import database
    from tests.outbox_support import emails

    session = database(live.app).sessions()
    factories.declarant(session)
    session.commit()
    session.close()
    page.goto(f"{live.base}/connexion?next=/tableau-de-bord")
    page.get_by_label("Adresse électronique", exact=True).fill(EMAIL)
    page.locator("#mot_de_passe_courriel").fill(factories.PASSWORD)
    page.locator("#mot_de_passe_courriel").press("Enter")
    page.get_by_role("link", name="Mon profil").click()
    page.get_by_role("heading", name="Mon profil", level=1).wait_for()
    no_serious_violation(page)

    page.get_by_label("Nom", exact=True).fill("   ")
    page.get_by_role("button", name="Enregistrer mon identité").click()
    alert = page.get_by_role("alert")
    assert "nom manquant" in alert.inner_text()
    assert page.get_by_label("Nom", exact=True).get_attribute("aria-invalid") == "true"
    no_serious_violation(page)
    assert _person(live.app).last_name == "Dupont"

    page.get_by_label("Nom", exact=True).fill("Dupont-Martin")
    page.get_by_role("button", name="Enregistrer mon identité").click()
    assert page.get_by_role("status").inner_text() == "Votre identité est enregistrée."
    assert _person(live.app).last_name == "Dupont-Martin"

    page.get_by_label("Nouvelle adresse électronique").fill("elodie@nouvelle.example")
    page.get_by_label("Mot de passe actuel").fill(factories.PASSWORD)
    page.get_by_role("button", name="Changer mon adresse").click()
    assert "Un lien de confirmation est envoyé" in page.get_by_role("status").inner_text()
    assert page.locator("#adresse-actuelle").inner_text() == EMAIL
    mail = [m for m in emails(live.app) if m.recipient == "elodie@nouvelle.example"][-1]
    link = re.search(rf"{re.escape(live.base)}/profil/courriel/confirmer\?\S+", mail.text)
    assert link, mail.text
    page.goto(link.group(0))
    no_serious_violation(page)
    page.get_by_role("button", name="Confirmer ma nouvelle adresse").click()
    assert "elodie@nouvelle.example" in page.get_by_role("status").inner_text()
    person = _person(live.app)
    assert (person.email, person.email_verified) == ("elodie@nouvelle.example", True)
