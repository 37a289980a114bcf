"""Partner-side SAML helpers: the HTTP-Redirect and HTTP-POST bindings both ways, the
protocol messages a service provider sends and receives, and its metadata."""

from __future__ import annotations

import base64
import zlib
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

import pytest
from lxml import etree

from keys.generate import generate_key
from keys.model import KeyUse
from token_suite import bindings, messages
from token_suite.errors import FailedCheck, InteropsError, InvalidSecurityToken
from token_suite.metadata import parse_sp_metadata
from token_suite.trust import Trust

NOW = datetime.now(UTC).replace(microsecond=0)
OPERATOR = "urn:interops:73282932000074:idp:test"
SP = "https://sp.example/metadata"
SLO = "https://sp.example/slo"
IDP_KEY = generate_key(KeyUse.SAML, now=NOW)
EC_KEY = generate_key(KeyUse.SAML, now=NOW, alg="ES256")
SP_KEY = generate_key(KeyUse.SAML, now=NOW)
TRUST = Trust(issuer=OPERATOR, saml_certificates=(IDP_KEY.certificate,))  # type: ignore[arg-type]


def _logout_request(issuer: str = OPERATOR, *, signer: object = None) -> bytes:
    return messages.build_logout_request(
        message_id=messages.new_id(),
        issuer=issuer,
        destination=SLO,
        name_id="D0000001",
        session_index="sid-1",
        now=NOW,
        signer=signer,  # type: ignore[arg-type]
    )


def _query(xml: bytes, key: object = IDP_KEY, relay_state: str | None = "r") -> bytes:
    return bindings.signed_redirect_query("SAMLRequest", xml, relay_state, key).encode()  # type: ignore[arg-type]


def test_operator_logout_request_on_the_redirect_binding_round_trips() -> None:
    root = bindings.receive_redirect(_query(_logout_request()), "SAMLRequest", trust=TRUST)
    request = messages.logout_request(root, destination=SLO, now=NOW)
    assert (request.issuer, request.name_id, request.session_indexes) == (
        OPERATOR,
        "D0000001",
        ("sid-1",),
    )
    assert bindings.redirect_parameters(_query(_logout_request()), "SAMLRequest").relay_state == "r"


def test_ecdsa_signed_queries_verify_too() -> None:
    trust = Trust(issuer=OPERATOR, saml_certificates=(EC_KEY.certificate,))  # type: ignore[arg-type]
    query = _query(_logout_request(), key=EC_KEY)
    assert bindings.receive_redirect(query, "SAMLRequest", trust=trust) is not None


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        # the signed octets changed after signing
        (lambda q: q.replace(b"RelayState=r", b"RelayState=x"), FailedCheck),
        # signature removed, or SigAlg downgraded to SHA-1
        (lambda q: q.split(b"&Signature=")[0], FailedCheck),
        (
            lambda q: q.replace(
                quote_plus(bindings.RSA_SHA256).encode(),
                quote_plus("http://www.w3.org/2000/09/xmldsig#rsa-sha1").encode(),
            ),
            FailedCheck,
        ),
        # a second, unsigned SAMLRequest slipped beside the signed one
        (lambda q: q + b"&SAMLRequest=AAAA", InvalidSecurityToken),
        (lambda q: q.replace(b"SAMLRequest=", b"SAMLResponse="), InvalidSecurityToken),
        (lambda q: q + b"&x=\xff", InvalidSecurityToken),
    ],
)
def test_tampered_redirect_queries_are_refused(mangle: object, error: type) -> None:
    query = mangle(_query(_logout_request()))  # type: ignore[operator]
    with pytest.raises(error):
        bindings.receive_redirect(query, "SAMLRequest", trust=TRUST)


def test_a_query_signed_by_another_key_or_issuer_is_refused() -> None:
    with pytest.raises(FailedCheck):
        bindings.receive_redirect(_query(_logout_request(), SP_KEY), "SAMLRequest", trust=TRUST)
    with pytest.raises(bindings.MessageError, match="émetteur inattendu"):
        bindings.receive_redirect(_query(_logout_request("urn:autre")), "SAMLRequest", trust=TRUST)


def test_deflate_bomb_and_bad_encodings_are_refused() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = base64.b64encode(compressor.compress(b"<" * 10_000_000) + compressor.flush())
    with pytest.raises(bindings.MessageError, match="trop volumineux"):
        bindings.decode_redirect(bomb.decode())
    with pytest.raises(bindings.MessageError, match="base64"):
        bindings.decode_post("pas du base64 !")
    with pytest.raises(bindings.MessageError, match="DEFLATE"):
        bindings.decode_redirect(base64.b64encode(b"\xff\xfe not deflate").decode())


def test_post_binding_returns_only_the_signed_copy() -> None:
    signed = _logout_request(signer=IDP_KEY)
    root = bindings.receive_post(bindings.encode_post(signed), trust=TRUST)
    assert messages.logout_request(root, destination=SLO, now=NOW).name_id == "D0000001"
    with pytest.raises(FailedCheck, match="non signé"):
        bindings.receive_post(bindings.encode_post(_logout_request()), trust=TRUST)
    with pytest.raises(FailedCheck):
        bindings.receive_post(bindings.encode_post(_logout_request(signer=SP_KEY)), trust=TRUST)
    # the NameID changed after signing
    tampered = signed.replace(b"D0000001", b"D0000002")
    with pytest.raises(FailedCheck):
        bindings.receive_post(bindings.encode_post(tampered), trust=TRUST)


def test_documents_that_are_not_protocol_messages_are_refused() -> None:
    for xml in (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>',
        b"<x/>",
        b'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>',
    ):
        with pytest.raises(InteropsError):
            bindings.parse_message(xml, None)


def test_authn_request_built_by_a_partner_is_read_by_the_operator() -> None:
    xml = messages.build_authn_request(
        issuer=SP, destination="https://idp.example/saml/sso", acs_url="https://sp.example/acs",
        now=NOW, force_authn=True,
    )  # fmt: skip
    query = bindings.signed_redirect_query("SAMLRequest", xml, None, SP_KEY)
    params = bindings.redirect_parameters(query.encode(), "SAMLRequest")
    bindings.verify_redirect_signature(params, [SP_KEY.certificate])  # type: ignore[list-item]
    root = bindings.parse_message(bindings.decode_redirect(params.message), ["AuthnRequest"])
    request = messages.authn_request(root, destination="https://idp.example/saml/sso", now=NOW)
    assert (request.issuer, request.acs_url, request.force_authn, request.is_passive) == (
        SP,
        "https://sp.example/acs",
        True,
        False,
    )
    late = NOW + messages.MAX_REQUEST_AGE + timedelta(seconds=1)
    with pytest.raises(bindings.MessageError, match="trop ancien"):
        messages.authn_request(root, destination="https://idp.example/saml/sso", now=late)


def test_sp_metadata_is_what_the_operator_registers() -> None:
    document = messages.sp_metadata(
        entity_id=SP, acs_url="https://sp.example/acs", signing_key=SP_KEY, slo_url=SLO
    )
    parsed = parse_sp_metadata(document)
    assert parsed.entity_id == SP and parsed.authn_requests_signed
    assert [e.location for e in parsed.assertion_consumer_services] == ["https://sp.example/acs"]
    assert [(e.binding, e.location) for e in parsed.single_logout_services] == [
        (bindings.BINDING_REDIRECT, SLO)
    ]
    assert parsed.signing_certificates == (SP_KEY.certificate,)
    bare = etree.fromstring(
        messages.sp_metadata(entity_id=SP, acs_url="https://sp.example/acs", signing_key=SP_KEY)
    )
    assert not bare.findall(".//{urn:oasis:names:tc:SAML:2.0:metadata}SingleLogoutService")
