"""SAML 2.0 bindings for both sides of a federation: HTTP-Redirect and HTTP-POST.

Partners use these to send the operator their AuthnRequests and logout messages and
to check the operator's; the operator uses the same code for the other direction.
No Flask, no database: the caller hands in what it read from the request.

* HTTP-Redirect: :func:`redirect_parameters` reads the raw query string and keeps
  the exact octets the sender signed (SAML Bindings 3.4.4.1);
  :func:`verify_redirect_signature` checks them with pyca/cryptography (RSA-SHA256 or
  ECDSA-SHA256 only: no SHA-1, no HMAC); :func:`signed_redirect_query` signs ours.
* HTTP-POST: enveloped XML signatures, verified with python-xmlsec through
  :func:`token_suite._xmldsig.verified_copy` (only the signed copy is read).
* Every document from outside goes through ``_xmldsig.parse_xml`` (no DTD, no
  entities, no network) after a size cap, and a deflated message is inflated with
  a cap too (stops deflate bombs).
* :func:`receive_redirect` and :func:`receive_post` do all of it for a message from a
  trusted operator (its metadata's certificates and entityID, never the message's).

Every refusal is a :class:`MessageError` (an :class:`~token_suite.errors.InteropsError`):
``wsse:InvalidSecurityToken`` for a malformed message, ``wsse:FailedCheck`` for a
missing or wrong signature.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from keys.model import SigningKey
from token_suite import _xmldsig
from token_suite.errors import FailedCheck, InvalidSecurityToken
from token_suite.trust import Trust

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
A = f"{{{SAML_NS}}}"
P = f"{{{SAMLP_NS}}}"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"

RSA_SHA256 = _xmldsig.RSA_SHA256
ECDSA_SHA256 = _xmldsig.ECDSA_SHA256
#: SigAlg values accepted on the HTTP-Redirect binding.
REDIRECT_SIG_ALGS = frozenset({RSA_SHA256, ECDSA_SHA256})
#: Largest SAML message read, before and after inflating (bytes).
MAX_MESSAGE_SIZE = 64 * 1024
MESSAGE_KINDS = ("SAMLRequest", "SAMLResponse")


class MessageError(InvalidSecurityToken):
    """A SAML protocol message refused: malformed, or unexpected where it arrived."""


class MessageSignatureError(MessageError, FailedCheck):
    """A SAML protocol message unsigned where it must be, or not signed by a trusted key
    (a :class:`FailedCheck` as well as a :class:`MessageError`)."""

    code = FailedCheck.code
    http_status = FailedCheck.http_status


def _b64decode(value: str) -> bytes:
    if len(value) > MAX_MESSAGE_SIZE * 2:
        raise MessageError("message trop volumineux")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MessageError("message SAML mal encodé (base64)") from None


def decode_redirect(value: str) -> bytes:
    """The XML of an HTTP-Redirect message: base64, then raw DEFLATE, capped."""
    inflater = zlib.decompressobj(-15)
    try:
        xml = inflater.decompress(_b64decode(value), MAX_MESSAGE_SIZE + 1)
    except zlib.error:
        raise MessageError("message SAML mal compressé (DEFLATE)") from None
    if len(xml) > MAX_MESSAGE_SIZE or inflater.unconsumed_tail:
        raise MessageError("message trop volumineux")
    return xml


def decode_post(value: str) -> bytes:
    """The XML of an HTTP-POST message (base64), capped."""
    xml = _b64decode(value)
    if len(xml) > MAX_MESSAGE_SIZE:
        raise MessageError("message trop volumineux")
    return xml


def encode_redirect(xml: bytes) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode("ascii")


def encode_post(xml: bytes) -> str:
    return base64.b64encode(xml).decode("ascii")


@dataclass(frozen=True)
class RedirectParameters:
    """The parameters of an HTTP-Redirect message and the octets its signature covers."""

    kind: str
    message: str
    relay_state: str | None
    sig_alg: str | None
    signature: str | None
    signed_octets: bytes


def redirect_parameters(raw_query: bytes, kind: str) -> RedirectParameters:
    """Read ``kind`` (SAMLRequest or SAMLResponse), RelayState, SigAlg and Signature
    from the raw query string, keeping the exact octets the sender signed.

    A parameter given twice is refused: the value verified must be the value read
    (stops a second, unsigned ``SAMLRequest`` slipped beside the signed one).
    """
    try:
        raw_query.decode("ascii")
    except UnicodeDecodeError:
        raise MessageError("chaîne de requête non encodée") from None
    raw: dict[str, bytes] = {}
    for part in raw_query.split(b"&"):
        name = unquote_plus(part.split(b"=", 1)[0].decode("ascii", "replace"))
        if name in (*MESSAGE_KINDS, "RelayState", "SigAlg", "Signature"):
            if name in raw:
                raise MessageError(f"paramètre {name} en double")
            raw[name] = part
    if kind not in raw or (set(MESSAGE_KINDS) - {kind}) & raw.keys():
        raise MessageError(f"paramètre {kind} absent")

    def value(name: str) -> str | None:
        part = raw.get(name)
        return None if part is None else unquote_plus(part.partition(b"=")[2].decode("ascii"))

    signed = [raw[n] for n in (kind, "RelayState", "SigAlg") if n in raw]
    message = value(kind)
    assert message is not None
    return RedirectParameters(
        kind, message, value("RelayState"), value("SigAlg"), value("Signature"), b"&".join(signed)
    )


def _verify_with(key: object, alg: str, signature: bytes, octets: bytes) -> bool:
    try:
        if alg == RSA_SHA256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, octets, padding.PKCS1v15(), hashes.SHA256())
            return True
        if alg == ECDSA_SHA256 and isinstance(key, ec.EllipticCurvePublicKey):
            size = (key.curve.key_size + 7) // 8
            if len(signature) == 2 * size:  # XML-DSig form: r || s
                r, s = signature[:size], signature[size:]
                signature = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            key.verify(signature, octets, ec.ECDSA(hashes.SHA256()))
            return True
    except InvalidSignature:
        return False
    return False


def verify_redirect_signature(
    params: RedirectParameters, certificates: Iterable[x509.Certificate]
) -> None:
    """Check the HTTP-Redirect signature over the exact query octets with one of
    ``certificates`` (the sender's, from the registry, never from the message).

    Only RSA-SHA256 and ECDSA-SHA256 are accepted (stops SHA-1 collisions and
    algorithm confusion such as HMAC keyed with a public key). Raises
    :class:`MessageError`.
    """
    if params.sig_alg not in REDIRECT_SIG_ALGS:
        raise MessageSignatureError("algorithme de signature refusé (RSA-SHA256 ou ECDSA-SHA256)")
    if not params.signature:
        raise MessageSignatureError("signature absente")
    signature = _b64decode(params.signature)
    for certificate in certificates:
        if _verify_with(certificate.public_key(), params.sig_alg, signature, params.signed_octets):
            return
    raise MessageSignatureError("la signature ne correspond à aucun certificat du partenaire")


def signed_redirect_query(
    kind: str, xml: bytes, relay_state: str | None, signer: SigningKey
) -> str:
    """The query string of an HTTP-Redirect message signed with ``signer``."""
    sig_alg = _xmldsig.material(signer).signature_method
    parts = [f"{kind}={quote_plus(encode_redirect(xml))}"]
    if relay_state:
        parts.append(f"RelayState={quote_plus(relay_state)}")
    parts.append(f"SigAlg={quote_plus(sig_alg)}")
    signature = base64.b64encode(signer.sign("&".join(parts).encode("ascii"))).decode("ascii")
    return "&".join([*parts, f"Signature={quote_plus(signature)}"])


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


# ---------------------------------------------------------------------- parsing


def parse_message(xml: bytes, tags: Sequence[str] | None) -> etree._Element:
    """Parse a message safely (no DTD, no entities) and check it is a SAML 2.0 protocol
    message, whose root is one of ``tags`` when given."""
    try:
        root = _xmldsig.parse_xml(xml)
    except InvalidSecurityToken as exc:
        raise MessageError(f"XML refusé : {exc.reason}") from None
    if not isinstance(root.tag, str) or not root.tag.startswith(P):
        raise MessageError("message inattendu : pas un message du protocole SAML 2.0")
    if tags is not None and root.tag not in [f"{P}{t}" for t in tags]:
        raise MessageError(f"message inattendu (attendu : {', '.join(tags)})")
    if root.get("Version") != "2.0" or not root.get("ID"):
        raise MessageError("message SAML 2.0 sans Version 2.0 ou sans ID")
    return root


def issuer_of(root: etree._Element) -> str:
    issuer = root.find(f"{A}Issuer")
    text = "" if issuer is None or issuer.text is None else issuer.text.strip()
    if not text:
        raise MessageError("Issuer absent")
    return text


def has_xml_signature(root: etree._Element) -> bool:
    return root.find(_xmldsig.SIGNATURE_TAG) is not None


def verified_xml(root: etree._Element, certificates: Sequence[x509.Certificate]) -> etree._Element:
    """Verify the enveloped signature of a POST message; return the signed copy only
    (stops signature wrapping: what is read is what was signed)."""
    try:
        return _xmldsig.verified_copy(root, certificates=certificates)
    except (FailedCheck, InvalidSecurityToken) as exc:
        raise MessageSignatureError(f"signature XML refusée : {exc.reason}") from None


def receive_redirect(raw_query: bytes, kind: str, *, trust: Trust) -> etree._Element:
    """A ``kind`` message (SAMLRequest or SAMLResponse) of the trusted operator on the
    HTTP-Redirect binding, read from the raw query string: its signature checked over
    the exact query octets with a certificate of ``trust``, then parsed safely, and its
    Issuer must be ``trust.issuer``. Returns the root element (RelayState is in
    :func:`redirect_parameters`)."""
    params = redirect_parameters(raw_query, kind)
    verify_redirect_signature(params, trust.saml_certificates)
    return _from_operator(parse_message(decode_redirect(params.message), None), trust)


def receive_post(value: str, *, trust: Trust) -> etree._Element:
    """A message of the trusted operator on the HTTP-POST binding (the base64 form
    field): only the copy its enveloped signature covers, with a certificate of
    ``trust``, is returned (stops signature wrapping); Issuer must be ``trust.issuer``."""
    root = parse_message(decode_post(value), None)
    if not has_xml_signature(root):
        raise MessageSignatureError("message non signé")
    return _from_operator(verified_xml(root, trust.saml_certificates), trust)


def _from_operator(root: etree._Element, trust: Trust) -> etree._Element:
    if trust.issuer is not None and issuer_of(root) != trust.issuer:
        raise MessageError("émetteur inattendu")
    return root
