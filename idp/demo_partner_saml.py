"""SAML for the demo partner: its SP metadata, and the HTTP-Redirect binding both ways
(signed queries it sends; the operator's signed queries it checks, RSA-SHA256 only,
over the exact query octets, with a certificate of the operator's metadata)."""

from __future__ import annotations

import base64
import secrets
import urllib.parse
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import request
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from keys.model import SigningKey
from token_suite import Trust

if TYPE_CHECKING:
    from idp.demo_partner import PartnerSite

SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


def sp_metadata(site: PartnerSite, key: SigningKey) -> bytes:
    """The partner's SAML SP metadata: entityID, signing certificate, ACS and SLO."""
    assert key.certificate is not None
    cert = base64.b64encode(key.certificate.public_bytes(serialization.Encoding.DER)).decode()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="{MD_NS}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    entityID={quoteattr(site.entity_id)}>
  <md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true"
      protocolSupportEnumeration="{SAMLP_NS}">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
      <ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="{REDIRECT}" Location={quoteattr(site.slo_url)}/>
    <md:AssertionConsumerService Binding="{POST}" Location={quoteattr(site.acs_url)}
        index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
""".encode()


def parse_untrusted(xml: bytes) -> etree._Element:
    """Untrusted XML: no DTD, no entities, no network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(xml, parser)
    if root.getroottree().docinfo.doctype:
        raise ValueError("DOCTYPE refusé")
    return root


def instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def redirect_query(kind: str, xml: str, key: SigningKey, relay_state: str | None = None) -> str:
    """Deflate, base64, and sign the query (RSA-SHA256) as the HTTP-Redirect binding says."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(compressor.compress(xml.encode()) + compressor.flush()).decode()
    parts = [f"{kind}={urllib.parse.quote_plus(encoded)}"]
    if relay_state:
        parts.append(f"RelayState={urllib.parse.quote_plus(relay_state)}")
    parts.append(f"SigAlg={urllib.parse.quote_plus(RSA_SHA256)}")
    signature = base64.b64encode(key.sign("&".join(parts).encode("ascii"))).decode()
    return "&".join([*parts, f"Signature={urllib.parse.quote_plus(signature)}"])


def verified_redirect(kind: str, trust: Trust) -> etree._Element:
    """The operator's signed HTTP-Redirect message: signature over the exact query
    octets with a certificate of its metadata (RSA-SHA256 only), then parsed."""
    raw = {part.split(b"=", 1)[0]: part for part in request.query_string.split(b"&")}
    signed = b"&".join(raw[n] for n in (kind.encode(), b"RelayState", b"SigAlg") if n in raw)
    if request.args.get("SigAlg") != RSA_SHA256 or "Signature" not in request.args:
        raise ValueError("message non signé ou algorithme refusé")
    signature = base64.b64decode(request.args["Signature"])
    if not any(_rsa_verifies(cert, signature, signed) for cert in trust.saml_certificates):
        raise ValueError("signature invalide")
    inflater = zlib.decompressobj(-15)
    xml = inflater.decompress(base64.b64decode(request.args[kind]), 64 * 1024)
    root = parse_untrusted(xml)
    issuer = root.findtext(f"{{{SAML_NS}}}Issuer")
    if issuer != trust.issuer:
        raise ValueError("émetteur inattendu")
    return root


def _rsa_verifies(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def saml_message(
    tag: str, destination: str, issuer: str, body: str, **attrs: str
) -> tuple[str, str]:
    """(ID, XML) of a protocol message; every value is ours, escaped."""
    message_id = f"_{secrets.token_hex(16)}"
    extra = "".join(f" {name}={quoteattr(value)}" for name, value in attrs.items())
    return message_id, (
        f'<samlp:{tag} xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{message_id}" '
        f'Version="2.0" IssueInstant="{instant(datetime.now(UTC))}" '
        f"Destination={quoteattr(destination)}{extra}>"
        f"<saml:Issuer>{escape(issuer)}</saml:Issuer>{body}</samlp:{tag}>"
    )
