"""Issue 19: inputs that need no key never make ``verify`` raise anything but an
Interops error; signatures have one length; a token's identity is its ID.

Each test here failed on the code before the fix it names (TypeError from an
unhashable ``alg``, lxml's ``C14NError``, ``OverflowError``/``ValueError`` on
far-future dates, a PS256 signature one byte short accepted, a bug escaping
``verify`` as itself instead of ``wsse:InvalidSecurity``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.token_suite import saml_support
from tests.token_suite.jwt_support import (
    AUDIENCE,
    ES256,
    NOW,
    PS256,
    RS256,
    RecordingCache,
    fresh_cache,
    trust,
)
from tests.token_suite.test_jwt import b64, base_claims, claims_of, issue, signed, verify
from token_suite import _jws, _xmldsig, jwt, saml
from token_suite.errors import (
    FailedCheck,
    InteropsError,
    InvalidSecurity,
    InvalidSecurityToken,
    Replay,
)

#: 9999-12-31T23:59:59Z, the last second a NumericDate (and a SAML instant) may name.
LAST_SECOND = 253402300799
LAST_INSTANT = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
#: The order of the P-256 group.
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def header_segment(header: dict[str, Any]) -> str:
    return b64(json.dumps(header).encode())


# --------------------------------------------------------------- JWT header types

WRONG_TYPES: list[Any] = [["ES256"], {"alg": "ES256"}, 1, 1.5, True, None]


@pytest.mark.parametrize("name", ["alg", "kid", "typ", "cty"])
@pytest.mark.parametrize("value", WRONG_TYPES, ids=lambda v: type(v).__name__)
def test_header_text_member_of_another_json_type_is_invalid_security_token(
    name: str, value: Any
) -> None:
    header = {"alg": "ES256", "kid": ES256.kid, "typ": "JWT", name: value}
    _, payload, signature = issue().split(".")
    with pytest.raises(InvalidSecurityToken, match=f"header member {name} "):
        verify(f"{header_segment(header)}.{payload}.{signature}")
    with pytest.raises(InvalidSecurityToken, match=f"header member {name} "):
        verify(f"{header_segment(header)}.{payload}.{signature}", typ="JWT")


@pytest.mark.parametrize("value", [*WRONG_TYPES, [], [1], ["b64"]], ids=repr)
def test_crit_of_any_json_type_is_refused(value: Any) -> None:
    header = {"alg": "ES256", "kid": ES256.kid, "crit": value}
    _, payload, signature = issue().split(".")
    with pytest.raises(InteropsError) as caught:
        verify(f"{header_segment(header)}.{payload}.{signature}")
    assert caught.value.code in ("wsse:InvalidSecurityToken", "wsse:FailedCheck")


# ----------------------------------------------------------------- far-future times


def test_jwt_exp_at_the_last_second_with_a_partners_own_cache() -> None:
    token = signed(base_claims(exp=LAST_SECOND))
    cache = RecordingCache()
    assert verify(token, replay=cache).subject == "D0000001"
    assert cache.expiry[claims_of(token)["jti"]] == datetime.max.replace(tzinfo=UTC)
    with pytest.raises(Replay):
        verify(token, replay=cache)


def test_jwt_exp_at_the_last_second_with_the_in_memory_cache() -> None:
    token = signed(base_claims(exp=LAST_SECOND))
    cache = fresh_cache()
    verify(token, replay=cache)
    with pytest.raises(Replay):
        verify(token, replay=cache)


def test_jwt_huge_skew_does_not_overflow() -> None:
    token = signed(base_claims(exp=LAST_SECOND))
    cache = RecordingCache()
    verify(token, replay=cache, skew=timedelta(days=10_000))
    assert list(cache.expiry.values()) == [datetime.max.replace(tzinfo=UTC)]


def far_future(end: str) -> Any:
    def mutate(assertion: Any) -> None:
        assertion.find("saml:Conditions", saml_support.NS).set("NotOnOrAfter", end)
        data = assertion.find(".//saml:SubjectConfirmationData", saml_support.NS)
        data.set("NotOnOrAfter", end)

    return mutate


@pytest.mark.parametrize(
    "end", ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59.999999"]
)
def test_saml_not_on_or_after_at_the_end_of_time(end: str) -> None:
    document = saml_support.crafted(far_future(end))
    cache = RecordingCache()
    vector = saml_support.verify(document, replay=cache)
    assert vector.claims["not_on_or_after"] >= LAST_INSTANT
    assert list(cache.expiry.values()) == [datetime.max.replace(tzinfo=UTC)]
    with pytest.raises(Replay):
        saml_support.verify(document, replay=cache)
    in_memory = saml_support.fresh_cache()
    saml_support.verify(document, replay=in_memory)
    with pytest.raises(Replay):
        saml_support.verify(document, replay=in_memory)


# ---------------------------------------------------------- SAML namespace URIs


@pytest.mark.parametrize("uri", ["relative", "../up", "#fragment", "a b", "%zz", "x:y z"])
@pytest.mark.parametrize("where", [b"<samlp:Response ", b"<saml:Assertion "])
def test_saml_odd_namespace_uri_is_invalid_security_token(uri: str, where: bytes) -> None:
    document = saml_support.issue().replace(where, where + f'xmlns:zz="{uri}" '.encode(), 1)
    with pytest.raises(InvalidSecurityToken, match="namespace URI|not a valid URI"):
        saml_support.verify(document)


def test_saml_odd_default_namespace_inside_the_assertion() -> None:
    document = saml_support.issue().replace(b"<saml:Issuer>", b'<saml:Issuer xmlns="relative">', 2)
    with pytest.raises(InvalidSecurityToken, match="namespace"):
        saml_support.verify(document)


def test_saml_text_that_is_not_unicode_is_invalid_security_token() -> None:
    with pytest.raises(InvalidSecurityToken):
        saml_support.verify("<\ud800/>")
    with pytest.raises(InvalidSecurityToken):
        saml_support.verify("\ud800")


# ------------------------------------------------------------ one signature length


def rsa_token_with_leading_zero(key: Any) -> tuple[str, bytes]:
    """A token by ``key`` whose signature starts with a zero byte (about 1 in 256)."""
    for attempt in range(4000):
        token = signed(base_claims(jti=f"zero-{attempt}"), key=key)
        signing_input, _, signature = token.rpartition(".")
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        if raw[0] == 0:
            return signing_input, raw
    raise AssertionError("no signature with a leading zero byte in 4000 tries")


@pytest.mark.parametrize("key", [PS256, RS256], ids=lambda k: k.alg)
def test_rsa_signature_must_be_exactly_the_modulus_length(key: Any) -> None:
    signing_input, raw = rsa_token_with_leading_zero(key)
    assert verify(f"{signing_input}.{b64(raw)}").subject == "D0000001"
    for other in (raw[1:], b"\0" + raw, raw + b"\0"):
        with pytest.raises(FailedCheck):
            verify(f"{signing_input}.{b64(other)}")


def test_es256_twin_signature_is_refused_as_a_replay_once_the_original_was_seen() -> None:
    """ECDSA signatures are malleable: ``(r, n - s)`` verifies too. A token's identity
    is its ``jti``, never its bytes: the twin is the same token, refused as a replay."""
    token = issue()
    signing_input, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    s = int.from_bytes(raw[32:], "big")
    twin = f"{signing_input}.{b64(raw[:32] + (P256_N - s).to_bytes(32, 'big'))}"
    assert twin != token
    cache = fresh_cache()
    verify(token, replay=cache)
    with pytest.raises(Replay):
        verify(twin, replay=cache)
    assert verify(twin).subject == verify(token).subject  # each alone: the same token
    assert isinstance(ES256.public_key, ec.EllipticCurvePublicKey)


# ----------------------------------------------------- the wsse:InvalidSecurity boundary


def explode(*args: Any, **kwargs: Any) -> Any:
    raise KeyError("secret-token-text")


JWT_INTERNALS = [(_jws, "parse"), (jwt, "_header_verifier"), (jwt, "_check_window")]
SAML_INTERNALS = [(_xmldsig, "parse_xml"), (saml, "_signed_assertion"), (saml, "_read")]
UNEXPECTED = [KeyError, TypeError, OverflowError, ValueError, RecursionError, AttributeError]


#: (public verify, internal it calls): each internal made to fail in every unexpected way.
BOUNDARY_CASES = [("jwt", target) for target in JWT_INTERNALS]
BOUNDARY_CASES += [("saml", target) for target in SAML_INTERNALS]


def genuine_input(kind: str) -> tuple[bytes, Any]:
    """A genuine token of ``kind`` (bytes) and the public ``verify`` call for it."""
    if kind == "jwt":
        token = issue()
        return token.encode("ascii"), lambda: verify(token)
    document = saml_support.issue()
    return document, lambda: saml_support.verify(document)


@pytest.mark.parametrize("error", UNEXPECTED, ids=lambda e: e.__name__)
@pytest.mark.parametrize(("kind", "target"), BOUNDARY_CASES, ids=lambda c: str(c))
def test_verify_turns_any_unexpected_error_into_invalid_security(
    kind: str,
    target: tuple[Any, str],
    error: type[Exception],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The public API's property: whatever goes wrong inside ``jwt.verify`` or
    ``saml.verify`` comes out as ``wsse:InvalidSecurity``, logged by the input's hash."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error("secret-token-text")

    monkeypatch.setattr(*target, fail)
    data, call = genuine_input(kind)
    with (
        caplog.at_level(logging.ERROR, logger="token_suite"),
        pytest.raises(InvalidSecurity) as caught,
    ):
        call()
    assert_logged_by_hash(caught.value, caplog, data)


def assert_logged_by_hash(
    error: InvalidSecurity, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    assert error.code == "wsse:InvalidSecurity"
    assert error.http_status == 401
    assert error.__cause__ is None and error.__suppress_context__
    assert "secret-token-text" not in str(error)
    digest = hashlib.sha256(data).hexdigest()
    assert digest in str(error)
    [record] = [r for r in caplog.records if r.name.startswith("token_suite")]
    logged = caplog.text
    assert digest in logged
    assert "secret-token-text" not in logged
    assert data.decode("utf-8")[:40] not in logged
    assert record.levelno == logging.ERROR


def test_interops_errors_and_caller_mistakes_pass_the_boundary_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The boundary changes only the unexpected: Interops errors keep their code, and a
    caller's own mistake (a naive ``now``, no issuer, an unknown level) stays a ValueError."""
    with pytest.raises(FailedCheck):
        verify(issue(signer=RS256)[:-4] + "AAAA")
    with pytest.raises(ValueError, match="timezone"):
        verify(issue(), now=datetime(2025, 3, 1, 10, 0))
    with pytest.raises(ValueError, match="authentication level"):
        saml_support.verify(saml_support.issue(), min_acr="urn:unknown")
    with pytest.raises(ValueError, match="timezone"):
        saml_support.verify(saml_support.issue(), now=datetime(2025, 3, 1, 10, 0))
    monkeypatch.setattr(jwt, "_check_window", explode)
    with pytest.raises(ValueError, match="issuer"):
        jwt.verify(issue(), trust=trust(issuer=None), audience=AUDIENCE, now=NOW)
