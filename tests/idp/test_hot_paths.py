"""SSO navigation and login on a diet (issue 18): what each sends to the database, counted.

The rule of each needs some statements (navigation: the session, the declarant, their
rights in force and the audit trail; login: finding the declarant, the lockout counters,
the new session and the audit trail); each may add at most one more round trip. The
periodic poll of the cache generations (one small query per half second per process,
whatever the load) is kept out of the counted window."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from rcd_store import services
from rcd_store.models import AuditEvent
from tests import factories as f
from tests.idp.hot_path_support import store_calls
from tests.idp.login_support import csrf, login_siret, setup_directory
from tests.idp.portal_support import csrf_of, log_in, saml_partner

ACS = "https://urssaf.example/acs"


@pytest.fixture(autouse=True)
def _quiet_poll(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from idp.stores import generations
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    monkeypatch.setattr(generations, "POLL_SECONDS", 3600.0)


def _tables(statements: list[str]) -> list[tuple[str, str]]:
    """(verb, first table named) of each SQL statement."""
    found = []
    for statement in statements:
        words = statement.replace('"', " ").split()
        verb = words[0].upper()
        after = {"SELECT": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE", "DELETE": "FROM"}[verb]
        index = next(i for i, w in enumerate(words) if w.upper() == after)
        found.append((verb, words[index + 1].split(".")[0].lower()))
    return found


def _sql(seen: list[str]) -> list[str]:
    return [s for s in seen if not s.startswith("redis ")]


def _navigation_world(app: Any, session: Any) -> tuple[Any, Any, str]:
    f.company(session, f.SIRET_A, "Boulangerie Dupont")
    f.company(session, f.SIRET_A2, "Boulangerie Dupont")
    f.service(session, "DSN", "URSSAF", {"DECLARANT": "DSN_DECL"})
    person = f.declarant(session)
    for siret in (f.SIRET_A, f.SIRET_A2):
        services.grant_habilitation(
            session, declarant_id=person.id, siret=siret, service_code="DSN"
        )
    saml_partner(session, "URSSAF", ["DSN"], entity_id="https://urssaf.example/sp", acs=ACS)
    session.commit()
    client = app.test_client()
    log_in(app, client, person.id)
    token = csrf_of(client.get("/tableau-de-bord").get_data(as_text=True))
    return person, client, token


def test_navigation_reads_the_rule_only_and_writes_one_insert(app: Any, session: Any) -> None:
    _person, client, token = _navigation_world(app, session)
    for _ in range(2):  # warm: partners and services cached, the partner a participant
        assert client.post("/navigation/DSN", data={"csrf_token": token}).status_code == 200
    with store_calls(app) as seen:
        answer = client.post("/navigation/DSN", data={"csrf_token": token})
    assert answer.status_code == 200 and "SAMLResponse" in answer.get_data(as_text=True)
    # the session and the rule in one statement (issue 18); the rule alone when the
    # session lives in Redis
    store = "declarant" if app.extensions.get("idp.redis") is not None else "sso_session"
    assert _tables(_sql(seen)) == [("SELECT", store), ("INSERT", "audit_event")]


def _only_the_rule(done: list[tuple[str, str]]) -> None:
    """The session (SQL store), the rule in one statement (the declarant with their home
    SIRET and their rights in force with their SIRETs), and the audit trail's one INSERT:
    nothing more."""
    rule = [("SELECT", "declarant"), ("INSERT", "audit_event")]
    assert [d for d in done if d != ("SELECT", "sso_session")] == rule
    assert done.count(("SELECT", "sso_session")) <= 1  # none when sessions live in Redis


def test_navigation_events_name_the_token_in_one_write(app: Any, session: Any) -> None:
    person, client, token = _navigation_world(app, session)
    assert client.post("/navigation/DSN", data={"csrf_token": token}).status_code == 200
    session.expire_all()
    events = {e.kind: e for e in session.scalars(select(AuditEvent))}
    issued, navigation = events["token.issued"], events["portal.navigation"]
    assert navigation.actor == person.id and navigation.target == "URSSAF"
    assert json.loads(navigation.data)["token"] == json.loads(issued.data)["id"]
    assert navigation.seq == issued.seq + 1 and navigation.segment == issued.segment


def test_a_partner_changed_elsewhere_reaches_navigation(app: Any, session: Any) -> None:
    from partners.models import Partner

    _person, client, token = _navigation_world(app, session)
    assert f'action="{ACS}"' in client.post("/navigation/DSN", data={"csrf_token": token}).get_data(
        as_text=True
    )
    partner = session.scalars(select(Partner).where(Partner.name == "URSSAF")).one()
    partner.landing_url = "https://urssaf.example/arrivee"
    session.commit()  # a committed change bumps the partners generation: the cache drops it
    page = client.post("/navigation/DSN", data={"csrf_token": token}).get_data(as_text=True)
    assert 'action="https://urssaf.example/arrivee"' in page


def test_login_reads_the_declarant_in_one_statement(app: Any, session: Any) -> None:
    setup_directory(session)
    warm = app.test_client()  # this thread's segment of the audit chain opened
    csrf(warm)
    assert login_siret(warm).status_code == 303
    client = app.test_client()
    csrf(client)  # the CSRF cookie
    with store_calls(app) as seen:
        answer = login_siret(client)
    assert answer.status_code == 303
    done = [d for d in _tables(_sql(seen)) if d[1] != "login_throttle"]  # the lockout's own
    assert done == [
        ("SELECT", "declarant"),
        ("INSERT", "sso_session"),
        ("INSERT", "audit_event"),
    ] or done == [("SELECT", "declarant"), ("INSERT", "audit_event")]  # sessions in Redis


def test_login_s_lockout_takes_one_round_trip_to_reserve_and_one_to_settle(
    app: Any, session: Any
) -> None:
    """The throttle of a successful login: its counters reserved in one round trip (one
    statement, or one Redis script with the address's counter) and settled in one (the
    account reset, the address's reservation given back), whatever the second factor."""
    setup_directory(session)
    client = app.test_client()
    csrf(client)
    assert login_siret(client).status_code == 303  # warm: the scripts loaded in Redis
    with store_calls(app) as seen:
        answer = login_siret(client)
    assert answer.status_code == 303
    throttle_sql = [d for d in _tables(_sql(seen)) if d[1] == "login_throttle"]
    scripts = [s for s in seen if s.startswith("redis EVAL")]
    if app.extensions.get("idp.redis") is None:  # the database holds the account lockout
        assert throttle_sql == [("INSERT", "login_throttle"), ("UPDATE", "login_throttle")]
        assert scripts == []
    else:
        assert throttle_sql == [] and scripts == ["redis EVALSHA"] * 2


def test_saml_sso_with_a_live_session_reads_the_rule_only(app: Any, session: Any) -> None:
    from tests.idp import sso_saml_support as sp

    world = sp.make_world(app, session)
    client = app.test_client()
    sp.log_in(app, client, world.declarant_id)
    for _ in range(2):  # warm: the partner cached, a participant of the session
        assert client.get(f"/saml/sso?{sp.redirect_query(sp.authn_request())}").status_code == 200
    with store_calls(app) as seen:
        answer = client.get(f"/saml/sso?{sp.redirect_query(sp.authn_request())}")
    assert answer.status_code == 200 and "SAMLResponse" in answer.get_data(as_text=True)
    _only_the_rule(_tables(_sql(seen)))
