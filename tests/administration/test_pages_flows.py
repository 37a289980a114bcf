"""The administration pages at work: invite, accept, set the matrix, suspend, the last
administrator kept, hand over; bad input gives a clear French message and changes
nothing (db_snapshot)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from rcd_store import administration as adm
from rcd_store import services
from rcd_store.db import utcnow
from rcd_store.enrolment.models import OneTimeCode
from tests import factories as f
from tests.administration.pages_support import alert, client_of, post, state
from tests.administration.support import Directory, outbox_link, two_companies
from tests.idp.login_support import login_email

INVITEE = {"nom": "Nouvelle", "prenom": "Nina", "courriel": "nina@a.example"}


@pytest.fixture
def d(session: Any) -> Directory:
    return two_companies(session)


def _base(d: Directory) -> str:
    return f"/administration/entreprises/{d.company_a}"


def _invite(app: Any, d: Directory, **fields: str) -> Any:
    return post(client_of(app, d.admin_a), _base(d) + "/inviter", {**INVITEE, **fields})


def test_invitation_then_acceptance_then_login(app: Any, session: Any, d: Directory) -> None:
    response = _invite(app, d)
    assert response.status_code == 303
    assert "fait=invitation" in response.headers["Location"]
    link = outbox_link(app, "nina@a.example")
    path = link.removeprefix("http://idp.test")
    visitor = app.test_client()
    page = visitor.get(path)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Boulangerie Dupont vous invite, Nina Nouvelle" in html
    token = path.split("jeton=")[1]
    mismatch = post(
        visitor,
        "/invitation",
        {"jeton": token, "mot_de_passe": f.PASSWORD, "confirmation": "autre chose encore"},
    )
    assert mismatch.status_code == 400 and "pas identiques" in alert(mismatch)
    weak = post(
        visitor, "/invitation", {"jeton": token, "mot_de_passe": "court", "confirmation": "court"}
    )
    assert weak.status_code == 400 and "Mot de passe refusé : mot de passe trop court" in alert(
        weak
    )
    done = post(
        visitor,
        "/invitation",
        {"jeton": token, "mot_de_passe": f.PASSWORD, "confirmation": f.PASSWORD},
    )
    assert done.status_code == 200 and 'id="invitation-acceptee"' in done.get_data(as_text=True)
    again = post(
        visitor,
        "/invitation",
        {"jeton": token, "mot_de_passe": f.PASSWORD, "confirmation": f.PASSWORD},
    )
    assert again.status_code == 400 and "Lien refusé" in alert(again)
    assert visitor.get(path).status_code == 400
    logged = login_email(app.test_client(), email="nina@a.example")
    assert logged.status_code == 303


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"courriel": "elodie@dupont.example"}, 409, "déjà utilisée par un déclarant"),
        (
            {"courriel": "nina@a.example"},
            409,
            "une invitation est déjà en cours pour nina@a.example",
        ),
        ({"courriel": "pas-une-adresse"}, 400, "adresse électronique invalide"),
        ({"nom": "N" * 300}, 400, "Champ trop long"),
        ({"nom": "N" * 120}, 400, "nom trop long"),
        ({"prenom": ""}, 400, "nom vide"),
    ],
)
def test_bad_invitations_change_nothing(
    app: Any, d: Directory, db_snapshot: Any, fields: dict[str, str], status: int, message: str
) -> None:
    _invite(app, d)
    before = state(db_snapshot)
    response = _invite(app, d, **fields)
    assert response.status_code == status
    text = response.get_data(as_text=True).replace("&#39;", "'")
    assert message in text
    if status != 400 or "Champ" not in message:
        assert "Opération refusée" in text
    assert state(db_snapshot) == before


@pytest.mark.parametrize("token", ["", "inconnu", "x" * 500])
def test_unknown_invitation_links(app: Any, d: Directory, token: str) -> None:
    response = app.test_client().get("/invitation?jeton=" + token)
    assert response.status_code == 400
    assert "Lien refusé : ce code ou ce lien n'est pas valable" in alert(response)


def test_expired_invitation_link(app: Any, session: Any, d: Directory, db_snapshot: Any) -> None:
    _invite(app, d)
    token = outbox_link(app, "nina@a.example").split("jeton=")[1]
    session.execute(update(OneTimeCode).values(expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    before = state(db_snapshot)
    visitor = app.test_client()
    assert "expiré" in alert(visitor.get("/invitation?jeton=" + token))
    response = post(
        visitor,
        "/invitation",
        {"jeton": token, "mot_de_passe": f.PASSWORD, "confirmation": f.PASSWORD},
    )
    assert response.status_code == 400 and "expiré" in alert(response)
    assert state(db_snapshot) == before


def _cells(*values: str) -> list[str]:
    return list(values)


def test_matrix_grants_and_revokes(app: Any, session: Any, d: Directory) -> None:
    client = client_of(app, d.admin_a)
    url = f"{_base(d)}/declarants/{d.member_a}"
    page = client.get(url).get_data(as_text=True)
    cell = f"{f.SIRET_A}|DSN|DECLARANT"
    assert f'name="cellule" value="{cell}"' in page
    assert '<th scope="col">' in page and '<th scope="row">' in page and "<caption" in page
    granted = post(client, url + "/habilitations", {"cellule": [cell], "accorde": [cell]})
    assert granted.status_code == 303 and "fait=habilitations" in granted.headers["Location"]
    session.expire_all()
    assert [h.service.code for h in services.active_habilitations(session, d.member_a)] == ["DSN"]
    shown = client.get(granted.headers["Location"]).get_data(as_text=True)
    assert "Habilitations enregistrées." in shown and 'value="' + cell + '" checked' in shown
    revoked = post(client, url + "/habilitations", {"cellule": [cell]})
    assert revoked.status_code == 303
    session.expire_all()
    assert services.active_habilitations(session, d.member_a) == []


@pytest.mark.parametrize(
    ("cells", "status"),
    [
        ([f"{f.SIRET_B}|DSN|DECLARANT"], 404),
        (["n'importe quoi"], 400),
        ([f"{f.SIRET_A}|NOPE|DECLARANT"], 400),
        ([f"{f.SIRET_A}|DSN|DECLARANT"] * 2001, 400),
    ],
)
def test_bad_matrix_posts_change_nothing(
    app: Any, d: Directory, db_snapshot: Any, cells: list[str], status: int
) -> None:
    client = client_of(app, d.admin_a)
    before = state(db_snapshot)
    response = post(
        client,
        f"{_base(d)}/declarants/{d.member_a}/habilitations",
        {"cellule": cells, "accorde": cells},
    )
    assert response.status_code == status
    assert state(db_snapshot) == before


def test_suspension_ends_the_declarant_s_access(app: Any, session: Any, d: Directory) -> None:
    person = client_of(app, d.member_a)
    assert person.get("/tableau-de-bord").status_code == 200
    admin = client_of(app, d.admin_a)
    response = post(admin, f"{_base(d)}/declarants/{d.member_a}/suspendre")
    assert response.status_code == 303
    assert "Déclarant suspendu" in admin.get(response.headers["Location"]).get_data(as_text=True)
    assert person.get("/tableau-de-bord").status_code == 302  # back to the login page
    assert login_email(app.test_client()).status_code != 303
    post(admin, f"{_base(d)}/declarants/{d.member_a}/reactiver")
    assert login_email(app.test_client()).status_code == 303


def test_the_last_administrator_cannot_go(app: Any, d: Directory, db_snapshot: Any) -> None:
    client = client_of(app, d.admin_a)
    before = state(db_snapshot)
    response = post(client, f"{_base(d)}/declarants/{d.admin_a}/fin-administrateur")
    assert response.status_code == 400
    assert "garde toujours au moins un administrateur" in alert(response)
    assert state(db_snapshot) == before


def test_hand_over(app: Any, session: Any, d: Directory) -> None:
    client = client_of(app, d.admin_a)
    confirm = client.get(f"{_base(d)}/passation?declarant={d.member_a}")
    assert "Élodie Dupont deviendra administrateur" in confirm.get_data(as_text=True)
    done = post(client, f"{_base(d)}/passation", {"declarant": d.member_a})
    assert done.status_code == 200 and "Administration transmise" in done.get_data(as_text=True)
    assert client.get("/administration/").status_code == 403
    session.expire_all()
    assert adm.admin_company_ids(session, d.member_a) == {d.company_a}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("/etablissements?page=abc", "Numéro de page invalide"),
        ("/etablissements?page=0", "Numéro de page invalide"),
        ("/declarants?q=" + "x" * 101, "Champ trop long"),
        ("/declarants?statut=nimporte", "statut inconnu"),
        ("/declarants/" + "D" * 41, "n'existe pas"),
        ("/etablissements/999999", "n'existe pas"),
    ],
)
def test_bad_queries(app: Any, d: Directory, query: str, message: str) -> None:
    response = client_of(app, d.admin_a).get(_base(d) + query)
    assert response.status_code in (400, 404)
    assert message in response.get_data(as_text=True).replace("&#39;", "'")


def test_search_and_pagination_links(app: Any, session: Any, d: Directory) -> None:
    for n in range(3):
        f.declarant(session, last=f"Zeta{n}", first="Z", email=f"z{n}@a.example")
    session.commit()
    client = client_of(app, d.admin_a)
    found = client.get(_base(d) + "/declarants?q=zeta").get_data(as_text=True)
    assert found.count('<th scope="row">') == 3 and "elodie@dupont.example" not in found
    places = client.get(_base(d) + "/etablissements?q=73282932000082").get_data(as_text=True)
    assert "732 829 320 00082" in places and "732 829 320 00074" not in places


def test_pages_in_english(app: Any, d: Directory) -> None:
    html = client_of(app, d.admin_a).get(_base(d) + "/declarants?lang=en").get_data(as_text=True)
    assert "Invite a declarant" in html and "Declarants of Boulangerie Dupont" in html


def test_company_page_links_to_the_join_requests(app: Any, d: Directory) -> None:
    html = client_of(app, d.admin_a).get(_base(d)).get_data(as_text=True)
    assert f'href="/administration/demandes?entreprise={d.company_a}"' in html
    assert "Demandes de rattachement" in html


def test_a_suspended_declarant_gets_no_machine_login_token(
    app: Any, session: Any, d: Directory
) -> None:
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    services.grant_habilitation(
        session, declarant_id=d.member_a, siret=f.SIRET_A, service_code="DSN"
    )
    session.commit()
    body = (
        f"<identifiants><siret>{f.SIRET_A}</siret><nom>DUPONT</nom><prenom>elodie</prenom>"
        f"<motdepasse>{f.PASSWORD}</motdepasse><service>DSN</service></identifiants>"
    ).encode()
    machine = app.test_client()
    ok = machine.post("/authentifier/1.0/", data=body, content_type="application/xml")
    assert ok.status_code == 200
    post(client_of(app, d.admin_a), f"{_base(d)}/declarants/{d.member_a}/suspendre")
    refused = machine.post("/authentifier/1.0/", data=body, content_type="application/xml")
    assert refused.status_code == 401
