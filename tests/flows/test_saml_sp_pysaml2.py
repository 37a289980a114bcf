"""Interoperability with a real third-party SAML SP: pysaml2.

pysaml2 is configured in memory only from our ``/saml/metadata`` and its own key
and certificate; its SP metadata is registered with ``idp partner add
--saml-metadata``. It then runs SP-initiated login (signed AuthnRequest by
HTTP-Redirect, our login page, our Response by HTTP-POST) and SP-initiated
logout (its signed LogoutRequest, our signed LogoutResponse), through the Flask
test client. pysaml2 shells out to ``xmlsec1``: without it, skipped.
"""

from __future__ import annotations

import base64
import re
import shutil
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization

from idp.tokens.signing import ensure_keys
from keys.generate import generate_key
from keys.model import KeyUse
from rcd_store.services import grant_habilitation
from tests import factories
from tests.conftest import sso_session_by_sid

XMLSEC1 = shutil.which("xmlsec1")
pytestmark = pytest.mark.skipif(
    XMLSEC1 is None, reason="the xmlsec1 binary is absent (apt-get install xmlsec1)"
)

SP = "https://sp.pysaml2.example/metadata"
ACS = "https://sp.pysaml2.example/acs"
SLO = "https://sp.pysaml2.example/slo"


@pytest.fixture
def directory(app: Any, session: Any) -> str:
    """Élodie Dupont, habilitated on DSN (URSSAF) and AT/MP (Assurance Maladie)."""
    ensure_keys(app)
    factories.company(session)
    factories.service(session, "DSN", "URSSAF", {"DECLARANT": "DSN_DECL"})
    factories.service(session, "ATMP", "Assurance Maladie", {"DECLARANT": "ATMP_GEST"})
    person = factories.declarant(session)
    for code in ("DSN", "ATMP"):
        grant_habilitation(
            session, declarant_id=person.id, siret=factories.SIRET_A, service_code=code
        )
    session.commit()
    return str(person.id)


def _sp_config(tmp_path: Path, idp_metadata: bytes) -> Any:
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.config import SPConfig
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    key = generate_key(KeyUse.SAML, now=datetime.now(UTC), common_name="pysaml2 SP")
    key_file, cert_file = tmp_path / "sp.key", tmp_path / "sp.crt"
    key_file.write_bytes(
        key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(key.certificate.public_bytes(serialization.Encoding.PEM))
    config = SPConfig()
    config.load(
        {
            "entityid": SP,
            "xmlsec_binary": XMLSEC1,
            "key_file": str(key_file),
            "cert_file": str(cert_file),
            "metadata": {"inline": [idp_metadata.decode()]},
            "allow_unknown_attributes": True,
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [(ACS, BINDING_HTTP_POST)],
                        "single_logout_service": [(SLO, BINDING_HTTP_REDIRECT)],
                    },
                    "authn_requests_signed": True,
                    "logout_requests_signed": True,
                    "want_response_signed": True,
                    "want_assertions_signed": True,
                    "signing_algorithm": SIG_RSA_SHA256,
                    "digest_algorithm": DIGEST_SHA256,
                }
            },
        }
    )
    return config


@pytest.fixture
def sp(app: Any, idp: Any, directory: str, tmp_path: Path) -> Any:
    """pysaml2's client, its metadata registered with ``idp partner add``."""
    from saml2.client import Saml2Client
    from saml2.metadata import entity_descriptor

    config = _sp_config(tmp_path, app.test_client().get("/saml/metadata").data)
    metadata = tmp_path / "sp-metadata.xml"
    metadata.write_text(str(entity_descriptor(config)))
    added = idp(
        "partner",
        "add",
        "--name",
        "Portail pysaml2",
        "--saml-metadata",
        str(metadata),
        "--service",
        "DSN",
    )
    assert added.code == 0, added.err
    return Saml2Client(config)


def _local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _form(html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]*action="([^"]*)"', html)
    assert action is not None, html
    fields = dict(re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', html))
    return unescape(action.group(1)), {unescape(k): unescape(v) for k, v in fields.items()}


def _log_in_through_the_page(browser: Any, login_location: str) -> Any:
    page = browser.get(_local(login_location))
    assert page.status_code == 200
    _, fields = _form(page.get_data(as_text=True))
    next_path = parse_qs(urlsplit(login_location).query)["next"][0]
    return browser.post(
        "/connexion",
        data={
            "csrf_token": fields["csrf_token"],
            "next": next_path,
            "siret": factories.SIRET_A,
            "nom": "DUPONT",
            "prenom": "elodie",
            "mot_de_passe": factories.PASSWORD,
        },
    )


def _sp_login(app: Any, sp: Any, browser: Any) -> tuple[Any, str]:
    """SP-initiated login; returns pysaml2's parsed response and its request id."""
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.xmldsig import SIG_RSA_SHA256

    idp_entity = app.config["SAML_ENTITY_ID"]
    request_id, info = sp.prepare_for_authenticate(
        entityid=idp_entity,
        relay_state="/mon-compte",
        binding=BINDING_HTTP_REDIRECT,
        sign=True,
        sigalg=SIG_RSA_SHA256,
    )
    location = dict(info["headers"])["Location"]
    assert location.startswith("http://idp.test/saml/sso?")
    first = browser.get(_local(location))
    assert first.status_code == 302, first.get_data(as_text=True)
    assert urlsplit(first.headers["Location"]).path == "/connexion"
    logged = _log_in_through_the_page(browser, first.headers["Location"])
    assert logged.status_code in (302, 303), logged.get_data(as_text=True)
    posted = browser.get(_local(logged.headers["Location"]))
    action, fields = _form(posted.get_data(as_text=True))
    assert action == ACS
    assert fields["RelayState"] == "/mon-compte"
    response = sp.parse_authn_request_response(
        fields["SAMLResponse"], BINDING_HTTP_POST, outstanding={request_id: "/mon-compte"}
    )
    assert response is not None
    return response, request_id


@pytest.mark.parametrize("logout_binding", ["HTTP-Redirect", "HTTP-POST"])
def test_pysaml2_sp_initiated_login_and_logout(app, sp, directory, session, logout_binding) -> None:
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.sigver import verify_redirect_signature

    from partners.models import SamlServiceProvider

    registered = session.query(SamlServiceProvider).filter_by(entity_id=SP).one()
    assert registered.authn_requests_signed  # so our check of its signature is exercised
    browser = app.test_client()
    response, request_id = _sp_login(app, sp, browser)
    assert response.in_response_to == request_id
    assert response.get_subject().text == directory
    attributes = response.ava
    assert attributes["PAGM"] == ["DSN_DECL"]  # minimised: no AT/MP for this partner
    assert attributes["habilitation"] == [
        h for h in attributes["habilitation"] if "DSN" in h and "ATMP" not in h
    ]
    assert len(attributes["habilitation"]) == 1
    assert attributes["siret"] == [factories.SIRET_A]
    assert "courriel" not in attributes
    session_index = response.assertion.authn_statement[0].session_index
    assert sso_session_by_sid(app, session_index) is not None

    # SP-initiated logout: pysaml2's signed LogoutRequest, then our LogoutResponse
    expected = f"urn:oasis:names:tc:SAML:2.0:bindings:{logout_binding}"
    logout = sp.do_logout(
        response.name_id,
        [app.config["SAML_ENTITY_ID"]],
        "",
        None,
        sign=True,
        expected_binding=expected,
    )
    ((binding, http_info),) = logout.values()
    assert binding == expected
    if binding == BINDING_HTTP_REDIRECT:
        answer = browser.get(_local(dict(http_info["headers"])["Location"]))
    else:
        action, fields = _form(http_info["data"])
        answer = browser.post(urlsplit(action).path, data=fields)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert sso_session_by_sid(app, session_index) is None
    location = answer.headers["Location"]
    assert location.startswith(SLO + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    # pysaml2 checks our HTTP-Redirect signature with the certificates of our metadata
    certs = sp.metadata.certs(app.config["SAML_ENTITY_ID"], "idpsso", "signing")
    assert certs
    assert any(verify_redirect_signature(query, sp.sec.sec_backend, c) for _, c in certs)
    tampered = dict(query, RelayState="ailleurs")
    assert not any(verify_redirect_signature(tampered, sp.sec.sec_backend, c) for _, c in certs)
    parsed = sp.parse_logout_request_response(query["SAMLResponse"], BINDING_HTTP_REDIRECT)
    assert parsed is not None and parsed.status_ok()
    assert sp.handle_logout_response(parsed)[1] == "200 Ok"  # pysaml2: logout complete
    assert not sp.users.subjects()


def test_pysaml2_reads_a_no_passive_answer(app, sp) -> None:
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.response import StatusNoPassive

    request_id, info = sp.prepare_for_authenticate(
        entityid=app.config["SAML_ENTITY_ID"],
        binding=BINDING_HTTP_REDIRECT,
        sign=True,
        is_passive="true",
    )
    page = app.test_client().get(_local(dict(info["headers"])["Location"]))
    action, fields = _form(page.get_data(as_text=True))
    assert action == ACS
    with pytest.raises(StatusNoPassive):
        sp.parse_authn_request_response(
            fields["SAMLResponse"], BINDING_HTTP_POST, outstanding={request_id: "/"}
        )
    assert base64.b64decode(fields["SAMLResponse"]).count(b"Assertion") == 0
