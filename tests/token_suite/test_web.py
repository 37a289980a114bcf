"""Framework helpers (``token_suite.web``): a request's token in, the verified vector or
the profile's error answer out; and the Flask decorator built on it."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from flask import Flask, g
from lxml import etree

from keys.generate import generate_key
from keys.model import KeyUse
from token_suite import jwt, saml, web
from token_suite.errors import InvalidSecurityToken, SecurityTokenUnavailable
from token_suite.trust import Trust
from token_suite.vector import ACR_PASSWORD, IdentityVector

NOW = datetime.now(UTC).replace(microsecond=0)
ISSUER = "https://idp.example"
ENTITY = "urn:interops:73282932000074:idp:test"
API = "urn:partenaire:api"
JWT_KEY = generate_key(KeyUse.JWT, now=NOW)
SAML_KEY = generate_key(KeyUse.SAML, now=NOW)


def _trusts() -> tuple[Trust, Trust]:
    from keys.jwks import jwks

    return (
        Trust.from_jwks(jwks([JWT_KEY]), issuer=ISSUER),
        Trust(issuer=ENTITY, saml_certificates=(SAML_KEY.certificate,)),  # type: ignore[arg-type]
    )


BY_JWT, BY_SAML = _trusts()
VECTOR = IdentityVector(subject="D0000001", pagm=("DSN_DECL",), acr=ACR_PASSWORD, auth_time=NOW)


def _token(typ: str = "at+jwt", audience: str = API) -> str:
    return jwt.issue(
        VECTOR, signer=JWT_KEY, issuer=ISSUER, audience=audience, now=datetime.now(UTC), typ=typ
    )


def _assertion(**options: object) -> bytes:
    return saml.issue(
        VECTOR, signer=SAML_KEY, issuer=ENTITY, audience=API, recipient="https://sp/acs",
        now=datetime.now(UTC), **options,  # type: ignore[arg-type]
    )  # fmt: skip


def _soap(assertion: bytes) -> bytes:
    if assertion.startswith(b"<?xml"):  # the declaration cannot stand inside the envelope
        assertion = assertion.split(b"?>", 1)[1].lstrip()
    return (
        f'<soap:Envelope xmlns:soap="{web.SOAP_NS}"><soap:Header>'
        f'<wsse:Security xmlns:wsse="{web.WSSE_NS}">{assertion.decode()}</wsse:Security>'
        "</soap:Header><soap:Body/></soap:Envelope>"
    ).encode()


def test_a_bearer_access_token_gives_its_vector_and_may_be_presented_again() -> None:
    for _ in range(2):
        vector = web.authenticate(trust=BY_JWT, audience=API, authorization=f"Bearer {_token()}")
        assert isinstance(vector, IdentityVector) and vector.subject == "D0000001"


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        (None, 401, "wsse:SecurityTokenUnavailable"),
        ("Basic abc", 401, "wsse:SecurityTokenUnavailable"),
        ("Bearer a b", 400, "wsse:InvalidSecurityToken"),
        ("Bearer " + "a" * 20_000, 400, "wsse:InvalidSecurityToken"),
        ("Bearer not-a-jwt", 400, "wsse:InvalidSecurityToken"),
    ],
)
def test_bad_authorization_headers_get_the_profile_answer(
    authorization: str | None, status: int, code: str
) -> None:
    answer = web.authenticate(trust=BY_JWT, audience=API, authorization=authorization)
    assert isinstance(answer, web.Answer) and answer.status == status
    assert json.loads(answer.body)["code"] == code
    headers = dict(answer.headers)
    assert headers["Cache-Control"] == "no-store"
    assert headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_wrong_audience_or_type_is_refused() -> None:
    other = web.authenticate(
        trust=BY_JWT, audience=API, authorization=f"Bearer {_token(audience='urn:autre')}"
    )
    assert isinstance(other, web.Answer) and json.loads(other.body)["code"] == "vi:InvalidService"
    # an ID token (typ JWT) is not an access token
    id_token = web.authenticate(trust=BY_JWT, audience=API, authorization=f"Bearer {_token('JWT')}")
    assert isinstance(id_token, web.Answer) and id_token.status == 401


def test_a_posted_jeton_is_single_use() -> None:
    posted = base64.b64encode(_assertion()).decode()
    vector = web.authenticate(trust=BY_SAML, audience=API, saml_response=posted)
    assert isinstance(vector, IdentityVector) and vector.subject == "D0000001"
    again = web.authenticate(trust=BY_SAML, audience=API, saml_response=posted)
    assert isinstance(again, web.Answer) and json.loads(again.body)["code"] == "vi:Replay"


def test_soap_requests_are_answered_with_faults() -> None:
    assertion = _assertion(assertion_only=True)
    vector = web.authenticate(trust=BY_SAML, audience=API, soap_body=_soap(assertion))
    assert isinstance(vector, IdentityVector) and vector.pagm == ("DSN_DECL",)
    fault = web.authenticate(trust=BY_SAML, audience="urn:autre", soap_body=_soap(assertion))
    assert isinstance(fault, web.Answer) and fault.status == 500
    root = etree.fromstring(fault.body)
    assert root.findtext(".//faultcode") == "vi:InvalidService"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"  ", SecurityTokenUnavailable),
        (b"<x/>", InvalidSecurityToken),
        (b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>', InvalidSecurityToken),
        (b"<x/>" * 20_000, InvalidSecurityToken),
        (_soap(b"").replace(b"wsse:Security", b"wsse:Other"), SecurityTokenUnavailable),
    ],
)
def test_soap_envelopes_are_read_strictly(body: bytes, error: type) -> None:
    with pytest.raises(error):
        web.soap_assertion(body)
    twice = _soap(b"<saml:Assertion xmlns:saml='urn:oasis:names:tc:SAML:2.0:assertion'/>" * 2)
    with pytest.raises(InvalidSecurityToken, match="more than one"):
        web.soap_assertion(twice)


def test_the_flask_decorator() -> None:
    app = Flask(__name__)

    @app.get("/api")
    @web.flask_bearer_required(trust=BY_JWT, audience=API)
    def api() -> dict[str, str]:
        return {"sub": g.interops_vector.subject}

    client = app.test_client()
    ok = client.get("/api", headers={"Authorization": f"Bearer {_token()}"})
    assert ok.status_code == 200 and ok.get_json() == {"sub": "D0000001"}
    refused = client.get("/api")
    assert refused.status_code == 401 and refused.get_json()["code"] == (
        "wsse:SecurityTokenUnavailable"
    )
    assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
