"""``/saml/sso``: AuthnRequests by HTTP-Redirect and HTTP-POST, each rule of the endpoint."""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest

from idp.tokens.signing import keyring
from keys.generate import generate_key
from keys.model import KeyUse
from tests.conftest import sso_session_by_sid
from token_suite import saml
from token_suite.trust import Trust

from .sso_saml_support import (
    ACS,
    RSA_SHA1,
    SP_ENTITY,
    authn_request,
    log_in,
    make_world,
    posted_form,
    redirect_query,
    sign_xml,
    status_codes,
)

RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"


@pytest.fixture
def world(app: Any, session: Any) -> Any:
    return make_world(app, session)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def _trust(client: Any) -> Trust:
    return Trust.from_metadata(client.get("/saml/metadata").data)


def _verified(client: Any, document: bytes) -> Any:
    return saml.verify(document, trust=_trust(client), audience=SP_ENTITY)


def _refused_without_leaving(response: Any) -> None:
    """A refusal is a 400 page of ours: no redirect, no form posting anywhere."""
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "<form" not in response.get_data(as_text=True)


# ------------------------------------------------------------- success paths


def test_redirect_binding_with_live_session_posts_a_minimised_jeton(
    app, client, world, session
) -> None:
    row = log_in(app, client, world.declarant_id)
    xml = authn_request(request_id="_req-1")
    response = client.get(f"/saml/sso?{redirect_query(xml, relay_state='page 42 & co')}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'type="submit"' in html and "Continuer" in html  # works without JavaScript
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"
    form = posted_form(html)
    assert form.action == ACS
    assert form.fields["RelayState"] == "page 42 & co"  # round trip, unchanged
    vector = _verified(client, form.document)
    assert vector.subject == world.declarant_id
    assert vector.claims["in_response_to"] == "_req-1"
    assert vector.claims["recipient"] == ACS
    assert vector.session_index == row.sid
    # minimisation: habilitated on DSN and AT/MP, the partner receives DSN only
    assert vector.pagm == ("DSN_DECL",)
    assert [h.service for h in vector.habilitations] == ["DSN"]
    assert "ATMP" not in form.document.decode()
    assert vector.email is None  # not among the partner's claims
    participants = sso_session_by_sid(app, row.sid).participants
    assert participants == [
        {
            "partner": world.partner,
            "protocol": "saml",
            "name_id": world.declarant_id,
            "session_index": row.sid,
        }
    ]


def test_email_only_for_a_partner_allowed_to_receive_it(app, session) -> None:
    world = make_world(app, session, claims=("email",))
    client = app.test_client()
    log_in(app, client, world.declarant_id)
    form = posted_form(client.get(f"/saml/sso?{redirect_query(authn_request())}").get_data(True))
    assert _verified(client, form.document).email == "elodie@dupont.example"


def test_post_binding_needs_no_csrf_token(app, client, world) -> None:
    log_in(app, client, world.declarant_id)
    encoded = base64.b64encode(authn_request(request_id="_post-1")).decode()
    response = client.post("/saml/sso", data={"SAMLRequest": encoded, "RelayState": "rs"})
    assert response.status_code == 200
    form = posted_form(response.get_data(as_text=True))
    assert form.fields["RelayState"] == "rs"
    assert _verified(client, form.document).claims["in_response_to"] == "_post-1"


def test_acs_by_index_and_by_default(app, client, world) -> None:
    log_in(app, client, world.declarant_id)
    by_index = client.get(f"/saml/sso?{redirect_query(authn_request(acs=None, index=0))}")
    assert posted_form(by_index.get_data(as_text=True)).action == ACS
    default = client.get(f"/saml/sso?{redirect_query(authn_request(acs=None))}")
    assert posted_form(default.get_data(as_text=True)).action == ACS


def test_without_session_the_login_page_comes_first_then_the_request_resumes(
    app, client, world
) -> None:
    xml = authn_request(request_id="_later")
    response = client.get(f"/saml/sso?{redirect_query(xml, relay_state='rs')}")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/connexion"
    query = parse_qs(location.query)
    assert "force" not in query
    next_path = query["next"][0]
    assert next_path.startswith("/saml/sso/reprise?")
    log_in(app, client, world.declarant_id)
    resumed = client.get(next_path)
    form = posted_form(resumed.get_data(as_text=True))
    assert form.fields["RelayState"] == "rs"
    assert _verified(client, form.document).claims["in_response_to"] == "_later"


def test_a_tampered_pending_state_is_refused(app, client, world) -> None:
    location = client.get(f"/saml/sso?{redirect_query(authn_request())}").headers["Location"]
    next_path = parse_qs(urlsplit(location).query)["next"][0]
    log_in(app, client, world.declarant_id)
    state = parse_qs(urlsplit(next_path).query)["etat"][0]
    forged = state[:10] + ("A" if state[10] != "A" else "B") + state[11:]
    _refused_without_leaving(client.get(f"/saml/sso/reprise?etat={quote_plus(forged)}"))
    _refused_without_leaving(client.get("/saml/sso/reprise"))


# --------------------------------------------------------------- refusals


def test_unregistered_acs_is_refused_without_redirecting_to_it(app, client, world) -> None:
    log_in(app, client, world.declarant_id)
    xml = authn_request(acs="https://attacker.example/acs")
    response = client.get(f"/saml/sso?{redirect_query(xml)}")
    _refused_without_leaving(response)
    assert "attacker.example" not in response.get_data(as_text=True)
    # a prefix or a variant of the registered one is not it either
    for near in (ACS + "/", ACS + "?x=1", ACS.upper()):
        _refused_without_leaving(client.get(f"/saml/sso?{redirect_query(authn_request(acs=near))}"))
    unknown_index = client.get(f"/saml/sso?{redirect_query(authn_request(acs=None, index=7))}")
    _refused_without_leaving(unknown_index)


def test_unknown_issuer_is_refused(app, client, world) -> None:
    log_in(app, client, world.declarant_id)
    xml = authn_request(issuer="https://unknown.example/metadata")
    _refused_without_leaving(client.get(f"/saml/sso?{redirect_query(xml)}"))


@pytest.mark.parametrize(
    "change",
    [
        {"destination": "https://other-idp.example/sso"},
        {"instant": datetime.now(UTC) - timedelta(hours=1)},
        {"instant": datetime.now(UTC) + timedelta(hours=1)},
    ],
)
def test_wrong_destination_or_stale_request_is_refused(app, client, world, change) -> None:
    log_in(app, client, world.declarant_id)
    _refused_without_leaving(client.get(f"/saml/sso?{redirect_query(authn_request(**change))}"))


def _raw_deflate(data: bytes) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return quote_plus(base64.b64encode(compressor.compress(data) + compressor.flush()).decode())


def test_dtd_entities_bombs_and_garbage_are_refused(app, client, world) -> None:
    log_in(app, client, world.declarant_id)
    doctype = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + authn_request()
    )
    _refused_without_leaving(client.get(f"/saml/sso?SAMLRequest={_raw_deflate(doctype)}"))
    bomb = _raw_deflate(b" " * (10 * 1024 * 1024))  # 10 MB of spaces, ~10 KB deflated
    _refused_without_leaving(client.get(f"/saml/sso?SAMLRequest={bomb}"))
    _refused_without_leaving(client.get("/saml/sso?SAMLRequest=%%%not-base64"))
    _refused_without_leaving(client.get("/saml/sso"))
    _refused_without_leaving(client.post("/saml/sso", data={"SAMLRequest": "PGZvbz4="}))


def test_a_second_samlrequest_parameter_is_refused(app, client, world) -> None:
    log_in(app, client, world.declarant_id)
    query = redirect_query(authn_request())
    _refused_without_leaving(client.get(f"/saml/sso?{query}&{query}"))


# --------------------------------------------------------- signed requests


@pytest.fixture
def signing_world(app: Any, session: Any) -> Any:
    return make_world(app, session, signed_requests=True)


def test_signed_redirect_request_is_accepted(app, client, signing_world) -> None:
    log_in(app, client, signing_world.declarant_id)
    query = redirect_query(authn_request(), relay_state="r", key=signing_world.sp_key)
    assert posted_form(client.get(f"/saml/sso?{query}").get_data(as_text=True)).action == ACS


def test_unsigned_request_is_refused_when_the_partner_signs(app, client, signing_world) -> None:
    log_in(app, client, signing_world.declarant_id)
    _refused_without_leaving(client.get(f"/saml/sso?{redirect_query(authn_request())}"))
    encoded = base64.b64encode(authn_request()).decode()
    _refused_without_leaving(client.post("/saml/sso", data={"SAMLRequest": encoded}))


def test_bad_redirect_signatures_are_refused(app, client, signing_world) -> None:
    log_in(app, client, signing_world.declarant_id)
    stranger = generate_key(KeyUse.SAML, now=datetime.now(UTC))
    xml = authn_request()
    _refused_without_leaving(
        client.get(f"/saml/sso?{redirect_query(xml, relay_state='r', key=stranger)}")
    )
    # SHA-1 is refused even when the bytes were signed by the partner's key
    sha1 = redirect_query(xml, relay_state="r", key=signing_world.sp_key, sig_alg=RSA_SHA1)
    _refused_without_leaving(client.get(f"/saml/sso?{sha1}"))
    # the signature covers RelayState: changing it breaks the signature
    good = redirect_query(xml, relay_state="r", key=signing_world.sp_key)
    _refused_without_leaving(
        client.get(f"/saml/sso?{good.replace('RelayState=r', 'RelayState=s')}")
    )
    # and the exact request: another request under the same signature is refused
    other = redirect_query(authn_request(force=True), relay_state="r")
    swapped = other.split("&")[0] + "&" + "&".join(good.split("&")[1:])
    _refused_without_leaving(client.get(f"/saml/sso?{swapped}"))


def test_signed_post_request(app, client, signing_world) -> None:
    log_in(app, client, signing_world.declarant_id)
    signed = sign_xml(authn_request(request_id="_signed"), signing_world.sp_key)
    ok = client.post("/saml/sso", data={"SAMLRequest": base64.b64encode(signed).decode()})
    form = posted_form(ok.get_data(as_text=True))
    assert _verified(client, form.document).claims["in_response_to"] == "_signed"
    stranger = generate_key(KeyUse.SAML, now=datetime.now(UTC))
    forged = sign_xml(authn_request(), stranger)
    _refused_without_leaving(
        client.post("/saml/sso", data={"SAMLRequest": base64.b64encode(forged).decode()})
    )
    tampered = signed.replace(ACS.encode(), b"https://attacker.example/acs")
    _refused_without_leaving(
        client.post("/saml/sso", data={"SAMLRequest": base64.b64encode(tampered).decode()})
    )


# ------------------------------------------------------ IsPassive, ForceAuthn


def _idp_certificate(app: Any) -> Any:
    with app.app_context():
        return keyring(app).active(KeyUse.SAML).certificate


def test_is_passive_without_session_answers_no_passive(app, client, world) -> None:
    from token_suite import _xmldsig

    xml = authn_request(request_id="_passive", passive=True)
    response = client.get(f"/saml/sso?{redirect_query(xml, relay_state='rs')}")
    assert response.status_code == 200  # no login page
    form = posted_form(response.get_data(as_text=True))
    assert form.action == ACS and form.fields["RelayState"] == "rs"
    signed = _xmldsig.verified_copy(
        _xmldsig.parse_xml(form.document), certificates=[_idp_certificate(app)]
    )
    assert signed.get("InResponseTo") == "_passive"
    assert status_codes(form.document) == [
        RESPONDER,
        "urn:oasis:names:tc:SAML:2.0:status:NoPassive",
    ]
    assert b"Assertion" not in form.document


def test_is_passive_with_session_logs_in_silently(app, client, world) -> None:
    log_in(app, client, world.declarant_id)
    form = posted_form(
        client.get(f"/saml/sso?{redirect_query(authn_request(passive=True))}").get_data(
            as_text=True
        )
    )
    assert _verified(client, form.document).subject == world.declarant_id


def test_force_authn_sends_a_live_session_to_the_login_page(app, client, world) -> None:
    log_in(app, client, world.declarant_id)
    xml = authn_request(request_id="_forced", force=True)
    response = client.get(f"/saml/sso?{redirect_query(xml)}")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["force"] == ["1"]
    next_path = query["next"][0]
    # coming back with the old session (no new authentication) is not accepted
    stale = posted_form(client.get(next_path).get_data(as_text=True))
    assert status_codes(stale.document)[-1] == "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
    # a new authentication after the request is
    row = log_in(app, client, world.declarant_id)
    fresh = posted_form(client.get(next_path).get_data(as_text=True))
    vector = _verified(client, fresh.document)
    assert vector.claims["in_response_to"] == "_forced"
    assert vector.session_index == row.sid
