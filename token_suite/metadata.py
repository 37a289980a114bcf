"""SAML 2.0 metadata: publish the IdP's, read an IdP's (trust) and an SP's.

Metadata is parsed with the same safe parser as tokens (no DTD, no entities,
no network). Malformed metadata raises :class:`MetadataError`: an
:class:`~token_suite.errors.InteropsError` (``wsse:InvalidSecurityToken``) and a ``ValueError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from cryptography import x509
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from keys.model import SigningKey
from token_suite import _xmldsig
from token_suite.errors import InteropsError, InvalidSecurityToken

__all__ = [
    "BINDING_POST",
    "BINDING_REDIRECT",
    "Endpoint",
    "MetadataError",
    "SpMetadata",
    "idp_metadata",
    "idp_signing",
    "parse_sp_metadata",
]

MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
MD = f"{{{MD_NS}}}"
DS = _xmldsig.DS
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
#: Largest metadata document read (bytes).
MAX_METADATA_SIZE = 4 * 1024 * 1024


class MetadataError(InvalidSecurityToken, ValueError):
    """The metadata is malformed, incomplete, or its signature does not verify.

    Under the one root of the package (a caller catching :class:`InteropsError` refuses
    it like a malformed token, code ``wsse:InvalidSecurityToken``, HTTP 400) and still a
    ``ValueError`` for callers written against that. Shown to an operator, the message
    reads alone (no wire code in front of it)."""

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Endpoint:
    """One SAML endpoint: binding and location (index/isDefault for indexed ones)."""

    binding: str
    location: str
    index: int | None = None
    is_default: bool = False


@dataclass(frozen=True)
class SpMetadata:
    """What the IdP needs from a service provider's metadata."""

    entity_id: str
    assertion_consumer_services: tuple[Endpoint, ...]
    single_logout_services: tuple[Endpoint, ...]
    signing_certificates: tuple[x509.Certificate, ...]
    authn_requests_signed: bool = False
    want_assertions_signed: bool = False
    #: ``KeyDescriptor use="encryption"`` (or without ``use``) certificates
    encryption_certificates: tuple[x509.Certificate, ...] = ()
    #: the earliest ``validUntil`` of the document (root or EntityDescriptor), if any
    valid_until: datetime | None = None
    #: the shortest ``cacheDuration`` of the document, if any
    cache_duration: timedelta | None = None

    def default_acs(self, binding: str = BINDING_POST) -> Endpoint:
        """The ACS for ``binding``: the one marked default, else the lowest index."""
        candidates = [e for e in self.assertion_consumer_services if e.binding == binding]
        if not candidates:
            raise MetadataError(f"no assertion consumer service for {binding}")
        return min(candidates, key=lambda e: (not e.is_default, e.index or 0))


# ------------------------------------------------------------------ publishing


def _key_descriptor(key: SigningKey) -> str:
    material = _xmldsig.material(key)
    return (
        f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="{_xmldsig.DS_NS}">'
        f"<ds:X509Data><ds:X509Certificate>{material.certificate_b64}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    )


def _services(tag: str, url: str | None) -> str:
    if url is None:
        return ""
    location = escape(url, {'"': "&quot;"})
    return "".join(
        f'<md:{tag} Binding="{binding}" Location="{location}"/>'
        for binding in (BINDING_REDIRECT, BINDING_POST)
    )


def idp_metadata(
    *,
    entity_id: str,
    signing_keys: list[SigningKey],
    sso_url: str,
    slo_url: str | None = None,
    signer: SigningKey | None = None,
    valid_until: datetime | None = None,
    want_authn_requests_signed: bool = False,
) -> bytes:
    """The IdP's SAML 2.0 metadata: one ``KeyDescriptor use="signing"`` per key.

    SSO (and SLO when ``slo_url`` is given) for the HTTP-Redirect and HTTP-POST
    bindings; signed (enveloped, like the jeton) when ``signer`` is given.
    """
    if not signing_keys:
        raise MetadataError("metadata needs at least one signing key")
    entity_descriptor_id = "_" + hashlib.sha256(entity_id.encode("utf-8")).hexdigest()[:40]
    until = "" if valid_until is None else f' validUntil="{_instant(valid_until)}"'
    signature = (
        ""
        if signer is None
        else _xmldsig.signature_template(entity_descriptor_id, _xmldsig.material(signer))
    )
    text = (
        f'<md:EntityDescriptor xmlns:md="{MD_NS}" ID="{entity_descriptor_id}"'
        f' entityID="{escape(entity_id, {chr(34): "&quot;"})}"{until}>{signature}'
        f'<md:IDPSSODescriptor protocolSupportEnumeration="{PROTOCOL}"'
        f' WantAuthnRequestsSigned="{str(want_authn_requests_signed).lower()}">'
        + "".join(_key_descriptor(k) for k in signing_keys)
        + _services("SingleLogoutService", slo_url)
        + f"<md:NameIDFormat>{PERSISTENT}</md:NameIDFormat>"
        + _services("SingleSignOnService", sso_url)
        + "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )
    root = etree.fromstring(text.encode("utf-8"))
    if signer is not None:
        _xmldsig.sign(root, root[0], _xmldsig.material(signer))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _instant(value: datetime) -> str:
    if value.tzinfo is None:
        raise MetadataError("valid_until must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------- reading


def _source_bytes(source: bytes | str | Path) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and source.lstrip().startswith("<"):
        return source.encode("utf-8")
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise MetadataError(f"cannot read metadata {source}: {exc.strerror}") from exc


def _load(source: bytes | str | Path) -> etree._Element:
    data = _source_bytes(source)
    if len(data) > MAX_METADATA_SIZE:
        raise MetadataError("metadata document too large")
    try:
        return _xmldsig.parse_xml(data)
    except InteropsError as exc:
        raise MetadataError(f"unreadable metadata: {exc.reason}") from exc


def _entity(root: etree._Element, descriptor: str) -> tuple[etree._Element, etree._Element]:
    """The single EntityDescriptor having ``descriptor``, and that descriptor."""
    if root.tag == f"{MD}EntityDescriptor":
        entities = [root]
    elif root.tag == f"{MD}EntitiesDescriptor":
        entities = list(root.iter(f"{MD}EntityDescriptor"))
    else:
        raise MetadataError("not SAML 2.0 metadata (no EntityDescriptor)")
    found = [(e, d) for e in entities for d in e.findall(f"{MD}{descriptor}")]
    if len(found) != 1:
        raise MetadataError(f"expected exactly one {descriptor}, found {len(found)}")
    entity, element = found[0]
    if not entity.get("entityID"):
        raise MetadataError("EntityDescriptor without entityID")
    return entity, element


def _certificate(text: str | None) -> x509.Certificate:
    try:
        der = base64.b64decode("".join((text or "").split()), validate=True)
        return x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise MetadataError("malformed X509Certificate") from exc


def _signing_certificates(
    descriptor: etree._Element, use: str = "signing"
) -> tuple[x509.Certificate, ...]:
    path = f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate"
    return tuple(
        _certificate(kd.findtext(path))
        for kd in descriptor.iterfind(f"{MD}KeyDescriptor")
        if kd.get("use", use) == use
    )


_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def _duration(value: str) -> timedelta:
    """An ``xs:duration`` (``PT6H``, ``P1D``...; a year counted 365 days, a month 30)."""
    found = _DURATION.fullmatch(value.strip())
    if found is None or value.strip() in ("P", "PT") or value.strip().endswith("T"):
        raise MetadataError(f"malformed cacheDuration {value!r}")
    parts = {k: float(v) for k, v in found.groupdict().items() if v is not None}
    days = parts.get("years", 0) * 365 + parts.get("months", 0) * 30 + parts.get("days", 0)
    return timedelta(
        days=days,
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


def _instant_read(value: str) -> datetime:
    """An ``xs:dateTime`` (UTC when it names no offset, as SAML requires UTC)."""
    try:
        read = datetime.fromisoformat(value.strip())
    except ValueError:
        raise MetadataError(f"malformed validUntil {value!r}") from None
    return read.replace(tzinfo=UTC) if read.tzinfo is None else read.astimezone(UTC)


def _validity(
    elements: Collection[etree._Element],
) -> tuple[datetime | None, timedelta | None]:
    """The earliest ``validUntil`` and shortest ``cacheDuration`` among ``elements``."""
    until = [_instant_read(e.get("validUntil")) for e in elements if e.get("validUntil")]
    cache = [_duration(e.get("cacheDuration")) for e in elements if e.get("cacheDuration")]
    return min(until, default=None), min(cache, default=None)


def _index(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise MetadataError(f"malformed endpoint index {value!r}")
    return int(value)


def _flag(value: str | None) -> bool:
    if value not in (None, "true", "false", "1", "0"):
        raise MetadataError(f"malformed boolean {value!r}")
    return value in ("true", "1")


def _endpoints(descriptor: etree._Element, tag: str) -> tuple[Endpoint, ...]:
    endpoints = []
    for element in descriptor.iterfind(f"{MD}{tag}"):
        binding, location = element.get("Binding"), element.get("Location")
        if not binding or not location:
            raise MetadataError(f"{tag} without Binding or Location")
        index, default = _index(element.get("index")), _flag(element.get("isDefault"))
        endpoints.append(Endpoint(binding, location, index, default))
    return tuple(endpoints)


def _verified(root: etree._Element, signed_by: Collection[x509.Certificate]) -> etree._Element:
    try:
        _xmldsig.refuse_duplicate_ids(root)
        return _xmldsig.verified_copy(root, certificates=signed_by)
    except InteropsError as exc:
        raise MetadataError(f"metadata signature refused: {exc.reason}") from exc


def idp_signing(
    source: bytes | str | Path, *, signed_by: Collection[x509.Certificate] | None = None
) -> tuple[str, tuple[x509.Certificate, ...]]:
    """The IdP's ``entityID`` and signing certificates from its metadata.

    ``source`` is the XML (bytes or text) or a file path. With ``signed_by``,
    the metadata must carry an enveloped signature by one of those certificates
    and only the signed content is read (stops a tampered metadata file from
    substituting keys). :func:`token_suite.trust.trust_from_idp_metadata` builds
    the :class:`~token_suite.trust.Trust`.
    """
    root = _load(source)
    if signed_by is not None:
        root = _verified(root, signed_by)
    entity, descriptor = _entity(root, "IDPSSODescriptor")
    certificates = _signing_certificates(descriptor)
    if not certificates:
        raise MetadataError("the IdP metadata publishes no signing certificate")
    return str(entity.get("entityID")), certificates


def idp_endpoints(source: bytes | str | Path) -> dict[str, tuple[Endpoint, ...]]:
    """The IdP's ``SingleSignOnService`` and ``SingleLogoutService`` endpoints (by tag)
    from its metadata (XML bytes/text or a file path), for a partner's own messages."""
    _, descriptor = _entity(_load(source), "IDPSSODescriptor")
    return {
        tag: _endpoints(descriptor, tag) for tag in ("SingleSignOnService", "SingleLogoutService")
    }


def parse_sp_metadata(
    source: bytes | str | Path, *, signed_by: Collection[x509.Certificate] | None = None
) -> SpMetadata:
    """Read a service provider's metadata (XML bytes/text or a file path).

    Requires an ``SPSSODescriptor`` with at least one AssertionConsumerService. With
    ``signed_by``, the document's root must carry an enveloped signature by one of those
    certificates (no duplicated ID) and only the signed content is read, as
    :func:`idp_signing` does. ``valid_until`` and ``cache_duration`` are read from the
    root and the EntityDescriptor (the earliest and the shortest); judging them is the
    caller's (it knows the time).
    """
    root = _load(source)
    if signed_by is not None:
        root = _verified(root, signed_by)
    entity, descriptor = _entity(root, "SPSSODescriptor")
    acs = _endpoints(descriptor, "AssertionConsumerService")
    if not acs:
        raise MetadataError("the SP metadata has no AssertionConsumerService")
    valid_until, cache_duration = _validity((root, entity))
    return SpMetadata(
        entity_id=str(entity.get("entityID")),
        assertion_consumer_services=acs,
        single_logout_services=_endpoints(descriptor, "SingleLogoutService"),
        signing_certificates=_signing_certificates(descriptor),
        authn_requests_signed=_flag(descriptor.get("AuthnRequestsSigned")),
        want_assertions_signed=_flag(descriptor.get("WantAssertionsSigned")),
        encryption_certificates=_signing_certificates(descriptor, "encryption"),
        valid_until=valid_until,
        cache_duration=cache_duration,
    )
