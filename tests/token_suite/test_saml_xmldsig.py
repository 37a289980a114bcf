"""token_suite._xmldsig: safe parsing and the signature allow-lists."""

from __future__ import annotations

import pytest
from lxml import etree

from token_suite import _xmldsig
from token_suite.errors import FailedCheck, InvalidSecurityToken

from .saml_support import ATTACKER, IDP, NS, crafted, issue, resign, serialize, tree, verify

EXC = _xmldsig.EXC_C14N
INCLUSIVE = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"


def test_parse_refuses_doctype_without_entities() -> None:
    with pytest.raises(InvalidSecurityToken, match="DOCTYPE"):
        _xmldsig.parse_xml(b'<!DOCTYPE x SYSTEM "http://example.invalid/x.dtd"><x/>')


def test_parse_refuses_utf16_doctype() -> None:
    with pytest.raises(InvalidSecurityToken, match="DOCTYPE"):
        _xmldsig.parse_xml("<!DOCTYPE x [<!ELEMENT x ANY>]><x/>".encode("utf-16"))


def test_parse_never_resolves_undeclared_entities() -> None:
    with pytest.raises(InvalidSecurityToken, match="malformed"):
        _xmldsig.parse_xml(b"<x>&xxe;</x>")


def test_parse_per_thread_parser() -> None:
    import threading

    parsed: list[str] = []
    thread = threading.Thread(target=lambda: parsed.append(_xmldsig.parse_xml(b"<y/>").tag))
    thread.start()
    thread.join()
    assert parsed == ["y"] and _xmldsig.parse_xml(b"<x/>").tag == "x"


def test_duplicate_xml_id_counts() -> None:
    root = etree.fromstring(b'<r><a ID="i1"/><b xml:id="i1"/></r>')
    with pytest.raises(FailedCheck, match="duplicate"):
        _xmldsig.refuse_duplicate_ids(root)
    _xmldsig.refuse_duplicate_ids(etree.fromstring(b'<r><a ID="i1"/><b ID="i2"/></r>'))


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda t: t.replace(
                f'<ds:CanonicalizationMethod Algorithm="{EXC}"',
                f'<ds:CanonicalizationMethod Algorithm="{INCLUSIVE}"',
            ),
            "canonicalisation",
        ),
        (
            lambda t: t.replace(
                _xmldsig.RSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
            ),
            None,
        ),
        (lambda t: t.replace(_xmldsig.SHA256, "http://www.w3.org/2001/04/xmlenc#sha512"), None),
        (
            lambda t: t.replace(_xmldsig.SHA256, "http://www.w3.org/2000/09/xmldsig#sha1"),
            "digest algorithm",
        ),
        (lambda t: t.replace(f'<ds:Transform Algorithm="{EXC}"/>', ""), "transforms"),
        (
            lambda t: t.replace(
                f'<ds:Transform Algorithm="{EXC}"/>',
                f'<ds:Transform Algorithm="{EXC}WithComments"/>',
            ),
            "transforms",
        ),
        (
            lambda t: t.replace(
                "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>",
                "<ds:KeyInfo><ds:KeyName>k</ds:KeyName><ds:X509Data><ds:X509Certificate>",
                1,
            ),
            None,
        ),
    ],
)
def test_signed_info_allow_list(edit, reason: str | None) -> None:  # type: ignore[no-untyped-def]
    document = crafted(edit=edit)
    if reason is None:
        assert verify(document).subject == "D0000001"
    else:
        with pytest.raises(FailedCheck, match=reason):
            verify(document)


def test_reference_to_another_element_is_refused() -> None:
    root = tree(issue(sign_response=False))
    root.find(".//ds:Reference", NS).set("URI", "#" + root.get("ID"))
    with pytest.raises(FailedCheck, match="does not reference"):
        verify(serialize(root))


def test_two_references_are_refused() -> None:
    root = tree(issue(sign_response=False))
    reference = root.find(".//ds:Reference", NS)
    reference.addnext(etree.fromstring(etree.tostring(reference)))
    with pytest.raises(FailedCheck, match="exactly one Reference"):
        verify(serialize(root))


def test_signature_without_key_info_verifies() -> None:
    def no_key_info(template: str) -> str:
        start = template.index("<ds:KeyInfo>")
        return template[:start] + "</ds:Signature>"

    assert verify(crafted(edit=no_key_info)).subject == "D0000001"


def test_key_info_naming_another_key_is_ignored() -> None:
    def attacker_cert(template: str) -> str:
        ours = _xmldsig.material(IDP).certificate_b64
        return template.replace(ours, _xmldsig.material(ATTACKER).certificate_b64)

    assert verify(crafted(edit=attacker_cert)).subject == "D0000001"


def test_second_trusted_certificate_is_tried() -> None:
    from token_suite.trust import Trust

    assert ATTACKER.certificate is not None and IDP.certificate is not None
    trust = Trust(
        issuer="urn:interops:73282932000074:idp:test",
        saml_certificates=(ATTACKER.certificate, IDP.certificate),
    )
    assert verify(issue(), trust=trust).subject == "D0000001"


def test_two_signatures_on_the_assertion() -> None:
    root = tree(issue(sign_response=False))
    assertion = root.find("saml:Assertion", NS)
    signature = assertion.find("ds:Signature", NS)
    signature.addnext(etree.fromstring(etree.tostring(signature)))
    with pytest.raises(FailedCheck, match="found 2"):
        verify(serialize(root))


def test_signed_element_without_id() -> None:
    root = tree(issue(sign_response=False))
    del root.find("saml:Assertion", NS).attrib["ID"]
    with pytest.raises(FailedCheck, match="no ID"):
        verify(serialize(root))


def test_resign_helper_really_signs() -> None:
    root = tree(issue(assertion_only=True))
    root.find("saml:Subject/saml:NameID", NS).text = "other"
    with pytest.raises(FailedCheck):
        verify(serialize(root))
    resign(root)
    assert verify(serialize(root)).subject == "other"


def test_lean_signing_equals_xmlsec_signing() -> None:
    # sign_enveloped (lxml c14n + cryptography) must produce exactly the bytes
    # xmlsec's template signing produces (RSA PKCS#1 v1.5 is deterministic).
    lean = tree(issue(assertion_only=True))
    reference = etree.fromstring(etree.tostring(lean))
    reference.remove(reference.find("ds:Signature", NS))
    resign(reference)

    def values(root: etree._Element) -> list[str]:
        paths = (".//ds:DigestValue", ".//ds:SignatureValue")
        return ["".join(root.findtext(p, namespaces=NS).split()) for p in paths]

    assert values(lean) == values(reference)


def test_lean_signing_parses_nothing_once_its_template_is_prepared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18: the ``ds:Signature`` is a copy of a tree prepared once per key and
    thread, filled in place, not text parsed at each signature; each thread prepares
    its own (lxml trees are not shared between threads), and each signature verifies."""
    import threading

    material = _xmldsig.material(IDP)
    parse = etree.fromstring
    signed = []

    def sign_two(parses: list[str]) -> None:
        def counted(text: str | bytes, *args: object) -> etree._Element:
            parses.append("parse")
            return parse(text, *args)

        for number in (1, 2):
            element = parse(f'<a xmlns="urn:x" ID="_{number}"><b>c</b></a>')
            with monkeypatch.context() as patched:
                patched.setattr(_xmldsig.etree, "fromstring", counted)
                _xmldsig.sign_enveloped(element, material, position=0)
            signed.append(element)

    parses: list[str] = []
    other: list[str] = []
    sign_two(parses)
    thread = threading.Thread(target=sign_two, args=(other,))
    thread.start()
    thread.join()
    assert len(parses) <= 1 and len(other) == 1  # this thread may have prepared it before
    for element in signed:
        _xmldsig.verified_within(element, certificates=[IDP.certificate])
        reference = element[0].find("ds:SignedInfo/ds:Reference", NS)
        assert reference.get("URI") == "#" + element.get("ID")
