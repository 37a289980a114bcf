"""Regenerate the SAML jeton attack vectors of this folder.

    python tests/vectors/saml/make_vectors.py

Reproducible: the trusted key (``idp_key.pem``/``idp_cert.pem``) and the
attacker's key are stored here (generated once if absent), the clock is fixed
(``NOW``), token IDs come from a counter and RSA PKCS#1 v1.5 signatures are
deterministic. ``manifest.json`` lists each vector with the error code and the
reason fragment :func:`token_suite.saml.verify` must raise at ``NOW``.

The eight XML signature wrapping variants follow Somorovsky et al., "On
Breaking SAML: Be Whoever You Want to Be" (USENIX Security 2012): XSW1-2 wrap
the Response signature, XSW3-8 the Assertion signature; in each the "evil"
content names the subject ``admin`` instead of the signed one.
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from keys.generate import new_private_key, self_signed_certificate
from keys.model import KeyState, KeyUse, SigningKey, thumbprint
from token_suite import _xmldsig, saml
from token_suite.vector import ACR_TOTP, Habilitation, IdentityVector

NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
ISSUER = "urn:interops:73282932000074:idp:test"
AUDIENCE = "https://sp.example/metadata"
RECIPIENT = "https://sp.example/acs"
NS = {
    "samlp": saml.SAMLP_NS,
    "saml": saml.SAML_NS,
    "ds": _xmldsig.DS_NS,
}
VECTOR = IdentityVector(
    subject="D0000001",
    siret="73282932000074",
    family_name="Dupont",
    given_name="Jeanne",
    email="jeanne.dupont@example.fr",
    pagm=("PAGM_DSN_DECL", "PAGM_DSN_CONSULT"),
    habilitations=(
        Habilitation("DSN", "73282932000074", "DECLARANT"),
        Habilitation("DSN", "73282932000074", "CONSULTANT"),
    ),
    acr=ACR_TOTP,
    auth_time=NOW - timedelta(minutes=1),
    session_index="_session0001",
)
SHA1_RSA = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"


def load_key(name: str) -> SigningKey:
    """The stored test key ``name`` (created once, then reused)."""
    key_path, cert_path = HERE / f"{name}_key.pem", HERE / f"{name}_cert.pem"
    if not key_path.exists():
        private = new_private_key("RS256")
        cert = self_signed_certificate(private, common_name=f"test {name}", now=NOW)
        key_path.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    private_key: Any = serialization.load_pem_private_key(key_path.read_bytes(), None)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return SigningKey(
        kid=thumbprint(private_key.public_key()),
        use=KeyUse.SAML,
        alg="RS256",
        state=KeyState.ACTIVE,
        private_key=private_key,
        created_at=NOW,
        certificate=certificate,
    )


_counter = itertools.count(1)


def _deterministic_id() -> str:
    return f"_id{next(_counter):04d}"


def issue(signer: SigningKey, **options: Any) -> etree._Element:
    """A jeton issued by token_suite with fixed IDs and clock, as a tree."""
    arguments: dict[str, Any] = {
        "signer": signer,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "recipient": RECIPIENT,
        "now": NOW,
        "in_response_to": "_request0001",
    }
    arguments.update(options)
    saml.new_id = _deterministic_id  # type: ignore[attr-defined]
    return etree.fromstring(saml.issue(VECTOR, **arguments))


def _set_subject(element: etree._Element, subject: str) -> None:
    for name_id in element.iter(f"{{{saml.SAML_NS}}}NameID"):
        name_id.text = subject


def _signature(element: etree._Element) -> etree._Element:
    return element.find(_xmldsig.SIGNATURE_TAG)


def _assertion(root: etree._Element) -> etree._Element:
    return root.find("saml:Assertion", NS)


def _evil_copy(assertion: etree._Element, new_id: str | None = "_evil") -> etree._Element:
    evil = copy.deepcopy(assertion)
    _set_subject(evil, "admin")
    evil.remove(_signature(evil))
    if new_id is not None:
        evil.set("ID", new_id)
    return evil


# ----------------------------------------------------------------- XSW 1 to 8


def _make_evil_response(response: etree._Element) -> None:
    """The Response the attacker wants read: new IDs, unsigned Assertion naming admin."""
    response.set("ID", "_evil_response")
    assertion = _assertion(response)
    assertion.addnext(_evil_copy(assertion, new_id="_evil_assertion"))
    response.remove(assertion)


def xsw1(idp: SigningKey) -> etree._Element:
    """Evil Response root; the signed original Response moved inside its Signature."""
    evil = issue(idp)
    original = copy.deepcopy(evil)
    original.remove(_signature(original))
    _make_evil_response(evil)
    _signature(evil).append(original)
    return evil


def xsw2(idp: SigningKey) -> etree._Element:
    """Like XSW1, the original Response placed before the Signature (detached)."""
    evil = issue(idp)
    original = copy.deepcopy(evil)
    original.remove(_signature(original))
    _make_evil_response(evil)
    _signature(evil).addprevious(original)
    return evil


def _assertion_signed_only(idp: SigningKey) -> tuple[etree._Element, etree._Element]:
    root = issue(idp, sign_response=False)
    return root, _assertion(root)


def xsw3(idp: SigningKey) -> etree._Element:
    """Evil unsigned Assertion inserted before the signed original."""
    root, assertion = _assertion_signed_only(idp)
    assertion.addprevious(_evil_copy(assertion))
    return root


def xsw4(idp: SigningKey) -> etree._Element:
    """Evil Assertion wrapping the signed original as its child."""
    root, assertion = _assertion_signed_only(idp)
    evil = _evil_copy(assertion)
    root.append(evil)
    evil.append(assertion)
    return root


def xsw5(idp: SigningKey) -> etree._Element:
    """Evil Assertion keeps the signature; an unsigned original copy is appended."""
    root, assertion = _assertion_signed_only(idp)
    original = copy.deepcopy(assertion)
    original.remove(_signature(original))
    _set_subject(assertion, "admin")
    assertion.set("ID", "_evil")
    root.append(original)
    return root


def xsw6(idp: SigningKey) -> etree._Element:
    """Like XSW5, the unsigned original copy placed inside the Signature."""
    root, assertion = _assertion_signed_only(idp)
    original = copy.deepcopy(assertion)
    original.remove(_signature(original))
    _set_subject(assertion, "admin")
    assertion.set("ID", "_evil")
    _signature(assertion).append(original)
    return root


def xsw7(idp: SigningKey) -> etree._Element:
    """Evil Assertion hidden in an Extensions element before the signed original."""
    root, assertion = _assertion_signed_only(idp)
    extensions = etree.Element("Extensions")
    assertion.addprevious(extensions)
    extensions.append(_evil_copy(assertion, new_id=None))
    return root


def xsw8(idp: SigningKey) -> etree._Element:
    """Evil Assertion keeps the signature; the original copy sits in a ds:Object-like child."""
    root, assertion = _assertion_signed_only(idp)
    original = copy.deepcopy(assertion)
    original.remove(_signature(original))
    _set_subject(assertion, "admin")
    holder = etree.SubElement(_signature(assertion), "Object")
    holder.append(original)
    return root


# ------------------------------------------------------------------ the others


def comment_in_name_id(idp: SigningKey) -> etree._Element:
    """Signed NameID ``D0000001.attacker``, split by a comment after signing."""
    root = issue(idp, sign_response=False)
    name_id = root.find(".//saml:NameID", NS)
    assert name_id.text == "D0000001"
    return root


def duplicate_id(idp: SigningKey) -> etree._Element:
    """An element outside the Assertion carries the Assertion's ID too."""
    root = issue(idp, sign_response=False)
    root.find("samlp:Status", NS).set("ID", _assertion(root).get("ID"))
    return root


def unsigned_beside_signed(idp: SigningKey) -> etree._Element:
    """A second, unsigned Assertion after the signed one."""
    root, assertion = _assertion_signed_only(idp)
    root.append(_evil_copy(assertion))
    return root


def keyinfo_key(attacker: SigningKey) -> etree._Element:
    """Signed by an untrusted key whose certificate travels in KeyInfo."""
    return issue(attacker)


def rsa_sha1(idp: SigningKey) -> etree._Element:
    """Signed by the trusted key, but with RSA-SHA1 and a SHA-1 digest."""
    root = issue(idp, sign_response=False)
    assertion = _assertion(root)
    signature = _signature(assertion)
    signature.find("ds:SignedInfo/ds:SignatureMethod", NS).set("Algorithm", SHA1_RSA)
    signature.find("ds:SignedInfo/ds:Reference/ds:DigestMethod", NS).set("Algorithm", SHA1)
    ctx = xmlsec.SignatureContext()
    ctx.register_id(assertion, "ID")
    ctx.key = _xmldsig.material(idp).key
    ctx.sign(signature)
    return root


def _issued_with(idp: SigningKey, **options: Any) -> Callable[[], etree._Element]:
    return lambda: issue(idp, **options)


DTD_XXE = (
    b'<?xml version="1.0"?>\n<!DOCTYPE samlp:Response [\n'
    b'  <!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n  <!ENTITY lol "lol">\n'
    + b"".join(
        b'  <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>\n"
)


def naive_verify(data: bytes, certificate: x509.Certificate | None) -> bool:
    """What a naive verifier does: first Signature found, any ID, trusted key.

    True means the vector fools it (a real attack, not merely a broken file).
    """
    assert certificate is not None
    pem = certificate.public_bytes(serialization.Encoding.PEM)
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


def _write(name: str, root: etree._Element) -> None:
    (HERE / name).write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def main() -> None:
    idp, attacker = load_key("idp"), load_key("attacker")
    manifest: list[dict[str, str]] = []

    def vector(name: str, root: etree._Element, error: str, reason: str) -> None:
        _write(name, root)
        naive = naive_verify((HERE / name).read_bytes(), idp.certificate)
        manifest.append({"file": name, "error": error, "reason": reason, "naive_valid": naive})

    _write("valid_response.xml", issue(idp))
    _write("valid_assertion.xml", issue(idp, assertion_only=True))
    _write("valid_assertion_signed_only.xml", issue(idp, sign_response=False))
    wrapping = (xsw1, xsw2, xsw3, xsw4, xsw5, xsw6, xsw7, xsw8)
    reasons = {
        "xsw1": "does not reference the signed element",
        "xsw2": "does not reference the signed element",
        "xsw3": "expected one Assertion",
        "xsw4": "expected one Assertion",
        "xsw5": "expected one Assertion",
        "xsw6": "expected one Assertion",
        "xsw7": "duplicate ID",
        "xsw8": "duplicate ID",
    }
    for make in wrapping:
        vector(f"{make.__name__}.xml", make(idp), "wsse:FailedCheck", reasons[make.__name__])
    vector("duplicate_id.xml", duplicate_id(idp), "wsse:FailedCheck", "duplicate ID")
    vector(
        "unsigned_beside_signed.xml",
        unsigned_beside_signed(idp),
        "wsse:FailedCheck",
        "expected one Assertion",
    )
    vector("keyinfo_key.xml", keyinfo_key(attacker), "wsse:FailedCheck", "any trusted key")
    vector("rsa_sha1.xml", rsa_sha1(idp), "wsse:FailedCheck", "algorithm not allowed")
    vector("expired.xml", issue(idp, now=NOW - timedelta(hours=1)), "vi:InvalidVI", "expired")
    vector(
        "not_yet_valid.xml",
        issue(idp, now=NOW + timedelta(hours=1)),
        "vi:InvalidVI",
        "not valid yet",
    )
    vector(
        "wrong_audience.xml",
        issue(idp, audience="https://other.example/metadata"),
        "vi:InvalidService",
        "not for audience",
    )
    vector(
        "wrong_issuer.xml",
        issue(idp, issuer="urn:interops:00000000000000:idp:evil"),
        "vi:InvalidIssuer",
        "untrusted issuer",
    )
    # A comment splitting the signed NameID: the text is read whole (not a failure).
    signed = etree.tostring(comment_in_name_id(idp), xml_declaration=True, encoding="UTF-8")
    (HERE / "comment_nameid.xml").write_bytes(
        signed.replace(b">D0000001<", b">D000<!-- split -->0001<", 1)
    )
    valid = (HERE / "valid_response.xml").read_bytes()
    body = valid.split(b"?>", 1)[1].replace(b">D0000001<", b">&xxe;<", 1)
    (HERE / "dtd_xxe.xml").write_bytes(DTD_XXE + body.lstrip())
    manifest.append(
        {"file": "dtd_xxe.xml", "error": "wsse:InvalidSecurityToken", "reason": "DOCTYPE"}
    )
    (HERE / "billion_laughs.xml").write_bytes(BILLION_LAUGHS)
    manifest.append(
        {
            "file": "billion_laughs.xml",
            "error": "wsse:InvalidSecurityToken",
            "reason": "malformed XML",
        }
    )
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
