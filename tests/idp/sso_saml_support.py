"""Helpers for the SAML IdP endpoint tests: a registered SP, its messages, our answers."""

from __future__ import annotations

import base64
import re
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

from lxml import etree

from idp.sessions import sso as sessions
from idp.tokens.signing import ensure_keys
from keys.model import SigningKey
from partners.services import PartnerSettings, add_partner
from rcd_store.services import grant_habilitation
from tests import factories
from tests.partners.sp_metadata import sp_metadata
from token_suite import _xmldsig
from token_suite.vector import ACR_PASSWORD

SP_ENTITY = "https://sp.example/metadata"
ACS = "https://sp.example/acs"
SLO = "https://sp.example/slo"
SSO_URL = "http://idp.test/saml/sso"
SLO_URL = "http://idp.test/saml/slo"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


@dataclass
class World:
    declarant_id: str
    sp_key: SigningKey
    partner: str


def make_world(
    app: Any,
    session: Any,
    *,
    signed_requests: bool = False,
    claims: tuple[str, ...] = (),
    certificate: bool = True,
) -> World:
    """A declarant habilitated on DSN (URSSAF) and ATMP (Assurance Maladie); an SP
    partner that receives DSN only."""
    ensure_keys(app)
    factories.company(session)
    factories.service(session, "DSN", "URSSAF", {"DECLARANT": "DSN_DECL"})
    factories.service(session, "ATMP", "Assurance Maladie", {"DECLARANT": "ATMP_GEST"})
    person = factories.declarant(session)
    for code in ("DSN", "ATMP"):
        grant_habilitation(
            session, declarant_id=person.id, siret=factories.SIRET_A, service_code=code
        )
    metadata, key = sp_metadata(
        SP_ENTITY, ACS, signed_requests=signed_requests, slo=SLO, certificate=certificate
    )
    add_partner(
        session,
        PartnerSettings(
            name="Portail DSN", saml_metadata=metadata, services=["DSN"], claims=claims
        ),
    )
    session.commit()
    return World(person.id, key, "Portail DSN")  # type: ignore[arg-type]


def log_in(app: Any, client: Any, declarant_id: str) -> Any:
    """Open an SSO session directly (the login page is another module) and set its cookie."""
    from idp.stores import db

    with app.test_request_context():
        opened = sessions.open_session(db.session(), declarant_id, acr=ACR_PASSWORD, amr=["pwd"])
        db.session().commit()
    client.set_cookie(sessions.COOKIE, opened.cookie)
    return opened.row


def authn_request(
    *,
    request_id: str | None = None,
    issuer: str = SP_ENTITY,
    acs: str | None = ACS,
    index: int | None = None,
    force: bool = False,
    passive: bool = False,
    destination: str = SSO_URL,
    instant: datetime | None = None,
) -> bytes:
    attrs = {
        "ID": request_id or "_" + secrets.token_hex(10),
        "Version": "2.0",
        "IssueInstant": (instant or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Destination": destination,
        "ProtocolBinding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
    }
    if acs is not None:
        attrs["AssertionConsumerServiceURL"] = acs
    if index is not None:
        attrs["AssertionConsumerServiceIndex"] = str(index)
    if force:
        attrs["ForceAuthn"] = "true"
    if passive:
        attrs["IsPassive"] = "true"
    root = etree.Element(f"{{{SAMLP}}}AuthnRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    for name, value in attrs.items():
        root.set(name, value)
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer
    return bytes(etree.tostring(root))


def logout_request(
    *, name_id: str, session_index: str | None, issuer: str = SP_ENTITY, destination: str = SLO_URL
) -> bytes:
    root = etree.Element(f"{{{SAMLP}}}LogoutRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    root.set("ID", "_" + secrets.token_hex(10))
    root.set("Version", "2.0")
    root.set("IssueInstant", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    root.set("Destination", destination)
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = issuer
    etree.SubElement(root, f"{{{SAML}}}NameID").text = name_id
    if session_index:
        etree.SubElement(root, f"{{{SAMLP}}}SessionIndex").text = session_index
    return bytes(etree.tostring(root))


def sign_xml(xml: bytes, key: SigningKey) -> bytes:
    root = etree.fromstring(xml)
    _xmldsig.sign_enveloped(root, _xmldsig.material(key), position=1)
    return bytes(etree.tostring(root))


def deflate(xml: bytes) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()


def redirect_query(
    xml: bytes,
    *,
    kind: str = "SAMLRequest",
    relay_state: str | None = None,
    key: SigningKey | None = None,
    sig_alg: str = RSA_SHA256,
) -> str:
    parts = [f"{kind}={quote_plus(deflate(xml))}"]
    if relay_state is not None:
        parts.append(f"RelayState={quote_plus(relay_state)}")
    if key is not None:
        parts.append(f"SigAlg={quote_plus(sig_alg)}")
        signature = base64.b64encode(key.sign("&".join(parts).encode())).decode()
        parts.append(f"Signature={quote_plus(signature)}")
    return "&".join(parts)


@dataclass
class PostedForm:
    action: str
    fields: dict[str, str]

    @property
    def document(self) -> bytes:
        return base64.b64decode(self.fields["SAMLResponse"])


def posted_form(html: str) -> PostedForm:
    """The auto-submitting form of an HTTP-POST binding page."""
    action = re.search(r'<form method="post" action="([^"]*)"', html)
    assert action is not None, html
    fields = {
        unescape(n): unescape(v)
        for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', html)
    }
    return PostedForm(unescape(action.group(1)), fields)


def status_codes(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    return [str(e.get("Value")) for e in root.iter(f"{{{SAMLP}}}StatusCode")]


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def inflate(value: str) -> bytes:
    return zlib.decompress(base64.b64decode(value), -15)
