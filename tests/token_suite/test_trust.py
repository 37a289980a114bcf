"""token_suite.trust: the trust anchor and its constructors' delegation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.token_suite.jwt_support import ES256, ISSUER, JWKS, PS256, RS256
from token_suite import jwt
from token_suite.trust import Trust


def test_empty_trust() -> None:
    trust = Trust()
    assert trust.issuer is None and trust.jwt_keys == {} and trust.jwt_algs == {}
    assert trust.saml_certificates == ()


def test_from_jwks_delegates_to_jwt(tmp_path: Path) -> None:
    trust = Trust.from_jwks(JWKS, issuer=ISSUER)
    assert trust.issuer == ISSUER
    assert trust.jwt_algs == {ES256.kid: "ES256", RS256.kid: "RS256", PS256.kid: "PS256"}
    assert trust.jwt_keys[ES256.kid].public_numbers() == ES256.public_key.public_numbers()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(JWKS), "utf-8")
    assert Trust.from_jwks(path).jwt_algs == trust.jwt_algs


def test_from_jwks_refuses_what_keys_jwks_refuses() -> None:
    with pytest.raises(ValueError):
        Trust.from_jwks({"keys": [dict(JWKS["keys"][0], d="AAAA")]})
    with pytest.raises(ValueError):
        Trust.from_jwks({"keys": "nope"})
    rsa_without_alg = {k: v for k, v in JWKS["keys"][1].items() if k != "alg"}
    with pytest.raises(ValueError):
        jwt.trust_from_jwks({"keys": [rsa_without_alg]})


def test_from_idp_document_delegates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust.from_metadata hands the document to token_suite.metadata unchanged."""
    from token_suite import trust as module

    seen: list[Any] = []
    certificates = (object(),)

    def fake(source: Any, *, signed_by: Any = None) -> tuple[str, tuple[object, ...]]:
        seen.append(source)
        return "urn:idp", certificates

    monkeypatch.setattr(module, "idp_signing", fake)
    assert Trust.from_metadata(b"<EntityDescriptor/>") == Trust(
        issuer="urn:idp",
        saml_certificates=certificates,  # type: ignore[arg-type]
    )
    assert seen == [b"<EntityDescriptor/>"]
