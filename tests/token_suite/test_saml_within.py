"""A signed Response's Assertion is verified inside the Response's verified copy
(``_xmldsig.verified_within``): the Assertion's own signature is still required and
checked with the trusted keys only, and references nothing but the Assertion."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from token_suite import _xmldsig
from token_suite.errors import FailedCheck

from . import saml_support as s


def _response(change_assertion: Callable[[etree._Element], None]) -> bytes:
    """A Response whose Assertion was changed, then the Response signed by the IdP."""
    root = etree.fromstring(s.issue(sign_response=False))
    change_assertion(root.find("saml:Assertion", s.NS))
    s.resign(root, s.IDP)
    return s.serialize(root)


def test_a_genuine_response_still_verifies() -> None:
    assert s.verify(_response(lambda a: None)).subject == s.VECTOR.subject


def test_the_assertion_signature_is_checked_inside_a_signed_response() -> None:
    document = _response(lambda assertion: s.resign(assertion, s.ATTACKER))
    with pytest.raises(FailedCheck, match="does not verify with any trusted key"):
        s.verify(document)


def test_an_unsigned_assertion_inside_a_signed_response_is_refused() -> None:
    def unsign(assertion: etree._Element) -> None:
        assertion.remove(assertion.find(_xmldsig.SIGNATURE_TAG))

    with pytest.raises(FailedCheck, match="exactly one signature"):
        s.verify(_response(unsign))


def test_an_assertion_signature_must_reference_the_assertion() -> None:
    def elsewhere(assertion: etree._Element) -> None:
        reference = assertion.find("ds:Signature/ds:SignedInfo/ds:Reference", s.NS)
        reference.set("URI", f"#{assertion.getparent().get('ID')}")

    with pytest.raises(FailedCheck, match="does not reference the signed element"):
        s.verify(_response(elsewhere))


def test_the_assertion_content_changed_after_its_signature_is_refused() -> None:
    """The Response signature covers the change, the Assertion's does not."""

    def tamper(assertion: etree._Element) -> None:
        name_id = assertion.find("saml:Subject/saml:NameID", s.NS)
        name_id.text = "D9999999"

    with pytest.raises(FailedCheck):
        s.verify(_response(tamper))


def test_verification_keys_are_loaded_once_per_certificate() -> None:
    key = _xmldsig._verification_key(s.IDP.certificate)
    assert key is _xmldsig._verification_key(s.IDP.certificate)
    assert key is not _xmldsig._verification_key(s.ATTACKER.certificate)


def test_comments_and_processing_instructions_are_never_read() -> None:
    """The parser keeps neither: one slipped into a genuine jeton changes nothing that
    is read (the text around it is merged, as the signature's c14n digests it)."""
    genuine = s.issue()
    assert b"D0000001</saml:NameID>" in genuine
    for inserted in (b"<!-- x -->", b"<?x y?>"):
        document = genuine.replace(
            b"D0000001</saml:NameID>", b"D000" + inserted + b"0001</saml:NameID>"
        )
        assert s.verify(document).subject == "D0000001"
    root = _xmldsig.parse_xml(b"<a>abc<!---->def<?pi x?>ghi</a>")
    assert root.text == "abcdefghi" and len(root) == 0


def test_a_signer_s_processing_instruction_is_not_read_around() -> None:
    """Signed content that held a PI no longer matches its digest once the PI is
    dropped: refused, never read as the text on one side of it."""

    def with_pi(assertion: etree._Element) -> None:
        name_id = assertion.find("saml:Subject/saml:NameID", s.NS)
        name_id.text = "D000"
        name_id.append(etree.ProcessingInstruction("x", "y"))
        name_id[-1].tail = "0001"

    with pytest.raises(FailedCheck):
        s.verify(s.crafted(with_pi))
