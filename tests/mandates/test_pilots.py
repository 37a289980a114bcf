"""Pilot services: open to listed companies only. The one filter (in
``active_habilitations``) holds on every path: dashboard, portal navigation, SAML SSO,
OpenID Connect (code flow and userinfo), token exchange and the machine login. Each
test runs with the pilot open to the declarant's company (the service is there) and
open to another company only (it is nowhere)."""

from __future__ import annotations

from typing import Any

import pytest

from rcd_store.mandates import pilots
from tests import factories as f
from tests.idp import sso_saml_support as saml_world
from tests.idp.oauth_a2a_support import (
    ACCESS_TOKEN_TYPE,
    CNAV_API,
    EXCHANGE,
    URSSAF_API,
    code_flow_tokens,
    setup_a2a,
    token_request,
    verify,
)
from tests.idp.portal_support import csrf_of, log_in

OPEN = pytest.mark.parametrize("opened", [True, False], ids=["pilot-member", "outsider"])


def _pilot(session: Any, opened: bool) -> None:
    """DSN becomes a pilot, open to company A (the declarant's) or to company B only."""
    if not opened:
        f.company(session, siret=f.SIRET_B, name="Autre")
    pilots.open_to(session, code="DSN", siren=(f.SIRET_A if opened else f.SIRET_B)[:9], actor="t")
    session.commit()


@OPEN
def test_oidc_code_flow_userinfo_and_exchange(app: Any, session: Any, opened: bool) -> None:
    world = setup_a2a(app, session)
    _pilot(session, opened)
    tokens = code_flow_tokens(app, world)
    claims = verify(app.test_client(), tokens["access_token"], URSSAF_API).claims
    assert ("DSN_DECL" in claims["pagm"]) is opened
    assert "PASRAU_DECL" in claims["pagm"]  # the open service is there either way
    info = app.test_client().get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert ("DSN_DECL" in info.json["pagm"]) is opened
    exchanged = token_request(
        app.test_client(),
        world,
        "urssaf-app",
        {
            "grant_type": EXCHANGE,
            "subject_token": tokens["access_token"],
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "resource": CNAV_API,
        },
    )
    assert exchanged.status_code == 200, exchanged.json
    narrowed = verify(app.test_client(), exchanged.json["access_token"], CNAV_API).claims
    assert ("DSN" in _services(narrowed)) is opened
    assert ("DSN_DECL" in narrowed.get("pagm", [])) is opened


def _services(claims: dict[str, Any]) -> set[str]:
    return {h["service"] for h in claims.get("habilitations", [])}


@OPEN
def test_machine_login(app: Any, session: Any, opened: bool) -> None:
    setup_a2a(app, session)
    _pilot(session, opened)
    xml = (
        f"<identifiants><siret>{f.SIRET_A}</siret><nom>DUPONT</nom><prenom>elodie</prenom>"
        f"<motdepasse>{f.PASSWORD}</motdepasse><service>DSN</service></identifiants>"
    )
    response = app.test_client().post(
        "/authentifier/1.0/", data=xml.encode(), content_type="application/xml"
    )
    assert response.status_code == (200 if opened else 401), response.get_data(as_text=True)
    # an open service of the same declarant is not affected
    other = xml.replace("<service>DSN</service>", "<service>PASRAU</service>")
    assert (
        app.test_client()
        .post("/authentifier/1.0/", data=other.encode(), content_type="application/xml")
        .status_code
        == 200
    )


@OPEN
def test_dashboard_navigation_and_saml_sso(app: Any, session: Any, opened: bool) -> None:
    world = saml_world.make_world(app, session)
    _pilot(session, opened)
    browser = app.test_client()
    log_in(app, browser, world.declarant_id)
    page = browser.get("/tableau-de-bord").get_data(as_text=True)
    assert ("Service DSN" in page) is opened
    assert "Service ATMP" in page
    moved = browser.post(
        "/navigation/DSN", data={"csrf_token": csrf_of(page), "partner": world.partner}
    )
    assert (moved.status_code == 200) is opened
    if opened:
        assert saml_world.ACS in moved.get_data(as_text=True)
    sso = browser.get(
        f"/saml/sso?{saml_world.redirect_query(saml_world.authn_request(request_id='_r1'))}"
    )
    document = saml_world.posted_form(sso.get_data(as_text=True)).document
    assert (b"DSN_DECL" in document) is opened
