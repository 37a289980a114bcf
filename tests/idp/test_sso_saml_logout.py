"""``/saml/slo``: Single Logout started by a partner, and by us (the logout page)."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from lxml import etree

from idp.sessions import sso as sessions
from idp.tokens.signing import keyring
from keys.generate import generate_key
from keys.model import KeyUse
from tests.conftest import sso_session_by_sid
from token_suite import bindings as b
from token_suite import messages as m

from .sso_saml_support import (
    SAML,
    SAMLP,
    SLO,
    SLO_URL,
    SP_ENTITY,
    authn_request,
    inflate,
    log_in,
    logout_request,
    make_world,
    posted_form,
    redirect_query,
    sign_xml,
    status_codes,
)

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


@pytest.fixture
def world(app: Any, session: Any) -> Any:
    return make_world(app, session)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def _signed_in(app: Any, client: Any, world: Any) -> Any:
    """A session in which the SP received a jeton (so it is a participant)."""
    row = log_in(app, client, world.declarant_id)
    response = client.get(f"/saml/sso?{redirect_query(authn_request())}")
    assert response.status_code == 200
    return row


def _idp_certificate(app: Any) -> Any:
    return keyring(app).active(KeyUse.SAML).certificate


def _alive(app: Any, sid: str) -> bool:
    return sso_session_by_sid(app, sid) is not None


def test_signed_redirect_logout_request_ends_the_session(app, client, world, session) -> None:
    row = _signed_in(app, client, world)
    xml = logout_request(name_id=world.declarant_id, session_index=row.sid)
    query = redirect_query(xml, relay_state="retour", key=world.sp_key)
    response = client.get(f"/saml/slo?{query}")
    assert response.status_code == 302
    assert not _alive(app, row.sid)
    assert client.get_cookie(sessions.COOKIE) is None  # cookie cleared
    location = response.headers["Location"]
    assert location.startswith(SLO + "?")
    # our LogoutResponse: signed over the exact query octets with our active SAML key
    params = b.redirect_parameters(urlsplit(location).query.encode(), "SAMLResponse")
    b.verify_redirect_signature(params, [_idp_certificate(app)])
    assert params.relay_state == "retour"
    answer = etree.fromstring(inflate(params.message))
    assert answer.tag == f"{{{SAMLP}}}LogoutResponse"
    assert answer.get("InResponseTo") == etree.fromstring(xml).get("ID")
    assert answer.get("Destination") == SLO
    assert status_codes(inflate(params.message)) == [SUCCESS]


def test_unsigned_logout_request_is_refused(app, client, world, session) -> None:
    row = _signed_in(app, client, world)
    xml = logout_request(name_id=world.declarant_id, session_index=row.sid)
    response = client.get(f"/saml/slo?{redirect_query(xml)}")
    assert response.status_code == 400 and "Location" not in response.headers
    encoded = base64.b64encode(xml).decode()
    assert client.post("/saml/slo", data={"SAMLRequest": encoded}).status_code == 400
    assert _alive(app, row.sid)


def test_unsigned_logout_request_is_refused_from_a_partner_without_certificate(
    app, session
) -> None:
    """SLO needs a signature: a partner registered without a signing certificate cannot
    end anyone's session, with the victim's cookie (a cross-site GET) or without it."""
    world = make_world(app, session, certificate=False)
    victim = app.test_client()
    row = _signed_in(app, victim, world)
    xml = logout_request(name_id=world.declarant_id, session_index=row.sid)
    response = victim.get(f"/saml/slo?{redirect_query(xml)}")
    assert response.status_code == 400 and "Location" not in response.headers
    assert "signature" in response.get_data(as_text=True)
    encoded = base64.b64encode(xml).decode()
    assert app.test_client().post("/saml/slo", data={"SAMLRequest": encoded}).status_code == 400
    assert _alive(app, row.sid)


def test_logout_request_signed_by_another_key_is_refused(app, client, world, session) -> None:
    row = _signed_in(app, client, world)
    stranger = generate_key(KeyUse.SAML, now=datetime.now(UTC))
    xml = logout_request(name_id=world.declarant_id, session_index=row.sid)
    assert client.get(f"/saml/slo?{redirect_query(xml, key=stranger)}").status_code == 400
    forged = sign_xml(xml, stranger)
    response = client.post("/saml/slo", data={"SAMLRequest": base64.b64encode(forged).decode()})
    assert response.status_code == 400
    assert _alive(app, row.sid)


def test_post_logout_request_without_cookie_ends_the_named_session(app, world, session) -> None:
    browser = app.test_client()
    row = _signed_in(app, browser, world)
    xml = sign_xml(logout_request(name_id=world.declarant_id, session_index=row.sid), world.sp_key)
    # a cross-site POST carries no SameSite=Lax cookie: the SessionIndex names the session
    response = app.test_client().post(
        "/saml/slo", data={"SAMLRequest": base64.b64encode(xml).decode(), "RelayState": "r"}
    )
    assert response.status_code == 302  # the SP's SLO endpoint is HTTP-Redirect
    assert not _alive(app, row.sid)


def test_logout_request_for_another_person_ends_nothing(app, client, world, session) -> None:
    row = _signed_in(app, client, world)
    xml = logout_request(name_id="someone-else", session_index=row.sid)
    response = client.get(f"/saml/slo?{redirect_query(xml, key=world.sp_key)}")
    assert response.status_code == 302  # answered, but
    assert _alive(app, row.sid)


def test_idp_initiated_logout_url_and_the_partner_answer(app, client, world, session) -> None:
    row = _signed_in(app, client, world)
    live = sso_session_by_sid(app, row.sid)
    with app.test_request_context():
        urls = sessions.logout_urls(live)
    assert len(urls) == 1 and urls[0].startswith(SLO + "?")
    params = b.redirect_parameters(urlsplit(urls[0]).query.encode(), "SAMLRequest")
    b.verify_redirect_signature(params, [_idp_certificate(app)])
    request = etree.fromstring(inflate(params.message))
    assert request.findtext(f"{{{SAML}}}NameID") == world.declarant_id
    assert request.findtext(f"{{{SAMLP}}}SessionIndex") == row.sid
    # the partner answers with a signed LogoutResponse
    answer = m.build_logout_response(
        issuer=SP_ENTITY,
        destination=SLO_URL,
        in_response_to=str(request.get("ID")),
        codes=[SUCCESS],
        now=datetime.now(UTC),
    )
    ok = client.get(f"/saml/slo?{redirect_query(answer, kind='SAMLResponse', key=world.sp_key)}")
    assert ok.status_code == 200
    assert "confirmée" in ok.get_data(as_text=True)
    assert "frame-ancestors 'self'" in ok.headers["Content-Security-Policy"]
    # an answer to a request we never sent, or unsigned, is refused
    stray = m.build_logout_response(
        issuer=SP_ENTITY,
        destination=SLO_URL,
        in_response_to="_" + "0" * 64,
        codes=[SUCCESS],
        now=datetime.now(UTC),
    )
    query = redirect_query(stray, kind="SAMLResponse", key=world.sp_key)
    assert client.get(f"/saml/slo?{query}").status_code == 400
    unsigned = redirect_query(answer, kind="SAMLResponse")
    assert client.get(f"/saml/slo?{unsigned}").status_code == 400


def test_partner_logout_also_logs_out_the_other_participants(app, client, world, session) -> None:
    row = _signed_in(app, client, world)
    live = sso_session_by_sid(app, row.sid)
    sessions.register_logout_builder(app, "test-other", lambda p, r: "https://other.example/logout")
    with app.app_context():
        sessions.add_participant(session, live, {"partner": "Autre", "protocol": "test-other"})
    session.commit()
    xml = logout_request(name_id=world.declarant_id, session_index=row.sid)
    response = client.get(f"/saml/slo?{redirect_query(xml, key=world.sp_key)}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'src="https://other.example/logout"' in html
    assert f'href="{SLO}?SAMLResponse=' in html  # continue without JavaScript
    assert not _alive(app, row.sid)


def test_post_logout_response_when_the_partner_has_only_a_post_slo(
    app, client, world, session
) -> None:
    from partners.models import SamlServiceProvider

    sp = session.query(SamlServiceProvider).one()
    sp.slo = [{"binding": b.BINDING_POST, "url": SLO}]
    session.commit()
    row = _signed_in(app, client, world)
    xml = sign_xml(logout_request(name_id=world.declarant_id, session_index=row.sid), world.sp_key)
    response = client.post("/saml/slo", data={"SAMLRequest": base64.b64encode(xml).decode()})
    form = posted_form(response.get_data(as_text=True))
    assert form.action == SLO
    signed = b.verified_xml(
        b.parse_message(form.document, ["LogoutResponse"]), [_idp_certificate(app)]
    )
    assert signed.get("InResponseTo") == etree.fromstring(xml).get("ID")
    assert not _alive(app, row.sid)


def test_the_logout_page_sends_the_partner_a_signed_logout_request(
    app, client, world, session
) -> None:
    from html import unescape

    row = _signed_in(app, client, world)
    page = client.get("/deconnexion").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post("/deconnexion", data={"csrf_token": token})
    assert response.status_code == 200
    assert not _alive(app, row.sid)
    html = response.get_data(as_text=True)
    frames = [unescape(u) for u in re.findall(r'<iframe src="([^"]+)"', html)]
    assert len(frames) == 1 and frames[0].startswith(SLO + "?SAMLRequest=")
    params = b.redirect_parameters(urlsplit(frames[0]).query.encode(), "SAMLRequest")
    b.verify_redirect_signature(params, [_idp_certificate(app)])
    assert etree.fromstring(inflate(params.message)).findtext(f"{{{SAMLP}}}SessionIndex") == row.sid
