"""Attack vectors (tests/vectors/jwt/vectors.json): each refused with its Interops code."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from tests.token_suite.jwt_support import VECTORS, fresh_cache, make_vectors, trust
from token_suite import jwt
from token_suite.errors import InteropsError

DOCUMENT: dict[str, Any] = json.loads((VECTORS / "vectors.json").read_text("utf-8"))
CASES = {vector["name"]: vector for vector in DOCUMENT["vectors"]}


def present(vector: dict[str, Any]) -> str | None:
    """Verify the vector as many times as it says; the last outcome's code (None: accepted)."""
    now = datetime.fromisoformat(DOCUMENT["now"])
    cache = fresh_cache(now)
    options = dict(vector.get("options", {}))
    code = None
    for _ in range(vector.get("presentations", 1)):
        try:
            jwt.verify(
                vector["token"],
                trust=trust(),
                audience=DOCUMENT["audience"],
                issuer=DOCUMENT["issuer"],
                now=now,
                replay=cache,
                **options,
            )
            code = None
        except InteropsError as error:
            code = error.code
    return code


@pytest.mark.parametrize("name", sorted(CASES))
def test_vector_gets_its_code(name: str) -> None:
    vector = CASES[name]
    assert present(vector) == vector["code"]


def test_every_required_attack_is_covered() -> None:
    required = {
        "alg_none", "hs256_public_key_pem", "hs256_public_key_jwk", "unknown_kid",
        "kid_path_traversal", "jku_header", "jwk_header", "x5u_header", "unknown_crit",
        "missing_exp", "wrong_audience", "wrong_issuer", "tampered_header", "tampered_payload",
        "tampered_signature", "replayed_jti", "expired", "not_yet_valid",
        "alg_mismatch_rs256_with_ps256_key", "es256_der_signature",
    }  # fmt: skip
    assert required <= CASES.keys()
    assert all(CASES[name]["code"] for name in required)


def test_vectors_are_reproducible() -> None:
    module = make_vectors()
    assert module.render(module.build()) == (VECTORS / "vectors.json").read_text("utf-8")
    assert module.render(module.jwks(module.load_keys())) == (VECTORS / "jwks.json").read_text(
        "utf-8"
    )


def test_tampered_vectors_differ_from_the_valid_one_in_one_segment() -> None:
    good = CASES["valid_es256"]["token"].split(".")
    for index, name in enumerate(("tampered_header", "tampered_payload", "tampered_signature")):
        bad = CASES[name]["token"].split(".")
        assert [a == b for a, b in zip(good, bad, strict=True)].count(False) == 1
        assert good[index] != bad[index]
