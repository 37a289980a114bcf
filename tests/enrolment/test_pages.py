"""The enrolment pages end to end with the Flask client: enrol, verify, letter,
activate; objection; join requests decided by an administrator; bad input changes
nothing; only the company's administrators decide."""

import html
import json

import pytest
from sqlalchemy import select

from rcd_store import audit
from rcd_store.models import AuditEvent
from tests.enrolment import pages_support as p
from tests.enrolment import support as s
from tests.outbox_support import emails


@pytest.fixture
def db_snapshot(db_snapshot):
    """The database's rows, but the rate-limit counters (the forms count every request
    from an address; on the runs with Redis they are not in the database at all)."""

    def take():
        rows = db_snapshot()
        rows.pop("login_throttle", None)
        return rows

    return take


@pytest.fixture
def directory(session):
    return s.company(session)


@pytest.fixture
def client(app, directory):
    return app.test_client()


def test_the_login_page_links_to_enrolment_and_join(client) -> None:
    page = client.get("/connexion").get_data(as_text=True)
    assert 'href="/inscription"' in page and 'href="/rejoindre"' in page


def test_enrol_verify_letter_activate(client, app, session) -> None:
    page = client.get("/inscription").get_data(as_text=True)
    assert '<label for="siret">' in page and 'name="csrf_token"' in page
    sent = p.submit(client, "/inscription", p.form())
    assert sent.status_code == 200 and 'id="demande-envoyee"' in sent.get_data(as_text=True)
    path = p.verification_path(app, s.CANDIDATE.email)
    confirm = client.get(path)  # opening the link uses nothing: a button confirms
    assert confirm.status_code == 200 and "Confirmer mon adresse" in confirm.get_data(as_text=True)
    assert client.get(path).status_code == 200
    assert p.verify(client, app, s.CANDIDATE.email).status_code == 200
    [letter] = [m for m in p.letters(app)]
    assert letter.recipient.startswith("Élodie Dupont\nBoulangerie Dupont")
    activation, _, _ = p.letter_codes(app)
    p.login(client, s.CANDIDATE)
    done = p.submit(client, "/inscription/activation", {"code": activation.lower()})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert 'id="activation-faite"' in done.get_data(as_text=True)
    assert client.get("/administration/demandes").status_code == 200
    kinds = {"enrolment.started", "enrolment.candidate", "enrolment.administrator"}
    audited = session.scalars(select(AuditEvent).where(AuditEvent.kind.in_(kinds))).all()
    assert {e.kind for e in audited} == kinds
    assert {json.loads(e.data)["address"] for e in audited} == {"127.0.0.1"}


def test_activation_needs_a_login(client) -> None:
    response = client.get("/inscription/activation")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"siret": "73282932000075"}, "siret", "clé de contrôle"),
        ({"siret": "abc"}, "siret", "14 chiffres"),
        ({"siret": s.SIRET_UNKNOWN}, "siret", "aucun établissement ni donnée SIRENE"),
        ({"nom": "x" * 101}, "nom", "Trop long"),
        ({"courriel": "pas-une-adresse"}, "courriel", "adresse électronique invalide"),
        ({"mot_de_passe": "court", "confirmation": "court"}, "mot_de_passe", "mot de passe refusé"),
        ({"confirmation": "autre chose encore"}, "confirmation", "pas identiques"),
        ({"prenom": "y" * 5000}, "prenom", "Trop long"),
    ],
)
def test_bad_input_is_refused_beside_its_field_and_changes_nothing(
    client, db_snapshot, changes, field, message
) -> None:
    before = db_snapshot()
    response = p.submit(client, "/inscription", p.form(**changes))
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert message in (p.field_error(page, field) or ""), page
    assert s.CANDIDATE.password not in page
    assert db_snapshot() == before


def test_a_duplicate_enrolment_and_a_used_email_are_refused(client, app, db_snapshot) -> None:
    p.enrol_and_verify(client, app)
    before = db_snapshot()
    again = p.submit(client, "/inscription", p.form(s.JOINER))
    assert again.status_code == 400
    assert "déjà en cours" in html.unescape(p.field_error(again.get_data(as_text=True), "siret"))
    used = p.submit(client, "/rejoindre", p.form(s.CANDIDATE, siret=s.SIRET_ELSEWHERE))
    assert "déjà utilisée" in html.unescape(used.get_data(as_text=True))
    assert db_snapshot() == before


def test_a_used_or_expired_link_is_refused_and_changes_nothing(client, app, db_snapshot) -> None:
    p.submit(client, "/inscription", p.form())
    path = p.verification_path(app, s.CANDIDATE.email)
    assert p.verify(client, app, s.CANDIDATE.email).status_code == 200
    before = db_snapshot()
    assert client.get(path).status_code == 400
    again = p.submit(
        client, "/inscription/verifier", {"jeton": path.split("=", 1)[1]}, page="/inscription"
    )
    assert again.status_code == 400 and "déjà utilisé" in html.unescape(
        again.get_data(as_text=True)
    )
    assert client.get("/inscription/verifier?jeton=" + "x" * 500).status_code == 400
    assert db_snapshot() == before


def test_a_form_without_its_csrf_token_is_refused(client, db_snapshot) -> None:
    before = db_snapshot()
    assert client.post("/inscription", data=p.form()).status_code == 400
    assert db_snapshot() == before


def test_a_wrong_activation_code_changes_nothing(client, app, db_snapshot) -> None:
    p.enrol_and_verify(client, app)
    p.login(client, s.CANDIDATE)
    before = db_snapshot()
    wrong = p.submit(client, "/inscription/activation", {"code": "ABCD-EFGH-JKMN-PQRS"})
    assert wrong.status_code == 400 and 'id="erreur-code"' in wrong.get_data(as_text=True)
    assert db_snapshot() == before


def test_the_objection_link_refuses_the_candidate(client, app) -> None:
    _, _, link = p.enrol_and_verify(client, app)
    shown = client.get(link).get_data(as_text=True)
    assert "Camille Martin" in shown and "Je m&#39;oppose" in shown
    done = p.submit(client, "/inscription/opposition", {"jeton": link.split("=", 1)[1]}, page=link)
    assert done.status_code == 200 and 'id="opposition-faite"' in done.get_data(as_text=True)
    again = p.submit(
        client,
        "/inscription/opposition",
        {"jeton": link.split("=", 1)[1]},
        page="/inscription/opposition",
    )
    assert again.status_code == 400
    # the candidate's account is disabled: they cannot log in to activate
    token = p.csrf(client, "/connexion?force=1")
    login = client.post(
        "/connexion",
        data={"csrf_token": token, "courriel": s.CANDIDATE.email, "mot_de_passe": s.PASSWORD},
    )
    assert login.status_code == 200  # the login page again, with its error


def test_the_objection_code_removes_an_unwanted_administrator(client, app, session) -> None:
    activation, objection, _ = p.enrol_and_verify(client, app)
    p.login(client, s.CANDIDATE)
    p.submit(client, "/inscription/activation", {"code": activation})
    other = app.test_client()
    done = p.submit(other, "/inscription/opposition", {"code": objection})
    assert "n&#39;est plus administrateur" in done.get_data(as_text=True)
    assert client.get("/administration/demandes").status_code in (302, 403)


def test_a_join_request_accepted_with_habilitations(client, app, session) -> None:
    joiner, request_id, company_id = _pending_request(client, app, s.SIRET_OTHER_ESTABLISHMENT)
    decision = p.submit(
        client,
        f"/administration/demandes/{request_id}/accepter",
        {
            "entreprise": company_id,
            "siret_0": s.SIRET_OTHER_ESTABLISHMENT,
            "service_0": "DSN",
            "role_0": "DECLARANT",
        },
        page="/administration/demandes",
    )
    assert decision.status_code == 303
    assert "acceptée" in emails(app)[-1].text
    p.login(joiner, s.JOINER)
    dashboard = joiner.get("/tableau-de-bord").get_data(as_text=True)
    assert "Service DSN" in dashboard and s.SIRET_OTHER_ESTABLISHMENT in dashboard


def _pending_request(client, app, siret=s.SIRET):
    """The candidate activated (``client`` logged in as administrator) and Louis's
    verified request: (his client, the request id, the company id) from the listing."""
    activation, _, _ = p.enrol_and_verify(client, app)
    p.login(client, s.CANDIDATE)
    p.submit(client, "/inscription/activation", {"code": activation})
    joiner = app.test_client()
    assert p.submit(joiner, "/rejoindre", p.form(s.JOINER, siret=siret)).status_code == 200
    assert p.verify(joiner, app, s.JOINER.email).status_code == 200
    listing = client.get("/administration/demandes").get_data(as_text=True)
    assert "Louis Bernard" in listing
    request_id = listing.split("/administration/demandes/", 1)[1].split("/", 1)[0]
    company_id = listing.split('name="entreprise" value="', 1)[1].split('"', 1)[0]
    return joiner, request_id, company_id


def test_a_join_request_refused_tells_the_person(client, app) -> None:
    _, request_id, company_id = _pending_request(client, app)
    refused = p.submit(
        client,
        f"/administration/demandes/{request_id}/refuser",
        {"entreprise": company_id},
        page="/administration/demandes",
    )
    assert refused.status_code == 303
    assert "refusée" in emails(app)[-1].text and emails(app)[-1].recipient == s.JOINER.email


def test_only_the_companys_administrators_see_and_decide(client, app, session, db_snapshot) -> None:
    _, request_id, company_id = _pending_request(client, app)
    s.person(session, s.SIRET_ELSEWHERE, "Admin", "Autre", "admin@autre.example", admin=True)
    s.person(session, s.SIRET, "Membre", "Simple", "membre@boulangerie.example")
    session.commit()
    others = []
    for email in ("admin@autre.example", "membre@boulangerie.example"):
        others.append(app.test_client())
        p.login(others[-1], s.Identity("", "", email, s.PASSWORD))
    before = db_snapshot()
    for other in others:
        assert other.get(f"/administration/demandes?entreprise={company_id}").status_code == 403
        for action in ("accepter", "refuser"):
            response = p.submit(
                other,
                f"/administration/demandes/{request_id}/{action}",
                {"entreprise": company_id},
                page="/inscription",
            )
            assert response.status_code == 403
        coopt = p.submit(
            other,
            "/administration/candidats/coopter",
            {"entreprise": company_id, "declarant": "D0"},
            page="/inscription",
        )
        assert coopt.status_code == 403
    assert db_snapshot() == before
    session.expire_all()
    assert audit.verify(session) == []  # refusals rolled back left the chain whole
    anonymous = app.test_client()
    assert anonymous.get("/administration/demandes").status_code == 302


def test_an_administrator_co_opts_a_candidate_on_the_page(client, app, session) -> None:
    p.enrol_and_verify(client, app)
    s.person(session, s.SIRET, "Élodie", "Dupont", "elodie@dupont.example", admin=True)
    session.commit()
    admin = app.test_client()
    p.login(admin, s.Identity("", "", "elodie@dupont.example", s.PASSWORD))
    listing = admin.get("/administration/demandes").get_data(as_text=True)
    assert "Coopter Camille Martin comme administrateur" in listing
    candidate_id = listing.split('name="declarant" value="', 1)[1].split('"', 1)[0]
    company_id = listing.split('name="entreprise" value="', 1)[1].split('"', 1)[0]
    done = p.submit(
        admin,
        "/administration/candidats/coopter",
        {"entreprise": company_id, "declarant": candidate_id},
        page="/administration/demandes",
    )
    assert done.status_code == 303
    p.login(client, s.CANDIDATE)
    assert client.get("/administration/demandes").status_code == 200
