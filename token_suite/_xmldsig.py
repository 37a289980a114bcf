"""Low-level XML-DSig for the SAML jeton and metadata (private module).

Everything that touches XML parsing and XML signatures lives here:

* :func:`parse_xml` is the only way a document from outside is parsed: no DTD,
  no entity expansion, no network, no huge trees (stops XXE, billion laughs and
  SSRF through external entities or DTDs).
* :func:`signature_template` and :func:`sign` produce enveloped signatures
  (exclusive c14n, RSA-SHA256 or ECDSA-SHA256, SHA-256 digest) with python-xmlsec.
* :func:`verified_copy` verifies an enveloped signature and returns a *fresh
  tree* parsed from the canonical bytes of the signed element: callers read data
  only from what the signature covers ("see what is signed", as signxml does),
  which stops signature wrapping and comment truncation.

Cryptography and canonicalisation are libxmlsec1 and libxml2's, never ours.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from keys.model import SigningKey
from token_suite.errors import FailedCheck, InvalidSecurityToken

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DS = f"{{{DS_NS}}}"
SIGNATURE_TAG = f"{DS}Signature"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
NS = {"ds": DS_NS}

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

#: Signature methods accepted on verification (no SHA-1, no HMAC, no DSA).
SIGNATURE_METHODS = frozenset(
    {
        RSA_SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        ECDSA_SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    }
)
#: Digest methods accepted on verification (SHA-256 and stronger).
DIGEST_METHODS = frozenset(
    {
        SHA256,
        "http://www.w3.org/2001/04/xmldsig-more#sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512",
    }
)
#: The only reference transform chain accepted: enveloped, then exclusive c14n.
TRANSFORMS = [ENVELOPED, EXC_C14N]

_SIGNATURE_TRANSFORMS = (
    xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformRsaSha256,
    xmlsec.constants.TransformRsaSha384,
    xmlsec.constants.TransformRsaSha512,
    xmlsec.constants.TransformEcdsaSha256,
    xmlsec.constants.TransformEcdsaSha384,
    xmlsec.constants.TransformEcdsaSha512,
)
_REFERENCE_TRANSFORMS = (
    xmlsec.constants.TransformEnveloped,
    xmlsec.constants.TransformExclC14N,
    xmlsec.constants.TransformSha256,
    xmlsec.constants.TransformSha384,
    xmlsec.constants.TransformSha512,
)

_local = threading.local()
#: The hardening of every parser of outside XML, each flag tested on its own
#: (tests/token_suite/test_survivors.py): entities never expanded, nothing fetched
#: from the network (even where a DTD would be loaded), no DTD, at most libxml2's
#: default depth and text sizes (no ``XML_PARSE_HUGE``).
PARSER_OPTIONS: dict[str, bool] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_blank_text": False,
    # Comments and processing instructions are not kept: comments are not signed
    # content (exclusive c14n without comments) and the text around one is merged
    # ("abc<!---->def" reads "abcdef", never "abc"); a PI slipped in is ignored the
    # same way, and a PI the signer included makes the digest fail instead of being
    # read around. What is read of a parsed tree is then what its signature digests
    # (see verified_within).
    "remove_comments": True,
    "remove_pis": True,
}


def _parser() -> etree.XMLParser:
    # lxml parsers must not be shared between threads: one per thread.
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(**PARSER_OPTIONS)
        _local.parser = parser
    return parser


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted XML safely, refusing any DOCTYPE.

    Stops XXE (external entities, external DTDs), entity-expansion bombs
    ("billion laughs") and network access during parsing: entities are never
    resolved, DTDs never loaded, and a document that carries a DOCTYPE at all is
    refused. Raises :class:`InvalidSecurityToken`.
    """
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidSecurityToken(f"malformed XML: {exc}") from exc
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise InvalidSecurityToken("a DOCTYPE is not allowed")
    return root


def _ids_xpath() -> etree.XPath:
    # compiled once per thread (an lxml XPath object is not shared between threads)
    compiled: etree.XPath | None = getattr(_local, "ids", None)
    if compiled is None:
        compiled = _local.ids = etree.XPath("//@ID | //@xml:id")
    return compiled


def refuse_duplicate_ids(root: etree._Element) -> None:
    """Refuse a document in which two elements share an ``ID`` (or ``xml:id``).

    Stops wrapping attacks that make a reference resolve to another element
    than the one the verifier reads. Raises :class:`FailedCheck`.
    """
    ids: list[str] = [str(v) for v in _ids_xpath()(root)]
    if len(ids) != len(set(ids)):
        raise FailedCheck("duplicate ID in the document")


# --------------------------------------------------------------------- signing


@dataclass(frozen=True)
class SignerMaterial:
    """What signing with one key needs, prepared once per key (see :func:`material`)."""

    key: xmlsec.Key
    certificate_b64: str
    signature_method: str
    #: the raw XML-DSig signature of bytes (PKCS#1 v1.5, or ECDSA r||s)
    raw_sign: Callable[[bytes], bytes]


@lru_cache(maxsize=32)
def _material(kid: str, signer: SigningKey) -> SignerMaterial:
    if signer.certificate is None:
        raise ValueError(f"key {kid} has no certificate: not a SAML signing key")
    pem = signer.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der = signer.certificate.public_bytes(serialization.Encoding.DER)
    is_ec = isinstance(signer.private_key, ec.EllipticCurvePrivateKey)
    return SignerMaterial(
        key=xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem),
        certificate_b64=base64.b64encode(der).decode("ascii"),
        signature_method=ECDSA_SHA256 if is_ec else RSA_SHA256,
        raw_sign=signer.sign,
    )


def material(signer: SigningKey) -> SignerMaterial:
    """The xmlsec key, certificate and algorithm of ``signer``, cached by ``kid``."""
    return _material(signer.kid, signer)


def signature_template(reference_id: str, material: SignerMaterial) -> str:
    """An enveloped ``ds:Signature`` template (as text) referencing ``#reference_id``.

    ``reference_id`` must be an XML NCName the caller generated (no escaping).
    """
    return (
        f'<ds:Signature xmlns:ds="{DS_NS}"><ds:SignedInfo>'
        f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/>'
        f'<ds:SignatureMethod Algorithm="{material.signature_method}"/>'
        f'<ds:Reference URI="#{reference_id}"><ds:Transforms>'
        f'<ds:Transform Algorithm="{ENVELOPED}"/><ds:Transform Algorithm="{EXC_C14N}"/>'
        f'</ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"/>'
        "<ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>"
        "<ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data>"
        f"<ds:X509Certificate>{material.certificate_b64}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></ds:Signature>"
    )


def sign(element: etree._Element, signature: etree._Element, material: SignerMaterial) -> None:
    """Fill the template ``signature`` (a child of ``element``) in place, with xmlsec."""
    ctx = xmlsec.SignatureContext()
    ctx.register_id(element, "ID")
    ctx.key = material.key
    ctx.sign(signature)


def canonical_bytes(element: etree._Element) -> bytes:
    """Inclusive c14n of ``element`` without comments (libxml2's), or
    :class:`InvalidSecurityToken` when a namespace URI in scope is relative or not a
    URI (``xmlns:zz="relative"``): C14N 1.0 refuses those, and so does this check 1."""
    try:
        return bytes(etree.tostring(element, method="c14n", with_comments=False))
    except etree.C14NError as exc:
        raise InvalidSecurityToken(
            "the document cannot be canonicalised: relative or malformed namespace URI"
        ) from exc


def _c14n(element: etree._Element) -> bytes:
    return bytes(etree.tostring(element, method="c14n", exclusive=True, with_comments=False))


def _prepared_signature(material: SignerMaterial) -> etree._Element:
    """A fresh ``ds:Signature`` of :func:`signature_template` for ``material`` (its
    reference, digest and value empty): parsed once per key and thread (an lxml tree is
    not shared between threads), then deep-copied for each signature (issue 18)."""
    prepared: dict[tuple[str, str], etree._Element] | None = getattr(_local, "signatures", None)
    if prepared is None or len(prepared) > 16:  # a few keys in use at once, at most
        prepared = _local.signatures = {}
    key = (material.signature_method, material.certificate_b64)
    template = prepared.get(key)
    if template is None:
        template = prepared[key] = etree.fromstring(signature_template("", material))
    return copy.deepcopy(template)


def sign_enveloped(element: etree._Element, material: SignerMaterial, *, position: int) -> None:
    """Insert an enveloped signature of ``element`` (as its child at ``position``).

    The lean issuing path: the same signature :func:`signature_template` and
    :func:`sign` produce, a copy of that template prepared once per key
    (:func:`_prepared_signature`, no parsing per signature) filled around libxml2's
    exclusive c14n (lxml) of ``element`` and of the ``SignedInfo`` and pyca/cryptography's
    signature (``SigningKey.sign``), without xmlsec's per-signature transform machinery
    (measured slower: docs/profile.md, « Mesures de la navigation SSO »). Verification
    always goes through xmlsec (:func:`verified_copy`), and the interoperability tests
    check these signatures with xmlsec1 and pysaml2.
    """
    digest = base64.b64encode(hashlib.sha256(_c14n(element)).digest()).decode("ascii")
    signature = _prepared_signature(material)
    signed_info, value = signature[0], signature[1]
    reference = signed_info[2]  # CanonicalizationMethod, SignatureMethod, Reference
    reference.set("URI", f"#{element.get('ID')}")
    reference[2].text = digest  # Transforms, DigestMethod, DigestValue
    value.text = base64.b64encode(material.raw_sign(_c14n(signed_info))).decode("ascii")
    element.insert(position, signature)


# ---------------------------------------------------------------- verification


@lru_cache(maxsize=64)
def _verification_key(certificate: x509.Certificate) -> xmlsec.Key:
    """The certificate's public key as xmlsec's key (loaded once per certificate).

    Loaded as a bare public key (SubjectPublicKeyInfo), not as a certificate: xmlsec
    copies the key into every signature context, and a certificate-bearing key costs
    a certificate copy each time (about 60 µs a signature), for nothing: the trust in
    the certificate is the registry's, and no chain is built here.
    """
    pem = certificate.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatPem)


def _algorithm(element: etree._Element | None) -> str:
    return "" if element is None else str(element.get("Algorithm") or "")


def _check_signed_info(signature: etree._Element, element_id: str) -> None:
    """Allow-list the algorithms and require one reference to ``#element_id``
    (one pass over SignedInfo's children: the verification hot path)."""
    signed_info = signature.find(f"{DS}SignedInfo")
    references = [] if signed_info is None else signed_info.findall(f"{DS}Reference")
    if signed_info is None or len(references) != 1:
        raise FailedCheck("the signature must have exactly one Reference")
    reference: Any = references[0]
    if reference.get("URI") != f"#{element_id}":
        raise FailedCheck("the signature does not reference the signed element")
    if _algorithm(signed_info.find(f"{DS}CanonicalizationMethod")) != EXC_C14N:
        raise FailedCheck("canonicalisation method not allowed")
    if _algorithm(signed_info.find(f"{DS}SignatureMethod")) not in SIGNATURE_METHODS:
        raise FailedCheck("signature algorithm not allowed")
    transforms = [t.get("Algorithm") for t in reference.iterfind(f"{DS}Transforms/{DS}Transform")]
    if transforms != TRANSFORMS:
        raise FailedCheck("reference transforms not allowed")
    if _algorithm(reference.find(f"{DS}DigestMethod")) not in DIGEST_METHODS:
        raise FailedCheck("digest algorithm not allowed")


def _signature_child(element: etree._Element) -> etree._Element:
    signatures = element.findall(SIGNATURE_TAG)
    if len(signatures) != 1:
        raise FailedCheck(f"expected exactly one signature on the element, found {len(signatures)}")
    return signatures[0]


def _verify_with_any(signature: etree._Element, keys: Iterable[xmlsec.Key]) -> None:
    for key in keys:
        ctx = xmlsec.SignatureContext()
        for transform in _SIGNATURE_TRANSFORMS:
            ctx.enable_signature_transform(transform)
        for transform in _REFERENCE_TRANSFORMS:
            ctx.enable_reference_transform(transform)
        ctx.key = key
        try:
            ctx.verify(signature)
        except xmlsec.Error:
            continue
        return
    raise FailedCheck("the signature does not verify with any trusted key")


def verified_copy(
    element: etree._Element, *, certificates: Iterable[x509.Certificate]
) -> etree._Element:
    """Verify the enveloped signature of ``element``; return what it signs, re-parsed.

    The element is canonicalised (comments dropped, in-scope namespaces kept)
    and parsed again into a document of its own; the signature is verified on
    that copy, which is returned. Reading only from the copy stops signature
    wrapping (XSW: the data read is the data signed) and comment truncation
    (``abc<!---->def`` reads ``abcdef``). The key comes only from
    ``certificates`` (each tried in turn): ``KeyInfo`` is removed before
    verification, so a key carried in the token is never used. Algorithms are
    allow-listed (no SHA-1, HMAC, XPath/XSLT transforms, external references).
    Raises :class:`FailedCheck`; :class:`InvalidSecurityToken` for an element that
    canonicalisation refuses (a relative or malformed namespace URI in scope).
    """
    element_id = _element_id(element)
    copy = parse_xml(canonical_bytes(element))
    refuse_duplicate_ids(copy)
    _verify_enveloped(copy, element_id, certificates)
    return copy


def verified_within(
    element: etree._Element, *, certificates: Iterable[x509.Certificate]
) -> etree._Element:
    """Verify the enveloped signature of ``element`` in place; return ``element``.

    For an element of a tree that :func:`parse_xml` made (no comments, no processing
    instructions, no DTD or entities) and whose IDs are unique
    (:func:`refuse_duplicate_ids`): there, what is read is what exclusive c14n
    digests, so the copy :func:`verified_copy` makes would hold the same content. A
    signed Response (the document's root) is verified so, then its Assertion:
    everything read is covered by the Response's signature and by the Assertion's.
    Same checks as :func:`verified_copy` otherwise: one Reference, to this element's
    ``ID`` only (registered alone), allow-listed algorithms, ``KeyInfo`` removed,
    keys from ``certificates`` only. Raises :class:`FailedCheck`, or
    :class:`InvalidSecurityToken` for an element canonicalisation refuses.
    """
    _verify_enveloped(element, _element_id(element), certificates)
    return element


def _element_id(element: etree._Element) -> str:
    element_id = element.get("ID")
    if not element_id:
        raise FailedCheck("the signed element has no ID")
    return str(element_id)


def _verify_enveloped(
    element: etree._Element, element_id: str, certificates: Iterable[x509.Certificate]
) -> None:
    signature = _signature_child(element)
    _check_signed_info(signature, element_id)
    for key_info in signature.findall(f"{DS}KeyInfo"):
        signature.remove(key_info)
    # Only this element's ID is made resolvable: the single reference can only
    # designate it.
    xmlsec.SignatureContext().register_id(element, "ID")
    try:
        _verify_with_any(signature, (_verification_key(c) for c in certificates))
    except FailedCheck:
        canonical_bytes(element)  # a namespace c14n refuses is check 1, not a bad signature
        raise
