"""Interoperability: jetons issued by token_suite, verified by other implementations.

* pysaml2, configured as an SP from the metadata :func:`idp_metadata` produces;
* the ``xmlsec1`` command-line tool (Debian package ``xmlsec1``).

Both need the ``xmlsec1`` binary (pysaml2 shells out to it); without it these
tests are skipped with that reason.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from token_suite.metadata import idp_metadata

from .saml_support import AUDIENCE, IDP, ISSUER, RECIPIENT, VECTOR, issue

XMLSEC1 = shutil.which("xmlsec1")
needs_xmlsec1 = pytest.mark.skipif(
    XMLSEC1 is None, reason="the xmlsec1 binary is absent (apt-get install xmlsec1)"
)
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
RESPONSE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"


def _sp_client():  # type: ignore[no-untyped-def]
    from saml2 import BINDING_HTTP_POST
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

    metadata = idp_metadata(
        entity_id=ISSUER, signing_keys=[IDP], sso_url="https://idp.example/sso", signer=IDP
    )
    config = SPConfig()
    config.load(
        {
            "entityid": AUDIENCE,
            "xmlsec_binary": XMLSEC1,
            "metadata": {"inline": [metadata.decode()]},
            "allow_unknown_attributes": True,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(RECIPIENT, BINDING_HTTP_POST)]},
                    "allow_unsolicited": True,
                    "want_response_signed": True,
                    "want_assertions_signed": True,
                }
            },
        }
    )
    return Saml2Client(config)


@needs_xmlsec1
def test_pysaml2_accepts_our_jeton() -> None:
    from saml2 import BINDING_HTTP_POST

    document = issue(now=datetime.now(UTC), in_response_to=None)
    client = _sp_client()
    response = client.parse_authn_request_response(
        base64.b64encode(document).decode(), BINDING_HTTP_POST
    )
    assert response is not None
    assert response.get_subject().text == VECTOR.subject
    attributes = response.ava
    assert sorted(attributes["PAGM"]) == sorted(VECTOR.pagm)
    assert sorted(attributes["habilitation"]) == sorted(h.as_saml() for h in VECTOR.habilitations)
    assert attributes["siret"] == [VECTOR.siret]


@needs_xmlsec1
def test_pysaml2_refuses_a_tampered_jeton() -> None:
    from saml2 import BINDING_HTTP_POST
    from saml2.sigver import SignatureError

    document = issue(now=datetime.now(UTC), in_response_to=None)
    tampered = document.replace(b"PAGM_DSN_CONSULT", b"PAGM_DSN_ADMIN")
    with pytest.raises(SignatureError):
        _sp_client().parse_authn_request_response(
            base64.b64encode(tampered).decode(), BINDING_HTTP_POST
        )


def _xmlsec1_verify(tmp_path: Path, document: bytes, *extra: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    assert XMLSEC1 is not None and IDP.certificate is not None
    cert, path = tmp_path / "cert.pem", tmp_path / "jeton.xml"
    cert.write_bytes(IDP.certificate.public_bytes(serialization.Encoding.PEM))
    path.write_bytes(document)
    command = [XMLSEC1, "--verify", "--pubkey-cert-pem", str(cert), *extra, str(path)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)


@needs_xmlsec1
def test_xmlsec1_verifies_bare_assertion(tmp_path: Path) -> None:
    result = _xmlsec1_verify(tmp_path, issue(assertion_only=True), "--id-attr:ID", ASSERTION)
    assert result.returncode == 0, result.stderr
    tampered = issue(assertion_only=True).replace(b"Dupont", b"Durand")
    assert _xmlsec1_verify(tmp_path, tampered, "--id-attr:ID", ASSERTION).returncode != 0


@needs_xmlsec1
def test_xmlsec1_verifies_both_signatures_of_a_response(tmp_path: Path) -> None:
    document = issue()
    ids = ("--id-attr:ID", ASSERTION, "--id-attr:ID", RESPONSE)
    whole = _xmlsec1_verify(tmp_path, document, *ids)  # first Signature: the Response's
    assert whole.returncode == 0, whole.stderr
    inner = _xmlsec1_verify(
        tmp_path,
        document,
        *ids,
        "--node-xpath",
        "//*[local-name()='Assertion']/*[local-name()='Signature']",
    )
    assert inner.returncode == 0, inner.stderr
