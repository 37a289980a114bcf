"""A partner publishing its SAML metadata at a URL, for the refresh tests: documents
built with chosen keys (signed or not), and a real HTTP server in a thread (ports
8400-8499) that can answer slowly, go down and come back on the same port."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

from cryptography.hazmat.primitives import serialization
from lxml import etree

from keys.generate import generate_key
from keys.model import KeyUse, SigningKey
from tests.loopback import LoopbackServer, QuietHandler
from token_suite import _xmldsig

PORTS = range(8400, 8500)
ENTITY = "https://sp.example/metadata"
ACS = "https://sp.example/acs"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


def new_key() -> SigningKey:
    return generate_key(KeyUse.SAML, now=datetime.now(UTC))


def pem(key: SigningKey) -> bytes:
    return key.certificate.public_bytes(serialization.Encoding.PEM)


def _descriptor(key: SigningKey, use: str) -> str:
    der = key.certificate.public_bytes(serialization.Encoding.DER)
    return (
        f'<md:KeyDescriptor use="{use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f"{base64.b64encode(der).decode()}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</md:KeyDescriptor>"
    )


def document(
    *keys: SigningKey,
    entity: str = ENTITY,
    acs: str = ACS,
    encryption: SigningKey | None = None,
    signed_requests: bool = True,
    attributes: str = "",
    signer: SigningKey | None = None,
) -> bytes:
    """SP metadata with ``keys`` for signing (and ``encryption``), signed by ``signer``."""
    descriptors = "".join(_descriptor(k, "signing") for k in keys)
    if encryption is not None:
        descriptors += _descriptor(encryption, "encryption")
    xml = (
        f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"'
        f' ID="_md1" entityID="{entity}"{attributes}>'
        f'<md:SPSSODescriptor AuthnRequestsSigned="{str(signed_requests).lower()}"'
        ' protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'{descriptors}<md:AssertionConsumerService Binding="{POST}" Location="{acs}"'
        ' index="0" isDefault="true"/></md:SPSSODescriptor></md:EntityDescriptor>'
    )
    if signer is None:
        return xml.encode()
    root = etree.fromstring(xml.encode())
    _xmldsig.sign_enveloped(root, _xmldsig.material(signer), position=0)
    return bytes(etree.tostring(root))


class MetadataServer(LoopbackServer):
    """Serves ``self.body`` at ``/metadata`` as ``self.content_type``; counts requests;
    ``delay`` seconds before answering; ``redirect`` answers 302 to that location."""

    def __init__(self, body: bytes = b"") -> None:
        super().__init__(PORTS)
        self.body = body
        self.content_type = "application/samlmetadata+xml"
        self.status = 200
        self.delay = 0.0
        self.redirect: str | None = None
        #: a Content-Length this much longer than the body (the connection cut short)
        self.missing = 0
        self.requests = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metadata"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                with owner.lock:
                    owner.requests += 1
                time.sleep(owner.delay)
                if owner.redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", owner.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(owner.status)
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(owner.body) + owner.missing))
                self.end_headers()
                self.wfile.write(owner.body)

        return Handler
