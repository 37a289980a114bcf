"""A partner service provider's SAML metadata, made for tests."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from cryptography.hazmat.primitives import serialization

from keys.generate import generate_key
from keys.model import KeyUse

POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"


def sp_metadata(
    entity_id: str = "https://sp.example/metadata",
    acs: str = "https://sp.example/acs",
    *,
    signed_requests: bool = False,
    slo: str | None = "https://sp.example/slo",
    certificate: bool = True,
) -> tuple[bytes, object]:
    """Metadata with one signing certificate (or none: ``certificate=False``) and its key."""
    key = generate_key(KeyUse.SAML, now=datetime.now(UTC))
    der = key.certificate.public_bytes(serialization.Encoding.DER)
    cert = base64.b64encode(der).decode()
    key_xml = (
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
        f"<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</md:KeyDescriptor>"
        if certificate
        else ""
    )
    slo_xml = f'<md:SingleLogoutService Binding="{REDIRECT}" Location="{slo}"/>' if slo else ""
    xml = f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">
  <md:SPSSODescriptor AuthnRequestsSigned="{str(signed_requests).lower()}"
      WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    {key_xml}
    {slo_xml}
    <md:AssertionConsumerService Binding="{POST}" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"""
    return xml.encode(), key
