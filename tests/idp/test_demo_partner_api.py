"""Interops-A at the demo partner: REST (bearer Interops-R JWT) and SOAP (SAML in wsse:Security).

Tokens are signed here with the IdP's own keys (its keyring); the partner knows
the IdP only by its discovery document, JWKS and SAML metadata (fetched through
the IdP's test client).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from lxml import etree
from sqlalchemy import select

from idp.demo import directory as demo
from idp.demo.partner import create_partner_app
from idp.tokens.signing import ensure_keys, keyring
from keys.model import KeyUse
from partners.models import Partner
from rcd_store import services
from token_suite import jwt as interops_jwt
from token_suite import saml
from token_suite.vector import Habilitation, IdentityVector

PARTNER_URL = "http://partenaire.localhost"
API = f"{PARTNER_URL}/api"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
DECLARANT = IdentityVector(
    subject="D-0001",
    siret="73282932000074",
    family_name="Dupont",
    given_name="Élodie",
    pagm=("DSN_DECLARANT",),
    habilitations=(
        Habilitation("DSN", "73282932000074", "DECLARANT"),
        Habilitation("DSN", "73282932000082", "DECLARANT"),
    ),
)
CONSULT_ONLY = IdentityVector(subject="D-0002", siret="73282932000074", pagm=("DSN_CONSULT",))


@pytest.fixture
def world(app: Any, session: Any) -> Any:
    ensure_keys(app)
    services.add_service(
        session,
        code="DSN",
        name="Déclaration sociale nominative",
        partner="URSSAF",
        pagm={"DECLARANT": "DSN_DECLARANT"},
        actor="test",
    )
    session.commit()
    site = demo.partner_site(app, base_url=PARTNER_URL)
    demo.register_partner_site(app, site)
    server = app.test_client()

    def fetch(url: str, data: dict[str, str] | None) -> bytes:
        parts = urlsplit(url)
        answer = server.get(parts.path) if data is None else server.post(parts.path, data=data)
        assert answer.status_code == 200, url
        return bytes(answer.data)

    partner = create_partner_app(site, secret_key="partner-test", fetch=fetch)
    return site, partner.test_client()


def access_token(
    app: Any,
    vector: IdentityVector = DECLARANT,
    *,
    audience: str = API,
    now: datetime | None = None,
    typ: str = "at+jwt",
) -> str:
    with app.app_context():
        signer = keyring(app).active(KeyUse.JWT)
    return interops_jwt.issue(
        vector,
        signer=signer,
        issuer=app.config["BASE_URL"],
        audience=audience,
        now=now or datetime.now(UTC),
        typ=typ,
        lifetime=timedelta(minutes=5),
        extra_claims={"client_id": "demo-client", "scope": "dsn"},
    )


def assertion(
    app: Any,
    vector: IdentityVector = DECLARANT,
    *,
    audience: str = API,
    now: datetime | None = None,
) -> bytes:
    with app.app_context():
        signer = keyring(app).active(KeyUse.SAML)
    return saml.issue(
        vector,
        signer=signer,
        issuer=app.config["SAML_ENTITY_ID"],
        audience=audience,
        recipient=f"{API}/soap",
        now=now or datetime.now(UTC),
        assertion_only=True,
    )


def envelope(token: bytes | None, *, prolog: bytes = b"") -> bytes:
    inner = b"" if token is None else token.split(b"?>", 1)[-1]
    return (
        prolog
        + f'<soap:Envelope xmlns:soap="{SOAP}"><soap:Header>'
        f'<wsse:Security xmlns:wsse="{WSSE}">'.encode()
        + inner
        + b"</wsse:Security></soap:Header><soap:Body>"
        b'<d:listerDeclarations xmlns:d="urn:interops:demo:declarations"/>'
        b"</soap:Body></soap:Envelope>"
    )


def get(partner: Any, token: str | None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return partner.get("/api/declarations", headers=headers)


def post(partner: Any, body: bytes) -> Any:
    return partner.post("/api/soap", data=body, content_type="text/xml; charset=utf-8")


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer error=")
    assert code in response.headers["WWW-Authenticate"]


def fault(response: Any) -> str:
    assert response.status_code == 500 and response.mimetype == "text/xml"
    root = etree.fromstring(response.data)
    assert root.tag == f"{{{SOAP}}}Envelope"
    (node,) = root.iter(f"{{{SOAP}}}Fault")
    return str(node.findtext("faultcode"))


# ------------------------------------------------------------------ registration


def test_the_api_identifier_is_registered_with_the_idp(app: Any, session: Any, world: Any) -> None:
    site, _ = world
    partner = session.scalars(select(Partner).where(Partner.name == site.name)).one()
    assert site.api_audience == API and partner.api_audience == API


# -------------------------------------------------------------------------- REST


def test_a_valid_access_token_is_accepted_and_may_be_presented_again(app: Any, world: Any) -> None:
    _, partner = world
    token = access_token(app)
    for _ in range(2):  # a bearer access token: no jti replay refusal
        answer = get(partner, token)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.json["sub"] == "D-0001" and answer.json["client_id"] == "demo-client"
    assert [d["siret"] for d in answer.json["declarations"]] == ["73282932000074", "73282932000082"]
    assert answer.headers["Cache-Control"] == "no-store"


def test_missing_token(world: Any) -> None:
    _, partner = world
    refused(get(partner, None), 401, "wsse:SecurityTokenUnavailable")
    answer = partner.get("/api/declarations", headers={"Authorization": "Basic dXNlcjpwdw=="})
    refused(answer, 401, "wsse:SecurityTokenUnavailable")


def test_malformed_token(world: Any) -> None:
    _, partner = world
    refused(get(partner, "not.a.jwt"), 400, "wsse:InvalidSecurityToken")
    refused(get(partner, "a b"), 400, "wsse:InvalidSecurityToken")


def test_expired_token(app: Any, world: Any) -> None:
    _, partner = world
    token = access_token(app, now=datetime.now(UTC) - timedelta(minutes=10))
    refused(get(partner, token), 401, "vi:InvalidVI")


def test_token_for_another_audience(app: Any, world: Any) -> None:
    _, partner = world
    refused(get(partner, access_token(app, audience="urn:urssaf:api")), 401, "vi:InvalidService")
    # the partner's navigation identifier is not its API
    refused(
        get(partner, access_token(app, audience=f"{PARTNER_URL}/saml/metadata")),
        401,
        "vi:InvalidService",
    )


def test_tampered_token(app: Any, world: Any) -> None:
    _, partner = world
    header, payload, signature = access_token(app, CONSULT_ONLY).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["pagm"] = ["DSN_DECLARANT"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    refused(get(partner, f"{header}.{forged}.{signature}"), 401, "wsse:FailedCheck")


def test_an_id_token_is_not_an_access_token(app: Any, world: Any) -> None:
    _, partner = world
    refused(get(partner, access_token(app, typ="JWT")), 401, "wsse:FailedCheck")


def test_insufficient_pagm(app: Any, world: Any) -> None:
    _, partner = world
    refused(get(partner, access_token(app, CONSULT_ONLY)), 403, "DroitsInsuffisants")


def test_other_issuer_keys_are_not_trusted(app: Any, world: Any) -> None:
    from keys.generate import generate_key

    _, partner = world
    now = datetime.now(UTC)
    stranger = generate_key(KeyUse.JWT, now=now, alg="ES256")
    token = interops_jwt.issue(
        DECLARANT,
        signer=stranger,
        issuer=app.config["BASE_URL"],
        audience=API,
        now=now,
        typ="at+jwt",
    )
    refused(get(partner, token), 401, "wsse:FailedCheck")


# -------------------------------------------------------------------------- SOAP


def test_a_valid_soap_assertion_is_accepted(app: Any, world: Any) -> None:
    _, partner = world
    body = envelope(assertion(app))
    for _ in range(2):  # a bearer assertion, reused for its lifetime
        answer = post(partner, body)
        assert answer.status_code == 200, answer.get_data(as_text=True)
    root = etree.fromstring(answer.data)
    (result,) = root.iter("{urn:interops:demo:declarations}declarations")
    assert result.get("sub") == "D-0001"
    assert [d.get("siret") for d in result] == ["73282932000074", "73282932000082"]


def test_soap_without_token(app: Any, world: Any) -> None:
    _, partner = world
    assert fault(post(partner, envelope(None))) == "wsse:SecurityTokenUnavailable"
    assert fault(post(partner, b"")) == "wsse:SecurityTokenUnavailable"


def test_soap_expired(app: Any, world: Any) -> None:
    _, partner = world
    old = assertion(app, now=datetime.now(UTC) - timedelta(minutes=10))
    assert fault(post(partner, envelope(old))) == "vi:InvalidVI"


def test_soap_wrong_audience(app: Any, world: Any) -> None:
    _, partner = world
    other = assertion(app, audience=f"{PARTNER_URL}/saml/metadata")
    assert fault(post(partner, envelope(other))) == "vi:InvalidService"


def test_soap_tampered(app: Any, world: Any) -> None:
    _, partner = world
    forged = assertion(app, CONSULT_ONLY).replace(b"DSN_CONSULT", b"DSN_DECLARANT")
    assert fault(post(partner, envelope(forged))) == "wsse:FailedCheck"


def test_soap_insufficient_pagm(app: Any, world: Any) -> None:
    _, partner = world
    assert fault(post(partner, envelope(assertion(app, CONSULT_ONLY)))) == "DroitsInsuffisants"


def test_soap_with_a_dtd_is_refused(app: Any, world: Any) -> None:
    _, partner = world
    prolog = b'<!DOCTYPE soap:Envelope [<!ENTITY x "DSN_DECLARANT">]>'
    assert fault(post(partner, envelope(assertion(app), prolog=prolog))) == (
        "wsse:InvalidSecurityToken"
    )
    xxe = b'<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    assert fault(post(partner, envelope(assertion(app), prolog=xxe))) == "wsse:InvalidSecurityToken"


def test_soap_with_two_assertions_is_refused(app: Any, world: Any) -> None:
    _, partner = world
    first, second = (assertion(app, v).split(b"?>", 1)[-1] for v in (DECLARANT, CONSULT_ONLY))
    assert fault(post(partner, envelope(second))) == "DroitsInsuffisants"
    assert fault(post(partner, envelope(first + second))) == "wsse:InvalidSecurityToken"
    assert fault(post(partner, envelope(second + first))) == "wsse:InvalidSecurityToken"


def test_soap_not_an_envelope_or_too_large(app: Any, world: Any) -> None:
    _, partner = world
    assert fault(post(partner, assertion(app))) == "wsse:InvalidSecurityToken"
    assert fault(post(partner, b"<a>" + b" " * 70_000 + b"</a>")) == "wsse:InvalidSecurityToken"
    assert fault(post(partner, b"<unclosed")) == "wsse:InvalidSecurityToken"


# ------------------------------------------------------------ through the IdP


def test_a_client_credentials_token_from_the_idp_calls_the_api(
    app: Any, session: Any, world: Any
) -> None:
    """A payroll vendor's machine client, under a DSN agreement, asks the IdP's token
    endpoint for the demo partner's API (RFC 8707 ``resource``) and calls it."""
    from partners.services import ClientSettings, PartnerSettings, add_partner

    site, partner = world
    vendor = add_partner(
        session,
        PartnerSettings(
            name="Éditeur de paie",
            services=["DSN"],
            client=ClientSettings(
                client_id="editeur-paie",
                grants=["client_credentials"],
                token_auth="client_secret_basic",
                scopes=[],
            ),
        ),
        actor="test",
    )
    session.commit()
    basic = base64.b64encode(f"editeur-paie:{vendor.client_secret}".encode()).decode()
    answer = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "resource": site.api_audience},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    token = answer.json["access_token"]
    called = get(partner, token)
    assert called.status_code == 200, called.get_data(as_text=True)
    assert called.json["sub"] == "editeur-paie" and called.json["pagm"] == ["DSN_DECLARANT"]
    # aimed at the vendor's own default audience, the token is no key to the partner's API
    own = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    refused(get(partner, own.json["access_token"]), 401, "vi:InvalidService")
