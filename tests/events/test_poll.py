"""RFC 8936 poll: a partner pulls its SETs with a client-credentials token (scope
``events.read``), acknowledges them, and never sees another partner's."""

from __future__ import annotations

from typing import Any

from rcd_store import services
from tests import factories
from tests.events.support import our_trust, partner
from tests.idp.oauth_support import basic
from token_suite import events


def _world(app: Any, session: Any) -> dict[str, Any]:
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    factories.company(session)
    factories.service(session, "DSN", partner="URSSAF")
    factories.service(session, "DUCS", partner="AUTRE")
    client = {"client_id": "urssaf-api", "grants": ("client_credentials",)}
    found = {
        "URSSAF": partner(session, "URSSAF", "DSN", None, scopes=("events.read",), **client),
        "AUTRE": partner(session, "AUTRE", "DUCS", None),
    }
    elodie = factories.declarant(session)
    marc = factories.declarant(session, last="Martin", first="Marc", email="m@dupont.example")
    for who, code in ((elodie, "DSN"), (marc, "DUCS"), (elodie, "DUCS")):
        services.grant_habilitation(
            session, declarant_id=who.id, siret=factories.SIRET_A, service_code=code
        )
    services.revoke_habilitation(
        session, declarant_id=elodie.id, siret=factories.SIRET_A, service_code="DSN"
    )
    session.commit()
    return {**found, "elodie": elodie.id}


def _token(app: Any, session: Any, scope: str) -> str:
    from partners.models import OAuthClient
    from partners.services import hash_secret

    client = session.query(OAuthClient).filter_by(client_id="urssaf-api").one()
    client.client_secret_hash = hash_secret("secret-de-test")
    session.commit()
    answer = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        headers=basic("urssaf-api", "secret-de-test"),
    )
    assert answer.status_code == 200, answer.json
    return str(answer.json["access_token"])


def test_a_partner_polls_acknowledges_and_sees_only_its_own(app: Any, session: Any) -> None:
    world = _world(app, session)
    bearer = {"Authorization": "Bearer " + _token(app, session, "events.read")}
    client = app.test_client()
    first = client.post("/events/poll", json={"maxEvents": 1}, headers=bearer)
    assert first.status_code == 200 and first.json["moreAvailable"] is True
    both = client.post("/events/poll", json={}, headers=bearer).json
    assert both["moreAvailable"] is False
    trust = our_trust(app)
    got = [events.verify(t, trust=trust, audience=world["URSSAF"]) for t in both["sets"].values()]
    assert [(e.kind, e.subject, e.payload["service"]) for e in got] == [
        ("habilitation-granted", world["elodie"], "DSN"),
        ("habilitation-revoked", world["elodie"], "DSN"),
    ]  # Élodie's DUCS habilitation and Marc are AUTRE's business only
    first_jti = next(iter(both["sets"]))
    acked = client.post("/events/poll", json={"ack": [first_jti]}, headers=bearer).json
    assert list(acked["sets"]) == list(both["sets"])[1:]
    done = client.post("/events/poll", json={"ack": list(acked["sets"])}, headers=bearer).json
    assert done == {"sets": {}, "moreAvailable": False}


def test_a_poll_needs_the_scope_and_a_good_body(app: Any, session: Any) -> None:
    _world(app, session)
    client = app.test_client()
    assert client.post("/events/poll", json={}).status_code == 401
    bearer = {"Authorization": "Bearer " + _token(app, session, "events.read")}
    for body in ([], {"maxEvents": 1000}, {"ack": "x"}, {"other": 1}, {"setErrs": {"j": 1}}):
        answer = client.post("/events/poll", json=body, headers=bearer)
        assert answer.status_code == 400 and answer.json["err"] == "invalid_request", body
    refused = client.post("/events/poll", json={"maxEvents": 0}, headers=bearer).json
    assert refused == {"sets": {}, "moreAvailable": True}
