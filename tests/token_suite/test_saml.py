"""token_suite.saml: issuing, and each verification check in the profile's order."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from lxml import etree

from keys.generate import generate_key
from keys.model import KeyUse
from token_suite import _xmldsig, saml
from token_suite.errors import (
    FailedCheck,
    InvalidAuthLevel,
    InvalidIssuer,
    InvalidPagm,
    InvalidSecurityToken,
    InvalidService,
    InvalidVI,
    Replay,
    SecurityTokenUnavailable,
)
from token_suite.trust import Trust
from token_suite.vector import ACR_PASSWORD, ACR_TOTP, IdentityVector

from .saml_support import (
    AUDIENCE,
    ISSUER,
    NOW,
    NS,
    RECIPIENT,
    TRUST,
    VECTOR,
    crafted,
    fresh_cache,
    issue,
    resign,
    serialize,
    tree,
    verify,
)

A = saml.A

# ------------------------------------------------------------------- issuing


def test_issue_then_verify_roundtrip() -> None:
    vector = verify(issue())
    assert vector.subject == VECTOR.subject
    assert vector.pagm == VECTOR.pagm
    assert vector.habilitations == VECTOR.habilitations
    assert (vector.siret, vector.family_name, vector.given_name, vector.email) == (
        VECTOR.siret,
        VECTOR.family_name,
        VECTOR.given_name,
        VECTOR.email,
    )
    assert vector.acr == ACR_TOTP
    assert vector.auth_time == VECTOR.auth_time
    assert vector.session_index == VECTOR.session_index
    claims = vector.claims
    assert claims["issuer"] == ISSUER and claims["audience"] == AUDIENCE
    assert claims["not_before"] == NOW and claims["not_on_or_after"] == NOW + timedelta(minutes=5)
    assert claims["in_response_to"] == "_request0001" and claims["recipient"] == RECIPIENT
    assert claims["authn_instant"] == VECTOR.auth_time
    assert claims["id"].startswith("_")


def test_issued_response_shape() -> None:
    root = tree(issue())
    assert root.tag == saml.RESPONSE_TAG
    assert root[0].tag == f"{A}Issuer" and root[1].tag == _xmldsig.SIGNATURE_TAG
    assert root.get("InResponseTo") == "_request0001" and root.get("Destination") == RECIPIENT
    assertion = root.find("saml:Assertion", NS)
    assert assertion[1].tag == _xmldsig.SIGNATURE_TAG
    signature = assertion[1]
    si = "ds:SignedInfo/"
    assert signature.find(si + "ds:SignatureMethod", NS).get("Algorithm") == _xmldsig.RSA_SHA256
    assert signature.find(si + "ds:Reference", NS).get("URI") == "#" + assertion.get("ID")
    transforms = signature.findall(si + "ds:Reference/ds:Transforms/ds:Transform", NS)
    assert [t.get("Algorithm") for t in transforms] == _xmldsig.TRANSFORMS
    assert signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    names = [a.get("Name") for a in assertion.iterfind(".//saml:Attribute", NS)]
    assert names == ["PAGM", "habilitation", "siret", "nom", "prenom", "courriel"]
    assert {a.get("NameFormat") for a in assertion.iterfind(".//saml:Attribute", NS)} == {
        saml.BASIC
    }
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    assert name_id.get("Format") == saml.PERSISTENT


def test_issue_minimal_vector_omits_empty_attributes_and_in_response_to() -> None:
    document = issue(vector=IdentityVector(subject="NON_RENSEIGNE"), in_response_to=None)
    root = tree(document)
    assert root.get("InResponseTo") is None
    assert root.find(".//saml:AttributeStatement", NS) is None
    vector = verify(document)
    assert vector.subject == "NON_RENSEIGNE" and vector.pagm == () and vector.email is None
    assert vector.claims["in_response_to"] is None
    assert vector.auth_time == NOW and vector.session_index


def test_issue_unsigned_response_and_assertion_only() -> None:
    unsigned = tree(issue(sign_response=False))
    assert unsigned.find("ds:Signature", NS) is None
    assert verify(serialize(unsigned)).subject == VECTOR.subject
    bare = issue(assertion_only=True)
    assert tree(bare).tag == saml.ASSERTION_TAG
    assert verify(bare).subject == VECTOR.subject


def test_issue_with_ecdsa_key() -> None:
    key = generate_key(KeyUse.SAML, now=NOW, alg="ES256")
    document = issue(signer=key)
    method = tree(document).find(".//ds:SignatureMethod", NS).get("Algorithm")
    assert method == _xmldsig.ECDSA_SHA256
    trust = Trust(issuer=ISSUER, saml_certificates=(key.certificate,))  # type: ignore[arg-type]
    assert verify(document, trust=trust).subject == VECTOR.subject


def test_issue_escapes_markup() -> None:
    vector = IdentityVector(subject='a<b>&"c', family_name="<x/>")
    assert verify(issue(vector=vector, in_response_to='_"r')).subject == 'a<b>&"c'


def test_issue_refuses_naive_datetime_and_unencodable_text() -> None:
    with pytest.raises(ValueError, match="timezone"):
        issue(now=NOW.replace(tzinfo=None))
    with pytest.raises(ValueError, match="XML cannot carry"):
        issue(vector=IdentityVector(subject="a\x00b"))


def test_issue_refuses_key_without_certificate() -> None:
    key = generate_key(KeyUse.JWT, now=NOW, alg="RS256")
    with pytest.raises(ValueError, match="no certificate"):
        issue(signer=key)


# ------------------------------------------------------------------ check 1


def test_empty_document_is_unavailable() -> None:
    for empty in (b"", "  \n"):
        with pytest.raises(SecurityTokenUnavailable):
            verify(empty)


def test_size_cap() -> None:
    document = issue()
    with pytest.raises(InvalidSecurityToken, match="larger than"):
        verify(document, max_size=len(document) - 1)


def test_base64_form_post_and_str_input() -> None:
    document = issue()
    encoded = base64.b64encode(document).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert verify(wrapped).subject == VECTOR.subject
    assert verify(document.decode().split("?>", 1)[1]).subject == VECTOR.subject


def test_neither_xml_nor_base64() -> None:
    with pytest.raises(InvalidSecurityToken, match="neither XML nor base64"):
        verify("not base64 at all!")
    with pytest.raises(InvalidSecurityToken, match="malformed XML"):
        verify(base64.b64encode(b"garbage"))


def test_not_a_saml_document() -> None:
    with pytest.raises(InvalidSecurityToken, match="not a samlp:Response"):
        verify(b"<foo ID='x'/>")


# ------------------------------------------------------------------ check 2


def test_untrusted_key_fails() -> None:
    with pytest.raises(FailedCheck, match="any trusted key"):
        verify(issue(), trust=Trust(issuer=ISSUER))


def test_response_only_signed_is_refused() -> None:
    root = tree(issue())
    assertion = root.find("saml:Assertion", NS)
    assertion.remove(assertion.find("ds:Signature", NS))
    resign(root)
    with pytest.raises(FailedCheck, match="exactly one signature"):
        verify(serialize(root))


def test_tampered_response_signature_fails_even_with_good_assertion() -> None:
    root = tree(issue())
    root.set("Destination", "https://evil.example/acs")
    with pytest.raises(FailedCheck, match="any trusted key"):
        verify(serialize(root))


def test_assertion_must_be_child_of_response() -> None:
    root = tree(issue(sign_response=False))
    assertion = root.find("saml:Assertion", NS)
    holder = etree.SubElement(root, "Holder")
    holder.append(assertion)
    with pytest.raises(FailedCheck, match="found 1"):
        verify(serialize(root))
    holder.remove(assertion)
    with pytest.raises(FailedCheck, match="found 0"):
        verify(serialize(root))


def test_stray_signature_is_refused() -> None:
    root = tree(issue(sign_response=False))
    assertion = root.find("saml:Assertion", NS)
    stray = etree.SubElement(root, "Extensions")
    stray.append(etree.fromstring(etree.tostring(assertion.find("ds:Signature", NS))))
    with pytest.raises(FailedCheck, match="unexpected place"):
        verify(serialize(root))


@pytest.mark.parametrize("status", [None, "urn:oasis:names:tc:SAML:2.0:status:Requester"])
def test_response_status_must_be_success(status: str | None) -> None:
    root = tree(issue(sign_response=False))
    code = root.find("samlp:Status/samlp:StatusCode", NS)
    if status is None:
        root.remove(root.find("samlp:Status", NS))
    else:
        code.set("Value", status)
    with pytest.raises(InvalidSecurityToken, match="status"):
        verify(serialize(root))


# ------------------------------------------------------- structure (signed)


def _set(path: str, attribute: str, value: str | None):  # type: ignore[no-untyped-def]
    def mutate(assertion: etree._Element) -> None:
        element = assertion if path == "." else assertion.find(path, NS)
        if value is None:
            del element.attrib[attribute]
        else:
            element.set(attribute, value)

    return mutate


def _remove(path: str):  # type: ignore[no-untyped-def]
    def mutate(assertion: etree._Element) -> None:
        element = assertion.find(path, NS)
        element.getparent().remove(element)

    return mutate


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (_set(".", "Version", "1.1"), "not a SAML 2.0"),
        (_remove("saml:AuthnStatement"), "missing AuthnStatement"),
        (_remove("saml:AuthnStatement/saml:AuthnContext"), "AuthnContextClassRef"),
        (_set("saml:AuthnStatement", "AuthnInstant", "yesterday"), "malformed AuthnInstant"),
        (_remove("saml:Subject/saml:NameID"), "NameID"),
    ],
)
def test_malformed_signed_assertion(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidSecurityToken, match=reason):
        verify(crafted(mutate))


def test_name_id_with_child_element_is_refused() -> None:
    def mutate(assertion: etree._Element) -> None:
        etree.SubElement(assertion.find("saml:Subject/saml:NameID", NS), "b").text = "x"

    with pytest.raises(InvalidSecurityToken, match="NameID"):
        verify(crafted(mutate))


def test_empty_name_id_is_refused() -> None:
    def mutate(assertion: etree._Element) -> None:
        assertion.find("saml:Subject/saml:NameID", NS).text = None

    with pytest.raises(InvalidSecurityToken, match="NameID"):
        verify(crafted(mutate))


def _attribute(name: str, *values: str):  # type: ignore[no-untyped-def]
    def mutate(assertion: etree._Element) -> None:
        statement = assertion.find("saml:AttributeStatement", NS)
        attribute = etree.SubElement(statement, f"{A}Attribute", Name=name)
        for value in values:
            etree.SubElement(attribute, f"{A}AttributeValue").text = value

    return mutate


def test_single_valued_attribute_with_two_values_is_refused() -> None:
    with pytest.raises(InvalidSecurityToken, match="several values"):
        verify(crafted(_attribute("siret", "35600000000048")))


def test_malformed_habilitation_is_refused() -> None:
    with pytest.raises(InvalidSecurityToken, match="habilitation"):
        verify(crafted(_attribute("habilitation", "DSN-only")))


def test_unknown_attributes_are_ignored_and_multi_values_merge() -> None:
    document = crafted(_attribute("PAGM", "PAGM_X"))
    assert verify(crafted(_attribute("other", "v"))).pagm == VECTOR.pagm
    assert verify(document).pagm == (*VECTOR.pagm, "PAGM_X")


def test_naive_times_are_utc() -> None:
    document = crafted(_set("saml:Conditions", "NotOnOrAfter", "2025-03-01T10:05:00"))
    assert verify(document).claims["not_on_or_after"] == NOW + timedelta(minutes=5)


# ------------------------------------------------------------------ check 3


def test_validity_window_with_skew() -> None:
    document = issue()
    early = verify(document, now=NOW - timedelta(seconds=60))
    late = verify(document, now=NOW + timedelta(minutes=5, seconds=59))
    assert early == late and early.subject == VECTOR.subject
    assert early.claims["not_on_or_after"] == NOW + timedelta(minutes=5)
    with pytest.raises(InvalidVI, match="not valid yet"):
        verify(document, now=NOW - timedelta(seconds=61))
    with pytest.raises(InvalidVI, match="expired"):
        verify(document, now=NOW + timedelta(minutes=6))
    with pytest.raises(InvalidVI, match="expired"):
        verify(document, now=NOW + timedelta(minutes=5, seconds=1), skew=timedelta(0))


def test_missing_not_on_or_after_or_conditions() -> None:
    with pytest.raises(InvalidVI, match="no Conditions"):
        verify(crafted(_set("saml:Conditions", "NotOnOrAfter", None)))
    with pytest.raises(InvalidVI, match="no Conditions"):
        verify(crafted(_remove("saml:Conditions")))


def test_not_before_is_optional() -> None:
    vector = verify(crafted(_set("saml:Conditions", "NotBefore", None)))
    assert vector.claims["not_before"] is None


def test_subject_confirmation_not_on_or_after_is_checked() -> None:
    path = "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
    document = crafted(_set(path, "NotOnOrAfter", "2025-03-01T10:01:00Z"))
    vector = verify(document, now=NOW + timedelta(minutes=1))
    assert vector.subject == VECTOR.subject and vector.pagm == VECTOR.pagm
    assert vector.claims["not_on_or_after"] == NOW + timedelta(minutes=5)
    with pytest.raises(InvalidVI, match="subject confirmation"):
        verify(document, now=NOW + timedelta(minutes=2))


def test_subject_confirmation_is_optional() -> None:
    vector = verify(crafted(_remove("saml:Subject/saml:SubjectConfirmation")))
    assert vector.claims["recipient"] is None and vector.claims["in_response_to"] is None


# ------------------------------------------------------------------ check 4


def test_wrong_audience() -> None:
    with pytest.raises(InvalidService):
        verify(issue(), audience="https://other.example/metadata")


def test_audience_must_be_in_every_restriction() -> None:
    def second_restriction(assertion: etree._Element) -> None:
        conditions = assertion.find("saml:Conditions", NS)
        restriction = etree.SubElement(conditions, f"{A}AudienceRestriction")
        etree.SubElement(restriction, f"{A}Audience").text = "https://other.example"

    with pytest.raises(InvalidService):
        verify(crafted(second_restriction))
    with pytest.raises(InvalidService):
        verify(crafted(_remove("saml:Conditions/saml:AudienceRestriction")))


# ------------------------------------------------------------------ check 5


def test_issuer_from_parameter_or_trust() -> None:
    document = issue()
    assert verify(document, issuer=ISSUER, trust=Trust(saml_certificates=TRUST.saml_certificates))
    with pytest.raises(InvalidIssuer, match="no trusted issuer"):
        verify(document, trust=Trust(saml_certificates=TRUST.saml_certificates))
    with pytest.raises(InvalidIssuer, match="untrusted issuer"):
        verify(document, issuer="urn:other")


def test_response_issuer_must_match() -> None:
    root = tree(issue(sign_response=False))
    root.find("saml:Issuer", NS).text = "urn:other"
    with pytest.raises(InvalidIssuer):
        verify(serialize(root))


def test_bare_assertion_has_no_response_issuer() -> None:
    assert verify(issue(assertion_only=True)).claims["issuer"] == ISSUER


# ------------------------------------------------------------------ check 6


def test_min_acr() -> None:
    password = issue(vector=IdentityVector(subject="D1", acr=ACR_PASSWORD))
    assert verify(password, min_acr=ACR_PASSWORD).acr == ACR_PASSWORD
    with pytest.raises(InvalidAuthLevel):
        verify(password, min_acr=ACR_TOTP)
    assert verify(issue(), min_acr=ACR_TOTP).acr == ACR_TOTP
    with pytest.raises(ValueError, match="unknown authentication level"):
        verify(issue(), min_acr="urn:unknown")


def test_unknown_acr_fails_only_when_a_level_is_required() -> None:
    document = issue(vector=IdentityVector(subject="D1", acr="urn:custom"))
    assert verify(document).acr == "urn:custom"
    with pytest.raises(InvalidAuthLevel):
        verify(document, min_acr=ACR_PASSWORD)


# ------------------------------------------------------------------ check 7


def test_known_pagm() -> None:
    document = issue()
    assert verify(document, known_pagm={"PAGM_DSN_DECL", "PAGM_DSN_CONSULT", "PAGM_Z"})
    with pytest.raises(InvalidPagm):
        verify(document, known_pagm={"PAGM_DSN_DECL"})
    with pytest.raises(InvalidPagm):
        verify(issue(vector=IdentityVector(subject="D1")), known_pagm={"PAGM_DSN_DECL"})


# ------------------------------------------------------------------ check 8


def test_replay_is_detected() -> None:
    document, cache = issue(), fresh_cache()
    verify(document, replay=cache)
    with pytest.raises(Replay):
        verify(document, replay=cache)


def test_default_replay_cache_is_process_wide() -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    document = issue(now=now)
    saml.verify(document, trust=TRUST, audience=AUDIENCE, now=now)
    with pytest.raises(Replay):
        saml.verify(document, trust=TRUST, audience=AUDIENCE)
    from token_suite import jwt
    from token_suite.replay import DEFAULT_REPLAY_CACHE

    assert jwt.DEFAULT_REPLAY_CACHE is DEFAULT_REPLAY_CACHE  # one cache for both formats


def test_checks_run_in_profile_order() -> None:
    # expired AND wrong audience AND wrong issuer: check 3 decides.
    document = issue(audience="urn:x", issuer="urn:y")
    with pytest.raises(InvalidVI):
        verify(document, now=NOW + timedelta(hours=1))
    with pytest.raises(InvalidService):
        verify(document)
