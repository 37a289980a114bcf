"""The demo partner site: registration, and arrivals verified with token_suite alone."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from idp.demo import directory as demo
from idp.demo.partner import create_partner_app
from partners.models import OAuthClient, Partner
from tests.idp.portal_support import csrf_of, hidden_fields, log_in

PARTNER_URL = "http://partenaire.localhost"


@pytest.fixture
def world(app: Any) -> Any:
    from idp.tokens.signing import ensure_keys

    ensure_keys(app)
    logins = demo.load(app)
    site = demo.partner_site(app, base_url=PARTNER_URL)
    demo.register_partner_site(app, site)
    server = app.test_client()  # the partner's back channel to the operator

    def fetch(url: str, data: dict[str, str] | None) -> bytes:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        answer = server.post(path, data=data) if data is not None else server.get(path)
        return bytes(answer.data)

    partner = create_partner_app(site, secret_key="partner-test", fetch=fetch)
    elodie = next(login for login in logins if login.email.startswith("elodie"))
    return site, partner.test_client(), elodie


def _navigate(app: Any, idp_client: Any, partner: str) -> dict[str, str]:
    csrf = csrf_of(idp_client.get("/tableau-de-bord").get_data(as_text=True))
    page = idp_client.post("/navigation/DSN", data={"csrf_token": csrf, "partner": partner})
    assert page.status_code == 200
    assert f'action="{PARTNER_URL}/saml/acs"' in page.get_data(as_text=True)
    return dict(hidden_fields(page.get_data(as_text=True)))


def test_registration_is_idempotent(app: Any, session: Any, world: Any) -> None:
    site, _, _ = world
    demo.register_partner_site(app, site)
    partner = session.scalars(select(Partner).where(Partner.name == site.name)).one()
    assert partner.identifier == f"{PARTNER_URL}/saml/metadata"
    assert partner.landing_url == f"{PARTNER_URL}/saml/acs"
    assert [s.code for s in partner.services] == ["DSN"]
    assert partner.saml is not None and partner.saml.authn_requests_signed
    assert partner.saml.slo == [
        {
            "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
            "url": f"{PARTNER_URL}/saml/slo",
        }
    ]
    client = session.scalars(select(OAuthClient)).one()
    assert client.public and client.redirect_uris[0] == f"{PARTNER_URL}/oidc/callback"
    assert session.scalar(select(func.count()).select_from(Partner)) == 1


def test_metadata_served_by_the_partner(world: Any) -> None:
    site, partner, _ = world
    response = partner.get("/saml/metadata")
    assert response.mimetype == "application/samlmetadata+xml"
    assert f'entityID="{site.entity_id}"' in response.get_data(as_text=True)


def test_portal_navigation_lands_authenticated(app: Any, world: Any) -> None:
    _, partner, elodie = world
    idp_client = app.test_client()
    log_in(app, idp_client, elodie.declarant_id)
    fields = _navigate(app, idp_client, demo.DEMO_PARTNER)
    assert "pas connecté" in partner.get("/").get_data(as_text=True)
    arrived = partner.post("/saml/acs", data=fields)
    assert arrived.status_code == 302
    html = partner.get("/").get_data(as_text=True)
    assert elodie.declarant_id in html and "Élodie" in html
    assert '<dd class="pagm">DSN_DECLARANT</dd>' in html  # DSN only: no AT/MP, no retraite
    assert "ATMP" not in html and "RC_CONSULT" not in html
    assert "DSN/73282932000074/DECLARANT" in html and "DSN/73282932000082/DECLARANT" in html
    # the same jeton again is a replay
    again = partner.post("/saml/acs", data=fields)
    assert again.status_code == 401 and "vi:Replay" in again.get_data(as_text=True)


def test_forged_jeton_is_refused(app: Any, world: Any) -> None:
    _, partner, elodie = world
    idp_client = app.test_client()
    log_in(app, idp_client, elodie.declarant_id)
    fields = _navigate(app, idp_client, demo.DEMO_PARTNER)
    import base64

    document = base64.b64decode(fields["SAMLResponse"]).replace(b"DSN_DECLARANT", b"DSN_ADMIN")
    refused = partner.post("/saml/acs", data={"SAMLResponse": base64.b64encode(document).decode()})
    assert refused.status_code == 401 and "wsse:FailedCheck" in refused.get_data(as_text=True)
    assert "pas connecté" in partner.get("/").get_data(as_text=True)


def _follow_to_partner(idp_client: Any, partner: Any, location: str) -> Any:
    """The browser: the IdP's answer page posts the SAMLResponse to the partner's ACS."""
    parts = urlsplit(location)
    page = idp_client.get(f"{parts.path}?{parts.query}")
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    action = re.search(r'<form[^>]*action="([^"]+)"', html)
    assert action is not None and action.group(1) == f"{PARTNER_URL}/saml/acs"
    fields = {n: v for n, v in hidden_fields(html) if n in ("SAMLResponse", "RelayState")}
    return partner.post("/saml/acs", data=fields)


def test_sp_initiated_login_and_single_logout(app: Any, world: Any) -> None:
    pytest.importorskip("idp.saml.sso")
    _, partner, elodie = world
    idp_client = app.test_client()
    log_in(app, idp_client, elodie.declarant_id)
    start = partner.get("/saml/login")
    assert start.status_code == 302 and "Signature=" in start.headers["Location"]
    arrived = _follow_to_partner(idp_client, partner, start.headers["Location"])
    assert arrived.status_code == 302, arrived.get_data(as_text=True)
    html = partner.get("/").get_data(as_text=True)
    assert elodie.declarant_id in html and "connexion SAML" in html
    # logging out at the portal sends the partner a signed LogoutRequest
    csrf = csrf_of(idp_client.get("/tableau-de-bord").get_data(as_text=True))
    logout_page = idp_client.post("/deconnexion", data={"csrf_token": csrf}).get_data(as_text=True)
    urls = [
        u.replace("&amp;", "&") for u in re.findall(r'src="([^"]+/saml/slo\?[^"]+)"', logout_page)
    ]
    assert len(urls) == 1
    parts = urlsplit(urls[0])
    answered = partner.get(f"{parts.path}?{parts.query}")
    assert answered.status_code == 302 and "SAMLResponse=" in answered.headers["Location"]
    assert "pas connecté" in partner.get("/").get_data(as_text=True)


def test_unsigned_logout_request_is_refused(world: Any) -> None:
    _, partner, _ = world
    response = partner.get("/saml/slo?SAMLRequest=AAAA")
    assert response.status_code == 400


def test_demo_partner_command_registers_and_serves(
    idp: Any, monkeypatch: pytest.MonkeyPatch, app: Any, session: Any
) -> None:
    import werkzeug.serving

    served: list[tuple[str, int]] = []
    monkeypatch.setattr(
        werkzeug.serving, "run_simple", lambda host, port, wsgi, **_: served.append((host, port))
    )
    demo.load(app)
    result = idp("demo-partner", "--port", "5077", "--name", "Partenaire essai")
    assert result.code == 0, result.err
    assert served == [("127.0.0.1", 5077)]
    assert "Partenaire essai" in result.out
    partner = session.scalars(select(Partner).where(Partner.name == "Partenaire essai")).one()
    assert partner.identifier == "http://127.0.0.1:5077/saml/metadata"
    assert (
        idp("demo-partner", "--port", "5077", "--name", "Partenaire essai").code == 0
    )  # idempotent
    assert idp("demo-partner", "--service", "INCONNU").code == 1
