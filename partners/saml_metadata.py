"""A service provider's SAML metadata: read, imported, and fetched from the partner's URL.

The document is always read by :func:`token_suite.metadata.parse_sp_metadata` (the safe
parser of every outside XML). When the partner gave a key for its metadata
(``metadata_signing_pem``), the document must carry an enveloped signature by one of those
certificates, checked by ``token_suite``'s xmlsec verification, and only what it signs is
read. A document past its ``validUntil`` is refused. Fetching is bounded: https (http
only for a loopback host, or everywhere with an explicit setting), a timeout for the whole
transfer, a size limit, few redirects and never to another scheme, an XML content type.

Errors are :class:`rcd_store.errors.DirectoryError` with a French message.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from partners.models import SamlServiceProvider
from partners.urls import checked_url
from rcd_store.db import utcnow
from rcd_store.errors import DirectoryError
from token_suite.metadata import MetadataError, SpMetadata, parse_sp_metadata

#: every 6 hours unless the document asks for less (cacheDuration, validUntil)
DEFAULT_REFRESH_SECONDS = 6 * 3600.0
#: the earliest next fetch a document may ask for
MIN_REFRESH_SECONDS = 60.0
MEDIA_TYPES = frozenset({"application/samlmetadata+xml", "application/xml", "text/xml"})


@dataclass(frozen=True)
class FetchPolicy:
    """The bounds of one fetch."""

    #: seconds for the whole transfer (connecting included)
    timeout: float = 10.0
    max_bytes: int = 2 * 1024 * 1024
    #: plain http to any host (otherwise to a loopback host only)
    allow_http: bool = False


def metadata_url(value: str, *, allow_http: bool = False) -> str:
    """An absolute https URL (http for a loopback host, or with ``allow_http``), without
    credentials or fragment."""
    return checked_url(value, "URL des métadonnées SAML", allow_http=allow_http)


class _Refused(Exception):
    """A redirect that leaves what the policy allows."""


class _Redirects(urllib.request.HTTPRedirectHandler):
    """At most three redirects, each to a URL the policy allows, in the same scheme."""

    max_redirections = 3

    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__()
        self.policy = policy

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        target = urljoin(req.full_url, headers.get("Location") or headers.get("URI") or "")
        if urlsplit(target).scheme != urlsplit(req.full_url).scheme:
            raise _Refused(f"redirection vers un autre schéma refusée : {target}")
        try:
            metadata_url(target, allow_http=self.policy.allow_http)
        except DirectoryError as exc:
            raise _Refused(str(exc)) from None
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def fetch(url: str, policy: FetchPolicy) -> bytes:
    """The document at ``url`` within ``policy``'s bounds, or a :class:`DirectoryError`."""
    url = metadata_url(url, allow_http=policy.allow_http)
    opener = urllib.request.build_opener(_Redirects(policy))
    request = urllib.request.Request(
        url, headers={"Accept": "application/samlmetadata+xml, application/xml;q=0.9"}
    )
    deadline = time.monotonic() + policy.timeout
    try:
        with opener.open(request, timeout=policy.timeout) as response:
            return _body(response, policy, deadline)
    except _Refused as exc:
        raise DirectoryError(str(exc)) from None
    except urllib.error.HTTPError as exc:
        raise DirectoryError(f"métadonnées SAML introuvables : HTTP {exc.code} ({url})") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DirectoryError(f"métadonnées SAML injoignables : {reason} ({url})") from None


def _body(response: Any, policy: FetchPolicy, deadline: float) -> bytes:
    media_type = response.headers.get_content_type()
    if media_type not in MEDIA_TYPES and not media_type.endswith("+xml"):
        raise DirectoryError(f"métadonnées SAML : type de contenu inattendu ({media_type})")
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
        raise DirectoryError("métadonnées SAML trop volumineuses")
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(64 * 1024):
        size += len(chunk)
        if size > policy.max_bytes:
            raise DirectoryError("métadonnées SAML trop volumineuses")
        if time.monotonic() > deadline:
            raise DirectoryError("métadonnées SAML : délai de lecture dépassé")
        chunks.append(chunk)
    if declared is not None and declared.isdigit() and size != int(declared):
        raise DirectoryError("métadonnées SAML injoignables : transfert interrompu")
    return b"".join(chunks)


def signing_certificates(pem: bytes) -> list[str]:
    """The PEM certificates of a file (one or more), each as PEM text."""
    try:
        found = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise DirectoryError("certificat de signature des métadonnées illisible (PEM)") from None
    return [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in found]


def read(
    data: bytes, *, signing_pem: Sequence[str] = (), now: datetime | None = None
) -> SpMetadata:
    """The SP's metadata, checked: signed by one of ``signing_pem`` when given, not past
    its ``validUntil``, with https ACS and a signing certificate if it signs requests."""
    signed_by = [x509.load_pem_x509_certificate(p.encode("ascii")) for p in signing_pem]
    try:
        sp = parse_sp_metadata(data, signed_by=signed_by or None)
    except MetadataError as exc:
        raise DirectoryError(f"métadonnées SAML invalides : {exc}") from None
    if sp.valid_until is not None and sp.valid_until <= (now or utcnow()):
        raise DirectoryError(
            f"métadonnées SAML périmées (validUntil {sp.valid_until:%Y-%m-%dT%H:%M:%SZ})"
        )
    if not sp.assertion_consumer_services:
        raise DirectoryError("métadonnées SAML sans AssertionConsumerService")
    for endpoint in sp.assertion_consumer_services:
        checked_url(endpoint.location, "URL AssertionConsumerService")
    if sp.authn_requests_signed and not sp.signing_certificates:
        raise DirectoryError("AuthnRequestsSigned sans certificat de signature")
    return sp


def next_fetch(sp: SpMetadata, now: datetime, refresh_seconds: float) -> datetime:
    """When to fetch again: after ``refresh_seconds``, sooner if the document's
    ``cacheDuration`` is shorter or half the time to its ``validUntil`` is (never
    sooner than :data:`MIN_REFRESH_SECONDS`)."""
    delay = timedelta(seconds=refresh_seconds)
    if sp.cache_duration is not None:
        delay = min(delay, sp.cache_duration)
    if sp.valid_until is not None:
        delay = min(delay, (sp.valid_until - now) / 2)
    return now + max(delay, timedelta(seconds=MIN_REFRESH_SECONDS))


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def imported(
    current: SamlServiceProvider | None,
    data: bytes | None,
    *,
    url: str | None = None,
    signing_pem: Sequence[str] | None = None,
    refresh_seconds: float | None = None,
    now: datetime | None = None,
) -> SamlServiceProvider:
    """``current`` (or a new row) with the checked document ``data`` fetched from ``url``
    (None: from a file, never refreshed) and the partner's metadata signing certificates
    ``signing_pem`` (None: unchanged; empty: none). With no ``data``, only the signing
    certificates change (checked on the next fetch)."""
    settings = current or SamlServiceProvider(metadata_signing_pem=[])
    if signing_pem is not None:
        settings.metadata_signing_pem = list(signing_pem)
    if data is None:
        if current is None:
            raise DirectoryError("certificat de signature des métadonnées sans métadonnées SAML")
        return settings
    now = now or utcnow()
    sp = read(data, signing_pem=settings.metadata_signing_pem or (), now=now)
    settings.entity_id = sp.entity_id
    settings.metadata_xml = data.decode("utf-8")
    settings.acs = [
        {"binding": e.binding, "url": e.location, "index": e.index, "default": e.is_default}
        for e in sp.assertion_consumer_services
    ]
    settings.slo = [{"binding": e.binding, "url": e.location} for e in sp.single_logout_services]
    settings.certificates_pem = [_pem(c) for c in sp.signing_certificates]
    settings.authn_requests_signed = sp.authn_requests_signed
    settings.want_assertions_signed = True
    settings.metadata_url = url
    settings.metadata_fetched_at = now if url else None
    refresh = DEFAULT_REFRESH_SECONDS if refresh_seconds is None else refresh_seconds
    settings.metadata_next_fetch_at = next_fetch(sp, now, refresh) if url else None
    settings.metadata_error = None
    settings.metadata_failures = 0
    return settings


def key_fingerprints(sp: SpMetadata) -> set[str]:
    """SHA-256 fingerprints of every signing and encryption certificate of ``sp``."""
    from cryptography.hazmat.primitives import hashes

    return {
        c.fingerprint(hashes.SHA256()).hex()
        for c in (*sp.signing_certificates, *sp.encryption_certificates)
    }


def status(settings: SamlServiceProvider) -> dict[str, Any]:
    """Where the metadata comes from and how its refresh goes (for ``partner show``)."""
    return {
        "metadata_url": settings.metadata_url,
        "metadata_signed": bool(settings.metadata_signing_pem),
        "metadata_fetched_at": _iso(settings.metadata_fetched_at),
        "metadata_next_fetch_at": _iso(settings.metadata_next_fetch_at),
        "metadata_error": settings.metadata_error,
        "metadata_failures": settings.metadata_failures or 0,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
