"""The dashboard: services grouped by establishment, mandates, live session required."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from rcd_store import services
from rcd_store.models import Declarant
from tests import factories as f
from tests.idp.portal_support import log_in, saml_partner


def _directory(session: Any) -> Any:
    f.company(session, f.SIRET_A, "Boulangerie Dupont")
    f.company(session, f.SIRET_A2, "Boulangerie Dupont")
    f.company(session, f.SIRET_B, "Transports Martin")
    f.company(session, f.SIRET_FIRM, "Cabinet Lefèvre")
    f.service(session, "DSN", "URSSAF", {"DECLARANT": "DSN_DECL", "CONSULTATION": "DSN_CONS"})
    f.service(session, "ATMP", "Assurance Maladie")
    person = f.declarant(session)
    for siret, code, role in (
        (f.SIRET_A, "DSN", "DECLARANT"),
        (f.SIRET_A, "ATMP", "DECLARANT"),
        (f.SIRET_A2, "DSN", "CONSULTATION"),
    ):
        services.grant_habilitation(
            session, declarant_id=person.id, siret=siret, service_code=code, role=role
        )
    saml_partner(
        session,
        "URSSAF",
        ["DSN"],
        entity_id="https://urssaf.example/sp",
        acs="https://urssaf.example/acs",
    )
    session.commit()
    return person


def test_without_session_redirects_to_login(app: Any) -> None:
    response = app.test_client().get("/tableau-de-bord")
    assert response.status_code == 302
    assert response.headers["Location"] == "/connexion?next=%2Ftableau-de-bord"


def test_services_grouped_by_establishment(app: Any, session: Any) -> None:
    person = _directory(session)
    client = app.test_client()
    log_in(app, client, person.id)
    response = client.get("/tableau-de-bord")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert '<html lang="fr">' in html and 'name="viewport"' in html
    assert "Bonjour Élodie Dupont." in html
    first, second = html.index('id="etab-73282932000074"'), html.index('id="etab-73282932000082"')
    section_a, section_a2 = html[first:second], html[second:]
    assert "SIRET 732 829 320 00074" in section_a
    assert "Service DSN" in section_a and "Service ATMP" in section_a
    assert "Service ATMP" not in section_a2 and "Consultation" in section_a2
    # DSN has a partner to navigate to (one POST form per partner), ATMP none
    assert section_a.count('action="/navigation/DSN"') == 1
    assert 'action="/navigation/ATMP"' not in section_a
    assert "Pas d&#39;accès en ligne à ce service" in section_a
    assert "Accéder à Service DSN chez URSSAF" in section_a
    assert 'name="csrf_token"' in section_a


def test_accounting_firm_sees_client_services(app: Any, session: Any) -> None:
    _directory(session)
    services.add_mandate(
        session, client_siren=f.SIRET_B[:9], firm_siren=f.SIRET_FIRM[:9], services=["DSN"]
    )
    accountant = f.declarant(session, f.SIRET_FIRM, "Lefèvre", "Claire", "claire@cabinet.example")
    services.grant_habilitation(
        session, declarant_id=accountant.id, siret=f.SIRET_B, service_code="DSN"
    )
    services.grant_habilitation(
        session, declarant_id=accountant.id, siret=f.SIRET_FIRM, service_code="ATMP"
    )
    session.commit()
    client = app.test_client()
    log_in(app, client, accountant.id)
    html = client.get("/tableau-de-bord").get_data(as_text=True)
    own, clients = html.index('id="etab-55208131700018"'), html.index('id="etab-44306184100013"')
    assert own < clients  # own company first, then the clients
    assert "Transports Martin" in html[clients:]
    assert "Entreprise cliente (mandat)" in html[clients:]
    assert "Entreprise cliente (mandat)" not in html[own:clients]
    assert 'action="/navigation/DSN"' in html[clients:]


def test_revoked_habilitation_leaves_the_dashboard(app: Any, session: Any) -> None:
    person = _directory(session)
    services.revoke_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="ATMP"
    )
    session.commit()
    client = app.test_client()
    log_in(app, client, person.id)
    html = client.get("/tableau-de-bord").get_data(as_text=True)
    assert "Service ATMP" not in html and "Service DSN" in html


def test_no_habilitation_says_what_to_do(app: Any, session: Any) -> None:
    f.company(session)
    person = f.declarant(session)
    session.commit()
    client = app.test_client()
    log_in(app, client, person.id)
    html = client.get("/tableau-de-bord").get_data(as_text=True)
    assert "demandez à l&#39;administrateur" in html


def test_locked_declarant_is_sent_to_login(app: Any, session: Any) -> None:
    person = _directory(session)
    client = app.test_client()
    log_in(app, client, person.id)
    session.execute(update(Declarant).where(Declarant.id == person.id).values(status="locked"))
    session.commit()
    assert client.get("/tableau-de-bord").status_code == 302


def test_english_when_the_browser_prefers_it(app: Any, session: Any) -> None:
    person = _directory(session)
    client = app.test_client()
    log_in(app, client, person.id)
    html = client.get("/tableau-de-bord?lang=en").get_data(as_text=True)
    assert "Dashboard" in html
