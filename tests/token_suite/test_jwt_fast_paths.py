"""The lean paths of token_suite.jwt / _jws agree with the library calls they replace.

- ``_jws.decode_object`` (orjson when the bytes are its own compact spelling)
  returns exactly what the strict standard-library decoder returns, or both refuse;
- ``_jws.der_to_raw`` equals ``decode_dss_signature`` + ``to_bytes`` (C and Python);
- the vector ``verify`` fills without ``__init__`` equals the constructor's;
- issued payloads are ``json.dumps(..., separators=(",", ":"), ensure_ascii=False)``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.token_suite.jwt_support import AUDIENCE, ES256, ISSUER
from token_suite import _jws, jwt
from token_suite.errors import InvalidSecurityToken
from token_suite.vector import ACR_PASSWORD, ACR_TOTP, Habilitation, IdentityVector

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

scalars = st.one_of(
    st.integers(1, P256_ORDER - 1),
    st.integers(1, 2**16),
    st.integers(2**247, 2**256 - 1),
)


DER_TO_RAW = [_jws.der_to_raw, _jws.py_der_to_raw]
RAW_TO_DER = [_jws.raw_to_der, _jws.py_raw_to_der]


@given(scalars, scalars)
def test_der_to_raw_equals_decode_dss_signature(r: int, s: int) -> None:
    for der_to_raw in DER_TO_RAW:
        raw = der_to_raw(encode_dss_signature(r, s))
        assert raw == r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert decode_dss_signature(encode_dss_signature(r, s)) == (r, s)


@given(scalars | st.just(0), scalars | st.just(0))
def test_raw_to_der_equals_encode_dss_signature(r: int, s: int) -> None:
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    for raw_to_der in RAW_TO_DER:
        assert raw_to_der(raw) == encode_dss_signature(r, s)


@given(st.binary(min_size=64, max_size=64))
def test_raw_to_der_on_any_bytes(raw: bytes) -> None:
    expected = encode_dss_signature(
        int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    )
    for raw_to_der in RAW_TO_DER:
        assert raw_to_der(raw) == expected


@given(st.binary(max_size=700))
def test_both_base64url_codecs_agree(data: bytes) -> None:
    encoded = _jws.py_b64encode(data)
    assert encoded == base64.urlsafe_b64encode(data).rstrip(b"=") == _jws.b64encode(data)
    assert _jws.b64decode(encoded) == data


@pytest.mark.parametrize("size", [189, 190, 191, 192, 193, 400])
def test_long_segments_go_through_pybase64_and_decode_the_same(
    size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From 256 characters on, ``pybase64`` decodes (and no longer ``binascii``): the
    same bytes, and the same refusals, on both sides of the threshold."""
    data = bytes(range(256)) * 2
    encoded = _jws.py_b64encode(data[:size])
    calls: list[int] = []
    original = _jws.pybase64.b64decode

    def spy(*args: Any, **kwargs: Any) -> bytes:
        calls.append(len(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(_jws.pybase64, "b64decode", spy)
    assert _jws.b64decode(encoded) == data[:size]
    assert bool(calls) == (len(encoded) >= 256)
    bad = encoded + b"A" if len(encoded) % 4 == 0 else encoded[:-1] + b"B"  # length or low bits
    with pytest.raises(ValueError):
        _jws.b64decode(bad)


def test_der_to_raw_refuses_other_shapes() -> None:
    with pytest.raises(ValueError):  # r >= 2**256: never from a P-256 key
        _jws.der_to_raw(encode_dss_signature(2**256 + 1, 1))
    with pytest.raises(ValueError):
        _jws.der_to_raw(b"\x30\x06\x02\x01\x01\x02\x02\x01")  # truncated
    with pytest.raises(ValueError):
        _jws.der_to_raw(b"\x31\x06\x02\x01\x01\x02\x01\x01")  # a SET, not a SEQUENCE
    with pytest.raises(ValueError):  # not minimal: refused by cryptography as well
        _jws.der_to_raw(b"\x30\x07\x02\x02\x00\x01\x02\x01\x02")


def test_es256_signatures_verify_after_conversion() -> None:
    signer = _jws.build_signer(ES256)
    for native in (_jws.SPEEDUPS, None):
        verifier = _jws._es256_verifier(ES256.public_key, native=native)  # type: ignore[arg-type]
        for index in range(50):
            data = b"x" * index
            assert verifier(data, signer(data))
            assert not verifier(data + b"!", signer(data))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


def spellings(value: dict[str, Any]) -> list[bytes]:
    loose = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        compact = orjson.dumps(value)
    except TypeError:  # beyond 64-bit integers, lone surrogates
        compact = loose.encode("utf-8", "surrogatepass")
    return [
        compact,
        json.dumps(value).encode(),
        loose.encode("utf-8", "surrogatepass"),
        compact[:-1] + (b',"k":1}' if value else b'"k":1}'),
        b'{"k":0,' + compact[1:] if value else b'{"k":0,"k":0}',
    ]


def either(data: bytes, decode: Any) -> Any:
    try:
        return decode(data, "x")
    except InvalidSecurityToken:
        return "refused"


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_decode_object_agrees_with_the_strict_decoder(value: dict[str, Any]) -> None:
    for data in spellings(value):
        assert either(data, _jws.decode_object) == either(data, _jws.strict_object)


@pytest.mark.parametrize(
    "data",
    [
        b'{"a":1,"a":2}',
        b'{"a":{"b":1,"b":1}}',
        b'{"a":[{"b":1,"b":2}]}',
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":1e400}',
        b'{"a":"\\ud800"}',
        b'{"a":18446744073709551616}',
        b"[1]",
        b'"x"',
        b'\xef\xbb\xbf{"a":1}',
        b'{"a":"\xff"}',
        b"[" * 300 + b"]" * 300,
        b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}",
    ],
)
def test_decode_object_corner_cases(data: bytes) -> None:
    assert either(data, _jws.decode_object) == either(data, _jws.strict_object)


def test_duplicates_are_refused_though_orjson_alone_accepts_them() -> None:
    assert orjson.loads(b'{"a":1,"a":2}') == {"a": 2}  # why the round trip is needed
    with pytest.raises(InvalidSecurityToken):
        _jws.decode_object(b'{"a":1,"a":2}', "payload")
    assert _jws.decode_object(b'{"a":1e400}', "p") == {"a": float("inf")}  # strict path
    assert _jws.decode_object(b'{"a":[1,{"b":"\xc3\xa9"}]}', "p") == {"a": [1, {"b": "é"}]}


def test_vector_without_init_equals_the_constructor() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    claims = {
        "iss": ISSUER,
        "sub": "D1",
        "aud": [AUDIENCE],
        "jti": "j",
        "siret": "73282932000074",
        "family_name": "Dupont",
        "given_name": "Élodie",
        "email": "e@example.fr",
        "pagm": ["P1", "P2"],
        "habilitations": [{"service": "DSN", "siret": "73282932000074", "role": "DECLARANT"}],
        "acr": ACR_TOTP,
        "auth_time": int(when.timestamp()),
        "sid": "s-1",
    }
    built = jwt.py_vector(claims)
    expected = IdentityVector(
        subject="D1",
        siret="73282932000074",
        family_name="Dupont",
        given_name="Élodie",
        email="e@example.fr",
        pagm=("P1", "P2"),
        habilitations=(Habilitation("DSN", "73282932000074", "DECLARANT"),),
        acr=ACR_TOTP,
        auth_time=when,
        session_index="s-1",
        claims=claims,
    )
    assert built == expected and repr(built) == repr(expected)
    assert list(vars(built)) == [f.name for f in fields(IdentityVector)]
    habilitation = built.habilitations[0]
    assert list(vars(habilitation)) == [f.name for f in fields(Habilitation)]
    assert hash(habilitation) == hash(Habilitation("DSN", "73282932000074", "DECLARANT"))
    minimal = jwt.py_vector({"iss": ISSUER, "sub": "D1", "aud": AUDIENCE, "jti": "j"})
    assert minimal == IdentityVector(
        subject="D1", claims={"iss": ISSUER, "sub": "D1", "aud": AUDIENCE, "jti": "j"}
    )


habilitations = st.builds(Habilitation, st.text(min_size=1), st.text(min_size=1), st.text())


@settings(max_examples=100)
@given(
    st.text(min_size=1),
    st.lists(st.text(), max_size=3),
    st.lists(habilitations, max_size=2),
    st.none() | st.text(),
)
def test_issued_payload_is_compact_utf8_json(
    subject: str, pagm: list[str], rights: list[Habilitation], email: str | None
) -> None:
    vector = IdentityVector(
        subject=subject, pagm=tuple(pagm), habilitations=tuple(rights), email=email
    )
    try:
        payload = jwt._payload(vector, ISSUER, AUDIENCE, 1, 2, "j")
    except ValueError:  # lone surrogates: not Unicode, refused
        texts = [subject, email or "", *pagm, *(h.as_saml() for h in rights)]
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in "".join(texts))
        return
    claims: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "iat": 1, "nbf": 1, "exp": 2}
    claims.update({"jti": "j", "sub": subject, "acr": ACR_PASSWORD, "amr": ["pwd"]})
    if email is not None:
        claims["email"] = email
    if pagm:
        claims["pagm"] = pagm
    if rights:
        claims["habilitations"] = [h.as_claim() for h in rights]
    compact = json.dumps(claims, separators=(",", ":"), ensure_ascii=False)
    assert payload == compact.encode()
    assert _jws.decode_object(payload, "payload") == json.loads(compact)


def test_issue_refuses_text_that_is_not_unicode() -> None:
    with pytest.raises(ValueError, match="JSON"):
        jwt.issue(
            IdentityVector(subject="\ud800"),
            signer=ES256,
            issuer=ISSUER,
            audience=AUDIENCE,
            now=datetime.now(UTC),
        )
