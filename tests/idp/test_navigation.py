"""Portal navigation: one service, one minimised token, posted to the partner's landing URL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from rcd_store import services
from rcd_store.models import AuditEvent
from tests import factories as f
from tests.conftest import live_sso_sessions
from tests.idp.portal_support import (
    csrf_of,
    hidden_fields,
    jwt_partner,
    log_in,
    saml_partner,
    saml_response_of,
)
from token_suite import Trust, saml
from token_suite import jwt as interops_jwt
from token_suite.replay import InMemoryReplayCache
from token_suite.vector import Habilitation

DSN_SP = "https://urssaf.example/sp"
DSN_ACS = "https://urssaf.example/acs"


@pytest.fixture(autouse=True)
def _keys(app: Any) -> None:
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)


def _setup(session: Any) -> Any:
    f.company(session, f.SIRET_A, "Boulangerie Dupont")
    f.company(session, f.SIRET_A2, "Boulangerie Dupont")
    f.service(session, "DSN", "URSSAF", {"DECLARANT": "DSN_DECL"})
    f.service(session, "ATMP", "Assurance Maladie", {"DECLARANT": "ATMP_GESTION"})
    person = f.declarant(session)
    for siret, code in ((f.SIRET_A, "DSN"), (f.SIRET_A2, "DSN"), (f.SIRET_A, "ATMP")):
        services.grant_habilitation(session, declarant_id=person.id, siret=siret, service_code=code)
    saml_partner(session, "URSSAF", ["DSN"], entity_id=DSN_SP, acs=DSN_ACS)
    saml_partner(
        session,
        "Assurance Maladie",
        ["ATMP"],
        entity_id="https://ameli.example/sp",
        acs="https://ameli.example/acs",
    )
    session.commit()
    return person


def _navigate(client: Any, code: str, partner: str) -> Any:
    token = csrf_of(client.get("/tableau-de-bord").get_data(as_text=True))
    return client.post(f"/navigation/{code}", data={"csrf_token": token, "partner": partner})


def _verify(client: Any, document: bytes, audience: str = DSN_SP) -> Any:
    trust = Trust.from_metadata(client.get("/saml/metadata").data)
    return saml.verify(document, trust=trust, audience=audience, replay=InMemoryReplayCache())


def test_token_carries_only_the_chosen_service(app: Any, session: Any) -> None:
    person = _setup(session)
    client = app.test_client()
    sid = log_in(app, client, person.id)
    response = _navigate(client, "DSN", "URSSAF")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert f'action="{DSN_ACS}"' in html
    assert '<button type="submit">Continuer vers URSSAF</button>' in html  # works without JS
    assert "autopost.js" in html
    vector = _verify(client, saml_response_of(html))
    assert vector.subject == person.id
    assert vector.pagm == ("DSN_DECL",)
    assert set(vector.habilitations) == {
        Habilitation("DSN", f.SIRET_A, "DECLARANT"),
        Habilitation("DSN", f.SIRET_A2, "DECLARANT"),
    }
    assert "ATMP" not in saml_response_of(html).decode()
    assert vector.claims["in_response_to"] is None
    assert vector.claims["recipient"] == DSN_ACS
    assert vector.session_index == sid
    assert vector.email is None


def test_navigation_is_audited_and_the_partner_joins_the_session(app: Any, session: Any) -> None:
    person = _setup(session)
    client = app.test_client()
    sid = log_in(app, client, person.id)
    _navigate(client, "DSN", "URSSAF")
    session.expire_all()
    kinds = {(e.kind, e.actor, e.target) for e in session.scalars(select(AuditEvent))}
    assert ("portal.navigation", person.id, "URSSAF") in kinds
    assert ("token.issued", person.id, DSN_SP) in kinds
    event = session.scalars(select(AuditEvent).where(AuditEvent.kind == "portal.navigation")).one()
    assert json.loads(event.data)["service"] == "DSN"
    [row] = live_sso_sessions(app)
    assert row.sid == sid and row.participants == [
        {"protocol": "saml", "partner": "URSSAF", "name_id": person.id, "session_index": sid}
    ]


def test_revoked_habilitation_is_absent_from_the_next_token(app: Any, session: Any) -> None:
    person = _setup(session)
    client = app.test_client()
    log_in(app, client, person.id)
    first = _verify(
        client, saml_response_of(_navigate(client, "DSN", "URSSAF").get_data(as_text=True))
    )
    assert Habilitation("DSN", f.SIRET_A2, "DECLARANT") in first.habilitations
    services.revoke_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A2, service_code="DSN"
    )
    session.commit()
    second = _verify(
        client, saml_response_of(_navigate(client, "DSN", "URSSAF").get_data(as_text=True))
    )
    assert second.habilitations == (Habilitation("DSN", f.SIRET_A, "DECLARANT"),)
    services.revoke_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
    )
    session.commit()
    assert _navigate(client, "DSN", "URSSAF").status_code == 403


def test_jwt_partner_receives_an_interops_r_token(app: Any, session: Any) -> None:
    person = _setup(session)
    landing = "https://paie.example/arrivee"
    audience = jwt_partner(session, "Paie", ["ATMP"], landing_url=landing)
    client = app.test_client()
    log_in(app, client, person.id)
    html = _navigate(client, "ATMP", "Paie").get_data(as_text=True)
    assert f'action="{landing}"' in html
    token = dict(hidden_fields(html))["jeton"]
    trust = Trust.from_jwks(
        client.get("/.well-known/jwks.json").get_json(), issuer="http://idp.test"
    )
    vector = interops_jwt.verify(
        token, trust=trust, audience=audience, replay=InMemoryReplayCache()
    )
    assert vector.pagm == ("ATMP_GESTION",)
    assert vector.habilitations == (Habilitation("ATMP", f.SIRET_A, "DECLARANT"),)


def test_form_without_csrf_token_is_refused(app: Any, session: Any) -> None:
    person = _setup(session)
    client = app.test_client()
    log_in(app, client, person.id)
    client.get("/tableau-de-bord")
    assert client.post("/navigation/DSN", data={"partner": "URSSAF"}).status_code == 400


def test_without_session_goes_to_login(app: Any, session: Any) -> None:
    from idp.sessions import sso as sessions

    person = _setup(session)
    client = app.test_client()
    log_in(app, client, person.id)
    token = csrf_of(client.get("/tableau-de-bord").get_data(as_text=True))
    client.delete_cookie(sessions.COOKIE)
    response = client.post("/navigation/DSN", data={"csrf_token": token, "partner": "URSSAF"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/connexion?next=%2Ftableau-de-bord"


def test_unknown_service_or_partner_is_not_found(app: Any, session: Any) -> None:
    person = _setup(session)
    client = app.test_client()
    log_in(app, client, person.id)
    assert _navigate(client, "INCONNU", "URSSAF").status_code == 404
    assert _navigate(client, "DSN", "Assurance Maladie").status_code == 404
