"""Inbound trust: a trusted portal's signed jeton opens a session; anything else is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from idp.sessions import sso as sessions
from keys.generate import generate_key
from keys.model import KeyUse
from rcd_store import services
from rcd_store.models import AuditEvent, Declarant
from tests import factories as f
from tests.conftest import clear_sso_sessions, live_sso_sessions
from tests.idp.portal_support import saml_partner
from token_suite import saml
from token_suite.vector import IdentityVector

PORTAL = "https://cabinet-plateforme.example/sp"
IDP_ENTITY = "urn:interops:73282932000074:idp:demo"


@pytest.fixture
def world(session: Any) -> Any:
    f.company(session)
    f.service(session, "DSN", "URSSAF")
    person = f.declarant(session)
    services.grant_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
    )
    key = _portal(session)
    session.commit()
    return person.id, key


def _portal(session: Any) -> Any:
    """The trusted portal « Plateforme Cabinet », serving DSN; returns its signing key."""
    return saml_partner(
        session,
        "Plateforme Cabinet",
        ["DSN"],
        entity_id=PORTAL,
        acs="https://cabinet-plateforme.example/acs",
        trusted_portal=True,
    )


def _jeton(
    subject: str,
    key: Any,
    *,
    issuer: str = PORTAL,
    audience: str = IDP_ENTITY,
    now: datetime | None = None,
) -> str:
    document = saml.issue(
        IdentityVector(subject=subject),
        signer=key,
        issuer=issuer,
        audience=audience,
        recipient="http://idp.test/confiance/entrante",
        now=now or datetime.now(UTC),
    )
    return base64.b64encode(document).decode("ascii")


def _post(app: Any, jeton: str, **extra: str) -> Any:
    return app.test_client().post("/confiance/entrante", data={"SAMLResponse": jeton, **extra})


def test_trusted_portal_opens_a_session(
    app: Any, session: Any, world: Any, sso_sessions: Any
) -> None:
    declarant_id, key = world
    client = app.test_client()
    response = client.post("/confiance/entrante", data={"SAMLResponse": _jeton(declarant_id, key)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/tableau-de-bord"
    assert "HttpOnly" in response.headers["Set-Cookie"]
    [row] = sso_sessions()
    assert row.declarant_id == declarant_id and row.origin == "inbound:Plateforme Cabinet"
    event = session.scalars(select(AuditEvent).where(AuditEvent.kind == "login.inbound")).one()
    assert (event.actor, event.target) == (declarant_id, "Plateforme Cabinet")
    assert json.loads(event.data)["sid"] == row.sid
    assert client.get("/tableau-de-bord").status_code == 200  # the session is live


def test_relay_state_only_to_a_local_path(app: Any, world: Any) -> None:
    declarant_id, key = world
    local = _post(app, _jeton(declarant_id, key), RelayState="/tableau-de-bord?x=1")
    assert local.headers["Location"] == "/tableau-de-bord?x=1"
    away = _post(app, _jeton(declarant_id, key), RelayState="//evil.example/")
    assert away.headers["Location"] == "/tableau-de-bord"


def _refused(app: Any, session: Any, jeton: str, code: str, status: int = 401) -> None:
    response = _post(app, jeton)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["code"] == code
    assert sessions.COOKIE not in response.headers.get("Set-Cookie", "")
    assert live_sso_sessions(app) == []
    refused = session.scalars(select(AuditEvent).where(AuditEvent.kind == "inbound.refused")).all()
    assert json.loads(refused[-1].data)["code"] == code


def test_replay_is_refused(app: Any, session: Any, world: Any) -> None:
    declarant_id, key = world
    jeton = _jeton(declarant_id, key)
    assert _post(app, jeton).status_code == 302
    clear_sso_sessions(app)
    _refused(app, session, jeton, "vi:Replay")


def test_partner_not_trusted_as_portal(app: Any, session: Any, world: Any) -> None:
    declarant_id, _ = world
    other = saml_partner(
        session,
        "URSSAF",
        ["DSN"],
        entity_id="https://urssaf.example/sp",
        acs="https://urssaf.example/acs",
    )
    _refused(
        app,
        session,
        _jeton(declarant_id, other, issuer="https://urssaf.example/sp"),
        "vi:InvalidIssuer",
    )


def test_unknown_issuer(app: Any, session: Any, world: Any) -> None:
    declarant_id, key = world
    _refused(
        app, session, _jeton(declarant_id, key, issuer="https://nobody.example"), "vi:InvalidIssuer"
    )


def test_key_not_in_the_portal_metadata(app: Any, session: Any, world: Any) -> None:
    declarant_id, _ = world
    stranger = generate_key(KeyUse.SAML, now=datetime.now(UTC))
    _refused(app, session, _jeton(declarant_id, stranger), "wsse:FailedCheck")


def test_jeton_for_another_audience(app: Any, session: Any, world: Any) -> None:
    declarant_id, key = world
    _refused(
        app,
        session,
        _jeton(declarant_id, key, audience="https://other.example"),
        "vi:InvalidService",
    )


def test_expired_jeton(app: Any, session: Any, world: Any) -> None:
    declarant_id, key = world
    old = datetime.now(UTC) - timedelta(minutes=30)
    _refused(app, session, _jeton(declarant_id, key, now=old), "vi:InvalidVI")


def test_unknown_or_inactive_declarant(app: Any, session: Any, world: Any) -> None:
    declarant_id, key = world
    _refused(app, session, _jeton("inconnu", key), "vi:InvalidVI")
    session.execute(update(Declarant).where(Declarant.id == declarant_id).values(status="disabled"))
    session.commit()
    _refused(app, session, _jeton(declarant_id, key), "vi:InvalidVI")


def test_missing_or_malformed_jeton(app: Any, session: Any, world: Any) -> None:
    _refused(app, session, "", "wsse:SecurityTokenUnavailable", 401)
    _refused(app, session, "pas du base64 !", "wsse:InvalidSecurityToken", 400)
    doctype = base64.b64encode(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>').decode()
    _refused(app, session, doctype, "wsse:InvalidSecurityToken", 400)


def test_replay_is_refused_with_the_redis_cache(app: Any, session: Any, world: Any) -> None:
    from tests.conftest import REDIS_URL

    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL not set")
    import redis

    from idp.stores.replay import RedisReplayCache

    app.extensions["idp.replay"] = RedisReplayCache(
        redis.Redis.from_url(REDIS_URL), prefix="test:inbound:"
    )
    declarant_id, key = world
    jeton = _jeton(declarant_id, key)
    assert _post(app, jeton).status_code == 302
    clear_sso_sessions(app)
    _refused(app, session, jeton, "vi:Replay")


# ------------------------------------------- who a portal may assert, and at which level


def _stranger(session: Any) -> str:
    """A declarant of another company, habilitated on a service the portal does not share."""
    f.company(session, siret=f.SIRET_B, name="Menuiserie Martin")
    f.service(session, "DUCS", "AUTRE")
    other = f.declarant(
        session, siret=f.SIRET_B, last="Martin", first="Paul", email="paul@martin.example"
    )
    services.grant_habilitation(
        session, declarant_id=other.id, siret=f.SIRET_B, service_code="DUCS"
    )
    session.commit()
    return str(other.id)


def test_a_portal_cannot_assert_a_declarant_it_does_not_serve(
    app: Any, session: Any, world: Any
) -> None:
    _declarant_id, key = world
    _refused(app, session, _jeton(_stranger(session), key), "vi:InvalidVI")


def test_a_revoked_habilitation_ends_what_the_portal_may_assert(
    app: Any, session: Any, world: Any
) -> None:
    declarant_id, key = world
    services.revoke_habilitation(
        session, declarant_id=declarant_id, siret=f.SIRET_A, service_code="DSN"
    )
    session.commit()
    _refused(app, session, _jeton(declarant_id, key), "vi:InvalidVI")


def test_a_locked_account_cannot_be_asserted(app: Any, session: Any, world: Any) -> None:
    """The account-wide lockout holds on every path: a portal cannot open the session of an
    account locked by wrong passwords (docs/architecture.md, "Sécurité par défaut")."""
    from tests.idp.login_support import login_siret

    declarant_id, key = world
    browser = app.test_client()
    for _ in range(5):
        login_siret(browser, password="mauvais mot de passe")
    assert login_siret(browser).status_code == 429
    _refused(app, session, _jeton(declarant_id, key), "vi:InvalidVI")


def _jeton_at(subject: str, key: Any, acr: str) -> str:
    document = saml.issue(
        IdentityVector(subject=subject, acr=acr),
        signer=key,
        issuer=PORTAL,
        audience=IDP_ENTITY,
        recipient="http://idp.test/confiance/entrante",
        now=datetime.now(UTC),
    )
    return base64.b64encode(document).decode("ascii")


def test_the_portal_level_is_recorded_as_asserted(app: Any, world: Any, sso_sessions: Any) -> None:
    from idp.oidc.grants import ASSERTED_ACR
    from token_suite.vector import ACR_TOTP

    declarant_id, key = world
    assert _post(app, _jeton_at(declarant_id, key, ACR_TOTP)).status_code == 302
    [row] = sso_sessions()
    assert row.acr == ASSERTED_ACR and row.amr == []


def test_a_later_oidc_login_does_not_claim_our_second_factor(app: Any, session: Any) -> None:
    """Issue 13 item 1: after inbound trust, the ID token said acr TimeSyncToken and
    amr ["pwd", "otp"] for a declarant with no second factor."""
    from idp.oidc.grants import ASSERTED_ACR
    from tests.idp.oauth_support import auth_params, basic, get_code, pkce, setup_world
    from token_suite.vector import ACR_TOTP

    world = setup_world(app, session)
    key = _portal(session)
    browser = app.test_client()
    jeton = _jeton_at(world.declarant_id, key, ACR_TOTP)
    assert browser.post("/confiance/entrante", data={"SAMLResponse": jeton}).status_code == 302
    verifier, challenge = pkce()
    code = get_code(browser, auth_params(challenge=challenge))
    tokens = app.test_client().post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://rp.example/callback",
            "code_verifier": verifier,
        },
        headers=basic(world.client_id, world.secret or ""),
    )
    assert tokens.status_code == 200, tokens.json
    payload = tokens.json["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["acr"] == ASSERTED_ACR and claims["amr"] == []
