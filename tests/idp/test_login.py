"""The login page: both identifier kinds, one error message, session renewal, CSRF, redirects."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from idp.auth.login import login_required
from rcd_store.models import AuditEvent, Declarant
from tests import factories
from tests.idp.login_support import (
    csrf,
    error_of,
    login_email,
    login_siret,
    post,
    session_cookie,
    setup_directory,
)
from token_suite.vector import ACR_PASSWORD


@pytest.fixture
def declarant(session: Any) -> Any:
    return setup_directory(session)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def test_page_is_french_labelled_and_not_frameable(client: Any) -> None:
    response = client.get("/connexion")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    for field_id in (
        "siret",
        "nom",
        "prenom",
        "mot_de_passe_siret",
        "courriel",
        "mot_de_passe_courriel",
    ):
        assert f'<label for="{field_id}">' in html
        assert f'id="{field_id}"' in html
    assert "Mot de passe" in html and 'lang="fr"' in html


def test_siret_login_opens_a_session_and_redirects(
    client: Any, session: Any, declarant: Any, sso_sessions: Any
) -> None:
    response = login_siret(client, last="DUPONT", first="elodie")
    assert response.status_code == 303
    assert response.headers["Location"] == "/tableau-de-bord"
    rows = sso_sessions()
    assert [r.declarant_id for r in rows] == [declarant.id]
    assert rows[0].acr == ACR_PASSWORD and rows[0].amr == ["pwd"]
    kinds = session.scalars(select(AuditEvent.kind).where(AuditEvent.actor == declarant.id))
    assert "login.succeeded" in set(kinds)


def test_email_login(client: Any, session: Any, declarant: Any, sso_sessions: Any) -> None:
    response = login_email(client, email="Elodie@Dupont.example")
    assert response.status_code == 303
    assert [r.declarant_id for r in sso_sessions()] == [declarant.id]


def test_names_match_whatever_case_accents_spacing(client: Any, declarant: Any) -> None:
    assert login_siret(client, last="  dupont ", first="ÉLODIE").status_code == 303


def test_siret_login_through_habilitation_on_another_company(
    client: Any, session: Any, declarant: Any, idp: Any
) -> None:
    from rcd_store import services

    factories.company(session, siret=factories.SIRET_B, name="Client du cabinet")
    services.add_mandate(
        session,
        client_siren=factories.SIRET_B[:9],
        firm_siren=factories.SIRET_A[:9],
        services=["DSN"],
    )
    session.commit()
    assert login_siret(client, siret=factories.SIRET_B).status_code == 200  # no right there yet
    result = idp(
        "habilitation",
        "grant",
        "--declarant",
        declarant.id,
        "--siret",
        factories.SIRET_B,
        "--service",
        "DSN",
    )
    assert result.code == 0, result.err
    assert login_siret(client, siret=factories.SIRET_B).status_code == 303


def test_one_message_for_wrong_password_and_unknown_identifiers(
    client: Any, declarant: Any
) -> None:
    wrong_password = login_siret(client, password="pas le bon mot de passe")
    unknown_siret = login_siret(client, siret=factories.SIRET_B)
    unknown_name = login_siret(client, last="Durand")
    unknown_email = login_email(client, email="personne@inconnu.example")
    wrong_email_password = login_email(client, password="pas le bon mot de passe")
    messages = {
        error_of(r)
        for r in (wrong_password, unknown_siret, unknown_name, unknown_email, wrong_email_password)
    }
    assert len(messages) == 1
    message = messages.pop()
    assert message and message.startswith("Identifiants incorrects")
    assert {r.status_code for r in (wrong_password, unknown_siret, unknown_email)} == {200}
    assert session_cookie(client) is None


def test_failures_are_audited_by_id_only(client: Any, session: Any, declarant: Any) -> None:
    login_siret(client, password="pas le bon mot de passe")
    login_siret(client, last="Inconnu")
    events = list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "login.failed").order_by(AuditEvent.id)
        )
    )
    assert [e.actor for e in events] == [declarant.id, None]
    for event in events:
        assert "Dupont" not in event.data and "Inconnu" not in event.data
        assert factories.SIRET_A not in event.data


def test_form_without_csrf_token_is_refused_and_changes_nothing(
    client: Any, declarant: Any, db_snapshot: Any
) -> None:
    client.get("/connexion")
    before = db_snapshot()
    response = client.post(
        "/connexion",
        data={
            "siret": factories.SIRET_A,
            "nom": "Dupont",
            "prenom": "Élodie",
            "mot_de_passe": factories.PASSWORD,
        },
    )
    assert response.status_code == 400
    assert db_snapshot() == before
    assert session_cookie(client) is None


def test_session_id_changes_at_login_and_old_one_dies(
    client: Any, session: Any, declarant: Any, sso_sessions: Any
) -> None:
    assert login_siret(client).status_code == 303
    first = session_cookie(client)
    assert login_siret(client, force="1").status_code == 303
    second = session_cookie(client)
    assert first and second and first != second
    assert len(sso_sessions()) == 1
    # the old cookie no longer opens anything
    client.set_cookie("idp_session", first)
    assert client.get("/connexion").status_code == 200  # the form: no live session


def test_planted_cookie_is_not_promoted(client: Any, session: Any, declarant: Any) -> None:
    client.set_cookie("idp_session", "cookie-choisi-par-un-attaquant")
    login_siret(client)
    assert session_cookie(client) != "cookie-choisi-par-un-attaquant"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/%0d%0aSet-Cookie:x",
        "/\tevil",
    ],
)
def test_no_open_redirect(client: Any, declarant: Any, target: str) -> None:
    response = login_siret(client, next=target)
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == "/tableau-de-bord" or (location.startswith("/") and "evil" not in location)


def test_next_local_path_is_followed(client: Any, declarant: Any) -> None:
    response = login_siret(client, next="/saml/sso/reprise?id=abc")
    assert response.headers["Location"] == "/saml/sso/reprise?id=abc"


def test_live_session_skips_the_form_unless_forced(
    client: Any, session: Any, declarant: Any, sso_sessions: Any
) -> None:
    login_siret(client)
    skipped = client.get("/connexion?next=/oauth/authorize%3Fx%3D1")
    assert skipped.status_code == 302 and skipped.headers["Location"] == "/oauth/authorize?x=1"
    forced = client.get("/connexion?next=/x&force=1")
    assert forced.status_code == 200 and 'name="force" value="1"' in forced.get_data(as_text=True)
    before = sso_sessions()[0].auth_time
    assert login_siret(client, force="1", next="/x").headers["Location"] == "/x"
    after = sso_sessions()[0].auth_time
    assert after > before


def test_login_required_helper(app: Any) -> None:
    with app.test_request_context("/"):
        response = login_required("/saml/sso?SAMLRequest=x", force=True)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/connexion?next=%2Fsaml%2Fsso")
    assert "force=1" in response.headers["Location"]
    with app.test_request_context("/"):
        assert login_required("https://evil.example").headers["Location"] == (
            "/connexion?next=%2Ftableau-de-bord"
        )


def test_authenticated_declarant(app: Any, client: Any, declarant: Any) -> None:
    from idp.auth.login import authenticated_declarant

    login_siret(client)
    cookie = session_cookie(client)
    with app.test_request_context("/", headers={"Cookie": f"idp_session={cookie}"}):
        found = authenticated_declarant()
        assert found is not None and found[1].id == declarant.id
    with app.test_request_context("/"):
        assert authenticated_declarant() is None


def test_disabled_declarant_cannot_log_in(client: Any, session: Any, declarant: Any) -> None:
    row = session.get(Declarant, declarant.id)
    row.status = "disabled"
    session.commit()
    response = login_siret(client)
    assert response.status_code == 200 and error_of(response).startswith("Identifiants incorrects")


def test_rehash_on_login(app: Any, client: Any, session: Any, declarant: Any) -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(factories.PASSWORD)
    row = session.get(Declarant, declarant.id)
    row.password_hash = weak
    session.commit()
    assert login_siret(client).status_code == 303
    session.expire_all()
    assert session.get(Declarant, declarant.id).password_hash != weak


def test_logout_get_shows_a_button_and_post_ends_the_session(
    client: Any, session: Any, declarant: Any, sso_sessions: Any
) -> None:
    from idp.sessions import sso as sessions

    login_siret(client)
    row = sso_sessions()[0]
    calls: list[str] = []

    def builder(participant: dict[str, Any], sso: Any) -> str:
        calls.append(sso.sid)
        return f"https://sp.example/slo?who={participant['partner']}"

    sessions.register_logout_builder(client.application, "test-proto", builder)
    with client.application.app_context():
        sessions.add_participant(session, row, {"partner": "urssaf", "protocol": "test-proto"})
    session.commit()
    page = client.get("/deconnexion").get_data(as_text=True)
    assert '<form method="post"' in page and "Me déconnecter" in page
    assert sso_sessions()  # GET changes nothing
    assert client.post("/deconnexion").status_code == 400  # no CSRF token
    response = post(client, "/deconnexion", {}, token_from="/deconnexion")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Vous êtes déconnecté" in html
    assert 'src="https://sp.example/slo?who=urssaf"' in html and calls == [row.sid]
    assert sso_sessions() == []
    assert session_cookie(client) is None


def test_audit_counts(client: Any, session: Any, declarant: Any) -> None:
    login_siret(client)
    count = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "login.succeeded")
    )
    assert count == 1
    assert csrf(client)
