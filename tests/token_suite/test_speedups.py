"""token_suite._speedups (C) does exactly what its Python references do.

Each C function is run beside its reference on the same inputs (hypothesis and
hand-picked corner cases): same result, or the same error. The package install
compiles the module, and CI fails when it cannot be imported (.ci/run); here the
whole file is skipped when the module is absent or blocked
(``-p tests.token_suite.no_speedups``), as the rest of tests/token_suite then runs
on the Python framing. The module frames bytes only: no claim rule, no vector.
"""

from __future__ import annotations

import base64
import tracemalloc
from functools import partial
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.token_suite.jwt_support import AUDIENCE, ES256, ISSUER, NOW
from token_suite import _jws, jwt
from token_suite.errors import InvalidSecurityToken
from token_suite.vector import Habilitation, IdentityVector

native: Any = _jws.SPEEDUPS
ECDSA = ec.ECDSA(hashes.SHA256())
pytestmark = pytest.mark.skipif(native is None, reason="token_suite._speedups absent or blocked")

#: Everything the C module offers: byte framing and the ES256 glue around cryptography.
FRAMING = {"split", "b64encode", "der_to_raw", "raw_to_der", "es256_compact", "es256_check"}


def test_the_c_module_is_built_and_used() -> None:
    assert _jws.split is native.split and _jws.b64encode is native.b64encode
    assert _jws.minimal_der_to_raw is native.der_to_raw and _jws.raw_to_der is native.raw_to_der


def test_the_c_module_frames_bytes_only() -> None:
    """No claim rule and no identity vector in C: the module exports the framing functions only."""
    assert {name for name in dir(native) if not name.startswith("_")} == FRAMING


def outcome(function: Any, *args: Any) -> Any:
    try:
        return ("ok", function(*args))
    except ValueError as exc:
        return ("error", str(exc))


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
segments = st.text(alphabet=B64URL, max_size=40)
tokens = st.one_of(
    st.builds(lambda a, b, c: f"{a}.{b}.{c}".encode(), segments, segments, segments),
    st.lists(st.sampled_from([*B64URL[:8], ".", "+", "/", "=", " ", "é"]), max_size=24).map(
        lambda chars: "".join(chars).encode()
    ),
    st.binary(max_size=40),
)


@settings(max_examples=500)
@given(tokens)
def test_split_agrees_with_the_reference(token: bytes) -> None:
    assert outcome(native.split, token) == outcome(_jws.py_split, token)


@pytest.mark.parametrize(
    "token",
    [
        b"",
        b"..",
        b"a.b",
        b"a.b.c.d",
        b"...",
        b"eyJ.YWJj.YQ",
        b"eyJ.YWJjZA.YQ",
        b"eyJ.YWJjZB.YQ",  # non-canonical: unused bits set
        b"eyJ.YWJjZGV.YQ",  # length 3 mod 4, last bits set
        b"eyJ.YWJjZ.YQ",  # length 1 mod 4
        b"eyJ.YWJj.Y",  # signature of length 1 mod 4
        b"eyJ.YWJj.YR",  # signature not canonical
        b"eyJ.YW=.YQ",
        b"eyJ.YW+/.YQ",
        b"eyJ\x00.YW.YQ",
        "eyJ.é.YQ".encode(),
    ],
)
def test_split_corner_cases(token: bytes) -> None:
    assert outcome(native.split, token) == outcome(_jws.py_split, token)


def test_split_of_a_real_token() -> None:
    token = jwt.issue(jwt_vector(), signer=ES256, issuer=ISSUER, audience=AUDIENCE, now=NOW)
    header, payload, signing_input, signature = native.split(token.encode())
    parts = token.split(".")
    assert header == parts[0].encode() and signing_input == f"{parts[0]}.{parts[1]}".encode()
    assert payload == base64.urlsafe_b64decode(parts[1] + "==")
    assert signature == base64.urlsafe_b64decode(parts[2] + "==") and len(signature) == 64


def jwt_vector() -> IdentityVector:
    return IdentityVector(subject="D1", pagm=("P",), habilitations=(Habilitation("DSN", "1"),))


def test_parse_reports_the_header_before_a_bad_segment() -> None:
    bad_header = base64.urlsafe_b64encode(b'{"alg":').rstrip(b"=")
    with pytest.raises(InvalidSecurityToken, match="header is not JSON"):
        _jws.parse(bad_header + b".YWJjZ.YQ", 100)
    with pytest.raises(InvalidSecurityToken, match="bad base64url length"):
        _jws.parse(b"e30.YWJjZ.YQ", 100)
    with pytest.raises(InvalidSecurityToken, match="not a JWS compact"):
        _jws.parse("e30.é.YQ", 100)
    with pytest.raises(InvalidSecurityToken, match="not a JWS compact"):
        _jws.parse(b"e30.YQ", 100)


@given(st.binary(max_size=300))
def test_b64encode_agrees(data: bytes) -> None:
    assert native.b64encode(data) == _jws.py_b64encode(data)
    assert native.b64encode(bytearray(data)) == _jws.py_b64encode(data)  # any buffer


der_shapes = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda r, s: encode_dss_signature(r, s),
        st.integers(0, 2**264),
        st.integers(0, 2**264),
    ),
    st.builds(
        lambda r, s, cut, flip: _mutated(encode_dss_signature(r, s), cut, flip),
        st.integers(0, 2**256 - 1),
        st.integers(0, 2**256 - 1),
        st.integers(0, 80),
        st.integers(0, 255),
    ),
)


def _mutated(der: bytes, at: int, value: int) -> bytes:
    at %= len(der)
    return der[:at] + bytes([value]) + der[at + 1 :]


@settings(max_examples=500)
@given(der_shapes)
def test_der_to_raw_agrees(der: bytes) -> None:
    assert native.der_to_raw(der) == _jws.py_der_to_raw(der)


@pytest.mark.parametrize(
    "der",
    [
        b"\x30\x06\x02\x01\x00\x02\x01\x00",  # zeros
        b"\x30\x06\x02\x01\x80\x02\x01\x01",  # negative r
        b"\x30\x07\x02\x02\x00\x01\x02\x01\x01",  # superfluous zero
        b"\x30\x07\x02\x02\x00\x80\x02\x01\x01",  # needed zero
        b"\x30\x06\x02\x01\x01\x02\x01",  # short
        b"\x30\x06\x02\x04\x01\x01\x01\x01",  # r fills everything
        b"\x30\x08\x02\x01\x01\x02\x01\x01\x00\x00",  # trailing bytes
        b"\x30\x26\x02\x21\x01" + b"\x80" * 32 + b"\x02\x01\x01",  # 33 bytes, no zero first
        b"\x30\x26\x02\x21\x00" + b"\x01" * 32 + b"\x02\x01\x01",  # 33 bytes, zero not needed
        b"\x30\x26\x02\x21\x00" + b"\x80" * 32 + b"\x02\x01\x01",  # 33 bytes, top bit set
        b"\x30\x27\x02\x22\x00\x00" + b"\x80" * 32 + b"\x02\x01\x01",  # 34 bytes
        b"\x30\x06\x02\x00\x02\x02\x01\x01",  # empty integer
        b"\x30\x06\x03\x01\x01\x02\x01\x01",  # a BIT STRING
    ],
)
def test_der_to_raw_corner_cases(der: bytes) -> None:
    assert native.der_to_raw(der) == _jws.py_der_to_raw(der)


def test_raw_to_der_needs_64_bytes() -> None:
    for raw_to_der in (native.raw_to_der, _jws.py_raw_to_der):
        for size in (0, 63, 65):
            with pytest.raises(ValueError, match="64 bytes"):
                raw_to_der(b"\x01" * size)


def test_compact_tokens_are_the_same_from_c_and_python() -> None:
    payload = b'{"sub":"D1"}'
    prefix = _jws.header_segment(ES256.kid, "ES256", "JWT") + b"."
    c_token = _jws.build_compact(ES256)(prefix, payload)
    py_token = _jws.build_compact(ES256, native=None)(prefix, payload)
    assert c_token.split(".")[:2] == py_token.split(".")[:2]  # ECDSA signatures differ
    verifier = _jws.verifier_for(ES256.public_key, "ES256")
    for token in (c_token, py_token):
        signing_input, _, signature = token.encode().rpartition(b".")
        assert verifier(signing_input, _jws.b64decode(signature))


def test_es256_compact_frames_other_der_through_the_fallback() -> None:
    not_minimal = b"\x30\x07\x02\x02\x00\x05\x02\x01\x07"  # a superfluous zero before r
    assert native.der_to_raw(not_minimal) is None
    # a signer whose DER the C framing does not take: the fallback's 64 bytes are used
    token = native.es256_compact(
        lambda data, algorithm: not_minimal,
        ECDSA,
        lambda _: (5).to_bytes(32, "big") + (7).to_bytes(32, "big"),
        b"h.",
        b"{}",
    )
    assert (
        token
        == "h.e30." + _jws.py_b64encode((5).to_bytes(32, "big") + (7).to_bytes(32, "big")).decode()
    )
    calls: list[bytes] = []

    def fallback(value: bytes) -> bytes:
        calls.append(value)
        return b"\x00" * 64

    token = native.es256_compact(lambda data, alg: b"\x30\x00", ECDSA, fallback, b"h.", b"{}")
    assert calls == [b"\x30\x00"] and token.endswith("." + "A" * 86)


@pytest.mark.parametrize(
    ("sign", "fallback", "error"),
    [
        (lambda data, alg: "text", None, TypeError),
        (lambda data, alg: b"\x30\x00", lambda der: b"short", ValueError),
        (lambda data, alg: b"\x30\x00", lambda der: "not bytes" * 8, ValueError),
        (lambda data, alg: 1 / 0, None, ZeroDivisionError),
    ],
)
def test_es256_compact_reports_bad_signers(sign: Any, fallback: Any, error: type) -> None:
    with pytest.raises(error):
        native.es256_compact(sign, ECDSA, fallback, b"h.", b"{}")


def test_c_functions_refuse_wrong_arguments() -> None:
    with pytest.raises(TypeError):
        native.split("text")
    with pytest.raises(TypeError):
        native.der_to_raw("text")
    with pytest.raises(TypeError):
        native.b64encode("text")
    with pytest.raises(TypeError):
        native.es256_compact(None, None, None, "prefix", b"{}")
    with pytest.raises(ValueError, match="ASCII"):
        native.es256_compact(None, None, None, "é.".encode(), b"{}")
    with pytest.raises(TypeError):
        native.es256_check(None, None, None, b"data")


def test_es256_check_outcomes() -> None:
    signer = _jws.build_signer(ES256)
    public = ES256.public_key
    check = partial(native.es256_check, public.verify, ECDSA, InvalidSignature)
    signature = signer(b"data")
    assert check(b"data", signature) is True
    assert check(b"other", signature) is False
    assert check(b"data", signature[:63]) is False
    assert check(b"data", signature + b"\x00") is False

    def broken(der: bytes, data: bytes, algorithm: Any) -> None:
        raise RuntimeError("not an invalid signature")

    with pytest.raises(RuntimeError):
        native.es256_check(broken, ECDSA, InvalidSignature, b"data", signature)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 255, 256, 257, 1000])
def test_b64encode_sizes_around_the_simd_threshold(size: int) -> None:
    data = bytes(range(256)) * 4
    expected = base64.urlsafe_b64encode(data[:size]).rstrip(b"=")
    assert native.b64encode(data[:size]) == _jws.py_b64encode(data[:size]) == expected


def test_python_es256_verifier_refuses_other_lengths() -> None:
    verifier = _jws._es256_verifier(ES256.public_key, native=None)  # type: ignore[arg-type]
    signature = _jws.build_signer(ES256)(b"data")
    assert verifier(b"data", signature)
    assert not verifier(b"data", signature[:63]) and not verifier(b"data", signature + b"\0")


def test_no_reference_leaks_in_the_c_functions() -> None:
    """Each call's objects are freed: 5,000 rounds of every path leave no memory behind."""
    token = jwt.issue(jwt_vector(), signer=ES256, issuer=ISSUER, audience=AUDIENCE, now=NOW)
    _header, payload, signing_input, signature = native.split(token.encode())
    check = partial(native.es256_check, ES256.public_key.verify, ECDSA, InvalidSignature)
    sign = ES256.private_key.sign
    der = encode_dss_signature(5, 7)

    def every_path() -> None:
        native.split(token.encode())
        outcome(native.split, b"a.b")
        outcome(native.split, b"e30.YWJjZ.YQ")
        native.b64encode(payload)
        native.der_to_raw(der)
        native.der_to_raw(b"\x30\x00")
        native.raw_to_der(signature)
        check(signing_input, signature[:63])
        check(b"other", signature)
        native.es256_compact(sign, ECDSA, None, b"h.", payload)

    for _ in range(200):
        every_path()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5000):
            every_path()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes kept after 5,000 rounds"
