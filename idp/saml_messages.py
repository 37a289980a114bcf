"""SAML 2.0 protocol messages of the IdP: bindings, request signatures, parsing, building.

No Flask, no database: the blueprint (:mod:`idp.sso_saml`) calls these with what
it read from the request and the registry.

* HTTP-Redirect: :func:`redirect_parameters` reads the raw query string and keeps
  the exact octets the sender signed; :func:`verify_redirect_signature` checks them
  with pyca/cryptography (RSA-SHA256 or ECDSA-SHA256 only: no SHA-1, no HMAC);
  :func:`signed_redirect_query` signs ours.
* HTTP-POST: enveloped XML signatures, verified with python-xmlsec through
  :func:`token_suite._xmldsig.verified_copy` (only the signed copy is read).
* Every document from outside goes through ``_xmldsig.parse_xml`` (no DTD, no
  entities, no network) after a size cap, and a deflated message is inflated with
  a cap too (stops deflate bombs).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
A = f"{{{SAML_NS}}}"
P = f"{{{SAMLP_NS}}}"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
REQUEST_DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"

RSA_SHA256 = _xmldsig.RSA_SHA256
ECDSA_SHA256 = _xmldsig.ECDSA_SHA256
#: SigAlg values accepted on the HTTP-Redirect binding.
REDIRECT_SIG_ALGS = frozenset({RSA_SHA256, ECDSA_SHA256})
#: Largest SAML message read, before and after inflating (bytes).
MAX_MESSAGE_SIZE = 64 * 1024
#: How far from our clock a request's IssueInstant may be.
MAX_REQUEST_AGE = timedelta(minutes=10)
MESSAGE_KINDS = ("SAMLRequest", "SAMLResponse")


class MessageError(ValueError):
    """A SAML message we refuse: malformed, unsigned where it must be, badly signed."""


# --------------------------------------------------------------------- bindings


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
        raise MessageError("algorithme de signature refusé (RSA-SHA256 ou ECDSA-SHA256)")
    if not params.signature:
        raise MessageError("signature absente")
    signature = _b64decode(params.signature)
    for certificate in certificates:
        if _verify_with(certificate.public_key(), params.sig_alg, signature, params.signed_octets):
            return
    raise MessageError("la signature ne correspond à aucun certificat du partenaire")


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


def parse_message(xml: bytes, tags: Sequence[str]) -> etree._Element:
    """Parse a message safely (no DTD, no entities) and check its root is one of ``tags``."""
    try:
        root = _xmldsig.parse_xml(xml)
    except InvalidSecurityToken as exc:
        raise MessageError(f"XML refusé : {exc.reason}") from None
    if root.tag not in [f"{P}{t}" for t in tags]:
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
        raise MessageError(f"signature XML refusée : {exc.reason}") from None


def _instant(value: str | None) -> datetime:
    try:
        parsed = datetime.fromisoformat(value or "")
    except ValueError:
        raise MessageError("horodatage invalide") from None
    if parsed.tzinfo is None:
        raise MessageError("horodatage sans fuseau")
    return parsed


def _check_envelope(root: etree._Element, *, destination: str, now: datetime) -> None:
    """Destination (when given) must be this endpoint; IssueInstant must be recent."""
    if root.get("Destination") is not None and root.get("Destination") != destination:
        raise MessageError("Destination ne désigne pas ce service")
    issued = _instant(root.get("IssueInstant"))
    if abs(now - issued) > MAX_REQUEST_AGE:
        raise MessageError("message trop ancien ou daté du futur")


def _flag(root: etree._Element, name: str) -> bool:
    return root.get(name) in ("true", "1")


@dataclass(frozen=True)
class AuthnRequest:
    id: str
    issuer: str
    acs_url: str | None
    acs_index: int | None
    protocol_binding: str | None
    force_authn: bool
    is_passive: bool


def authn_request(root: etree._Element, *, destination: str, now: datetime) -> AuthnRequest:
    """The fields of an AuthnRequest (from the verified copy when it was signed)."""
    _check_envelope(root, destination=destination, now=now)
    index = root.get("AssertionConsumerServiceIndex")
    if index is not None and not index.isdigit():
        raise MessageError("AssertionConsumerServiceIndex invalide")
    request = AuthnRequest(
        id=str(root.get("ID")),
        issuer=issuer_of(root),
        acs_url=root.get("AssertionConsumerServiceURL"),
        acs_index=None if index is None else int(index),
        protocol_binding=root.get("ProtocolBinding"),
        force_authn=_flag(root, "ForceAuthn"),
        is_passive=_flag(root, "IsPassive"),
    )
    if request.acs_url is not None and request.acs_index is not None:
        raise MessageError("AssertionConsumerServiceURL et Index sont exclusifs")
    return request


@dataclass(frozen=True)
class LogoutRequest:
    id: str
    issuer: str
    name_id: str
    session_indexes: tuple[str, ...]


def logout_request(root: etree._Element, *, destination: str, now: datetime) -> LogoutRequest:
    _check_envelope(root, destination=destination, now=now)
    if root.get("NotOnOrAfter") is not None and _instant(root.get("NotOnOrAfter")) <= now:
        raise MessageError("demande de déconnexion expirée")
    name_id = root.find(f"{A}NameID")
    if name_id is None or not (name_id.text or "").strip():
        raise MessageError("NameID absent (identifiant chiffré non pris en charge)")
    indexes = tuple((e.text or "").strip() for e in root.findall(f"{P}SessionIndex"))
    return LogoutRequest(
        str(root.get("ID")),
        issuer_of(root),
        (name_id.text or "").strip(),
        tuple(i for i in indexes if i),
    )


@dataclass(frozen=True)
class LogoutResponse:
    id: str
    issuer: str
    in_response_to: str | None
    status: str


def logout_response(root: etree._Element, *, destination: str, now: datetime) -> LogoutResponse:
    _check_envelope(root, destination=destination, now=now)
    code = root.find(f"{P}Status/{P}StatusCode")
    return LogoutResponse(
        str(root.get("ID")),
        issuer_of(root),
        root.get("InResponseTo"),
        "" if code is None else str(code.get("Value") or ""),
    )


# --------------------------------------------------------------------- building


def new_id() -> str:
    return "_" + secrets.token_hex(20)


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _root(
    tag: str,
    *,
    message_id: str,
    issuer: str,
    destination: str,
    now: datetime,
    in_response_to: str | None = None,
) -> etree._Element:
    root = etree.Element(f"{P}{tag}", nsmap={"samlp": SAMLP_NS, "saml": SAML_NS})
    root.set("ID", message_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", _stamp(now))
    root.set("Destination", destination)
    if in_response_to:
        root.set("InResponseTo", in_response_to)
    etree.SubElement(root, f"{A}Issuer").text = issuer
    return root


def _status(root: etree._Element, codes: Sequence[str]) -> None:
    parent = etree.SubElement(root, f"{P}Status")
    for code in codes:
        parent = etree.SubElement(parent, f"{P}StatusCode", Value=code)


def _serialise(root: etree._Element, signer: SigningKey | None) -> bytes:
    if signer is not None:  # enveloped, right after Issuer (HTTP-POST binding)
        _xmldsig.sign_enveloped(root, _xmldsig.material(signer), position=1)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def status_response(
    *,
    issuer: str,
    destination: str,
    in_response_to: str,
    codes: Sequence[str],
    now: datetime,
    signer: SigningKey,
) -> bytes:
    """A signed ``samlp:Response`` with an error status and no assertion (e.g. NoPassive)."""
    root = _root(
        "Response",
        message_id=new_id(),
        issuer=issuer,
        destination=destination,
        now=now,
        in_response_to=in_response_to,
    )
    _status(root, codes)
    return _serialise(root, signer)


def build_logout_request(
    *,
    message_id: str,
    issuer: str,
    destination: str,
    name_id: str,
    session_index: str | None,
    now: datetime,
    signer: SigningKey | None = None,
) -> bytes:
    root = _root(
        "LogoutRequest", message_id=message_id, issuer=issuer, destination=destination, now=now
    )
    root.set("NotOnOrAfter", _stamp(now + timedelta(minutes=5)))
    etree.SubElement(root, f"{A}NameID", Format=PERSISTENT).text = name_id
    if session_index:
        etree.SubElement(root, f"{P}SessionIndex").text = session_index
    return _serialise(root, signer)


def build_logout_response(
    *,
    issuer: str,
    destination: str,
    in_response_to: str,
    codes: Sequence[str],
    now: datetime,
    signer: SigningKey | None = None,
) -> bytes:
    root = _root(
        "LogoutResponse",
        message_id=new_id(),
        issuer=issuer,
        destination=destination,
        now=now,
        in_response_to=in_response_to,
    )
    _status(root, codes)
    return _serialise(root, signer)
