"""Attack vectors (tests/vectors/saml, see make_vectors.py) and tampering."""

from __future__ import annotations

import json
from typing import Any

import pytest
import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree

from token_suite.errors import FailedCheck, InteropsError, Replay

from .saml_support import IDP, NS, VECTORS, fresh_cache, serialize, tree, verify

MANIFEST: list[dict[str, Any]] = json.loads((VECTORS / "manifest.json").read_text())


def _naive_verify(data: bytes) -> bool:
    """A naive verifier: first Signature in the document, every ID, trusted key."""
    assert IDP.certificate is not None
    pem = IDP.certificate.public_bytes(serialization.Encoding.PEM)
    try:
        root = etree.fromstring(data)
        xmlsec.tree.add_ids(root, ["ID"])
        signature = xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature)
        ctx = xmlsec.SignatureContext()
        ctx.key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatCertPem)
        ctx.verify(signature)
    except (xmlsec.Error, etree.XMLSyntaxError):
        return False
    return True


def test_manifest_covers_the_required_attacks() -> None:
    files = {entry["file"] for entry in MANIFEST}
    required = {f"xsw{i}.xml" for i in range(1, 9)} | {
        "duplicate_id.xml",
        "unsigned_beside_signed.xml",
        "keyinfo_key.xml",
        "rsa_sha1.xml",
        "dtd_xxe.xml",
        "billion_laughs.xml",
        "expired.xml",
        "not_yet_valid.xml",
        "wrong_audience.xml",
        "wrong_issuer.xml",
    }
    assert required <= files


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_vector_is_refused_with_its_code(entry: dict[str, Any]) -> None:
    data = (VECTORS / entry["file"]).read_bytes()
    with pytest.raises(InteropsError) as caught:
        verify(data)
    assert caught.value.code == entry["error"]
    assert entry["reason"], "an empty expected reason would match any refusal"
    assert entry["reason"] in caught.value.reason


@pytest.mark.parametrize(
    "entry", [e for e in MANIFEST if e.get("naive_valid")], ids=lambda e: e["file"]
)
def test_vector_fools_a_naive_verifier(entry: dict[str, Any]) -> None:
    # The vector is a real attack (its signature is valid to a naive check),
    # not merely a broken file.
    assert _naive_verify((VECTORS / entry["file"]).read_bytes())


def test_wrapping_variants_that_fool_naive_verifiers_exist() -> None:
    naive = {e["file"] for e in MANIFEST if e.get("naive_valid")}
    assert {"xsw2.xml", "xsw3.xml", "xsw4.xml", "xsw5.xml"} <= naive


@pytest.mark.parametrize(
    "name", ["valid_response.xml", "valid_assertion.xml", "valid_assertion_signed_only.xml"]
)
def test_valid_vectors_verify(name: str) -> None:
    assert verify((VECTORS / name).read_bytes()).subject == "D0000001"


def test_replayed_id_is_refused() -> None:
    data, cache = (VECTORS / "valid_response.xml").read_bytes(), fresh_cache()
    verify(data, replay=cache)
    with pytest.raises(Replay):
        verify(data, replay=cache)


def test_comment_in_name_id_reads_whole_text() -> None:
    # Signed NameID "D0000001" split as "D000<!-- split -->0001": comments are not
    # signed content, so the whole text is read, never the truncated "D000".
    data = (VECTORS / "comment_nameid.xml").read_bytes()
    assert b"D000<!-- split -->0001" in data
    assert verify(data).subject == "D0000001"


def _text_positions(root: etree._Element) -> list[tuple[etree._Element, str | None]]:
    """Signed text nodes and attributes of the Assertion (outside the Signature)."""
    assertion = root.find("saml:Assertion", NS)
    signature = assertion.find("ds:Signature", NS)
    positions: list[tuple[etree._Element, str | None]] = []
    for element in assertion.iter():
        if signature in element.iterancestors() or element is signature:
            continue
        if element.text and element.text.strip():
            positions.append((element, None))
        positions.extend((element, name) for name in element.attrib)
    return positions


def _flip(value: str) -> str:
    index = len(value) // 2
    replacement = "X" if value[index] != "X" else "Y"
    return value[:index] + replacement + value[index + 1 :]


def test_changing_any_signed_byte_fails() -> None:
    data = (VECTORS / "valid_assertion_signed_only.xml").read_bytes()
    count = len(_text_positions(tree(data)))
    assert count > 30
    for position in range(count):
        root = tree(data)
        element, attribute = _text_positions(root)[position]
        if attribute is None:
            element.text = _flip(element.text)
        else:
            element.set(attribute, _flip(element.get(attribute)))
        with pytest.raises(FailedCheck):
            verify(serialize(root))


def test_changing_signed_info_or_signature_value_fails() -> None:
    data = (VECTORS / "valid_assertion_signed_only.xml").read_bytes()
    for path in (".//ds:DigestValue", ".//ds:SignatureValue"):
        root = tree(data)
        element = root.find(path, NS)
        element.text = _flip(element.text.strip())
        with pytest.raises(FailedCheck):
            verify(serialize(root))


def test_added_element_in_assertion_fails() -> None:
    root = tree((VECTORS / "valid_assertion_signed_only.xml").read_bytes())
    etree.SubElement(root.find("saml:Assertion", NS), "Extra")
    with pytest.raises(FailedCheck):
        verify(serialize(root))
