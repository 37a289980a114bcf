"""SAML 2.0 protocol messages: AuthnRequest, LogoutRequest and LogoutResponse read and
built, status-only Responses, and a service provider's metadata.

What arrives is read from a document already parsed (and, where signed, verified) by
:mod:`token_suite.bindings`: the fields returned are those of that document only.
Built messages are signed (enveloped) when a signer is given, for the HTTP-POST
binding; for HTTP-Redirect, sign the query with :func:`bindings.signed_redirect_query`.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import quoteattr

from cryptography.hazmat.primitives import serialization
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from keys.model import SigningKey
from token_suite import _xmldsig
from token_suite.bindings import (
    BINDING_POST,
    BINDING_REDIRECT,
    SAML_NS,
    SAMLP_NS,
    A,
    MessageError,
    P,
    issuer_of,
)

MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
AUTHN_FAILED = "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed"
REQUEST_DENIED = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"
#: How far from our clock a message's IssueInstant may be.
MAX_REQUEST_AGE = timedelta(minutes=10)


# ---------------------------------------------------------------------- reading


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
    return _status_message("Response", issuer, destination, in_response_to, codes, now, signer)


def _status_message(
    tag: str,
    issuer: str,
    destination: str,
    in_response_to: str,
    codes: Sequence[str],
    now: datetime,
    signer: SigningKey | None,
) -> bytes:
    """A protocol answer that carries only a status (a Response or a LogoutResponse)."""
    root = _root(
        tag,
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
    """A LogoutResponse with ``codes`` (signed, enveloped, when ``signer`` is given)."""
    return _status_message(
        "LogoutResponse", issuer, destination, in_response_to, codes, now, signer
    )


def build_authn_request(
    *,
    issuer: str,
    destination: str,
    acs_url: str,
    now: datetime,
    message_id: str | None = None,
    force_authn: bool = False,
    is_passive: bool = False,
    signer: SigningKey | None = None,
) -> bytes:
    """A service provider's AuthnRequest asking for a jeton posted to ``acs_url``
    (HTTP-POST); sign it with ``signer`` for HTTP-POST, or sign the HTTP-Redirect
    query with :func:`token_suite.bindings.signed_redirect_query`."""
    root = _root(
        "AuthnRequest",
        message_id=message_id or new_id(),
        issuer=issuer,
        destination=destination,
        now=now,
    )
    root.set("AssertionConsumerServiceURL", acs_url)
    root.set("ProtocolBinding", BINDING_POST)
    if force_authn:
        root.set("ForceAuthn", "true")
    if is_passive:
        root.set("IsPassive", "true")
    return _serialise(root, signer)


def sp_metadata(
    *,
    entity_id: str,
    acs_url: str,
    signing_key: SigningKey,
    slo_url: str | None = None,
    authn_requests_signed: bool = True,
    metadata_signer: SigningKey | None = None,
) -> bytes:
    """A service provider's SAML 2.0 metadata to register with the operator: its
    signing certificate, its ACS (HTTP-POST) and, when given, its SLO (HTTP-Redirect).
    Without a certificate an SP cannot sign requests, so ``signing_key`` must have one.
    With ``metadata_signer``, the document carries an enveloped signature by that key
    (the operator checks it on each fetch once given its certificate)."""
    if signing_key.certificate is None:
        raise ValueError("the signing key has no certificate")
    der = signing_key.certificate.public_bytes(serialization.Encoding.DER)
    certificate = base64.b64encode(der).decode("ascii")
    slo = (
        f"<md:SingleLogoutService Binding={quoteattr(BINDING_REDIRECT)}"
        f" Location={quoteattr(slo_url)}/>"
        if slo_url
        else ""
    )
    text = (
        f"<md:EntityDescriptor xmlns:md={quoteattr(MD_NS)} ID={quoteattr(new_id())}"
        f' xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(entity_id)}>'
        f'<md:SPSSODescriptor AuthnRequestsSigned="{str(authn_requests_signed).lower()}"'
        f' WantAssertionsSigned="true" protocolSupportEnumeration={quoteattr(SAMLP_NS)}>'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
        f"<ds:X509Certificate>{certificate}</ds:X509Certificate>"
        f"</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>{slo}"
        f"<md:AssertionConsumerService Binding={quoteattr(BINDING_POST)}"
        f' Location={quoteattr(acs_url)} index="0" isDefault="true"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )
    root = etree.fromstring(text.encode("utf-8"))
    if metadata_signer is not None:
        _xmldsig.sign_enveloped(root, _xmldsig.material(metadata_signer), position=0)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
