"""The one parser of a verified JWT payload (token_suite._claims.py_vector).

It builds the vector through the IdentityVector and Habilitation constructors
(never ``object.__new__``), and on every payload it agrees with ``spec_vector``
below, a slow and plain reading of the profile's claim types: same vector, or
InvalidSecurityToken where the spec refuses. With the C module blocked
(``-p tests.token_suite.no_speedups``) the same token verifies on the Python framing.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.token_suite.jwt_support import AUDIENCE, ISSUER
from token_suite import _claims
from token_suite.errors import InvalidSecurityToken
from token_suite.vector import ACR_PASSWORD, Habilitation, IdentityVector

MAX = 253402300799
OPTIONAL = ("siret", "family_name", "given_name", "email", "acr", "sid")


def _text(value: Any) -> bool:
    return type(value) is str and value != ""


def _spec_habilitation(value: Any) -> Habilitation | None:
    if type(value) is not dict or not all(
        _text(value.get(k)) for k in ("service", "siret", "role")
    ):
        return None
    return Habilitation(value["service"], value["siret"], value["role"])


def _spec_lists(p: dict[str, Any]) -> tuple[tuple[str, ...], tuple[Habilitation, ...]] | None:
    pagm, rights = p.get("pagm", []), p.get("habilitations", [])
    if type(pagm) is not list or any(type(v) is not str for v in pagm) or type(rights) is not list:
        return None
    habilitations = [_spec_habilitation(r) for r in rights]
    if None in habilitations:
        return None
    return tuple(pagm), tuple(h for h in habilitations if h is not None)


def _spec_auth_time(value: Any) -> tuple[bool, datetime | None]:
    if value is None:
        return True, None
    if type(value) not in (int, float) or not (0 <= value <= MAX):  # NaN fails too
        return False, None
    return True, datetime.fromtimestamp(value, UTC)


def spec_vector(p: dict[str, Any]) -> IdentityVector | None:
    """The profile's claim types, one plain check at a time; None where a claim is ill-typed."""
    aud = p.get("aud")
    aud_ok = _text(aud) or (type(aud) is list and aud != [] and all(_text(a) for a in aud))
    if not (all(_text(p.get(n)) for n in ("iss", "sub", "jti")) and aud_ok):
        return None
    if any(p.get(n) is not None and type(p.get(n)) is not str for n in OPTIONAL):
        return None
    lists, (time_ok, auth_time) = _spec_lists(p), _spec_auth_time(p.get("auth_time"))
    if lists is None or not time_ok:
        return None
    return IdentityVector(
        subject=p["sub"],
        siret=p.get("siret"),
        family_name=p.get("family_name"),
        given_name=p.get("given_name"),
        email=p.get("email"),
        pagm=lists[0],
        habilitations=lists[1],
        acr=p.get("acr") or ACR_PASSWORD,
        auth_time=auth_time,
        session_index=p.get("sid"),
        claims=p,
    )


def parsed(payload: dict[str, Any]) -> IdentityVector | None:
    try:
        return _claims.py_vector(payload)
    except InvalidSecurityToken as exc:
        assert "claim " in str(exc)  # names the claim
        return None


texts = st.one_of(st.text(max_size=3), st.just(""))
claim_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, MAX, MAX + 1, -1, 1.5, float(MAX)]),
    texts,
    st.lists(texts, max_size=3),
    st.lists(st.one_of(texts, st.integers()), max_size=2),
    st.dictionaries(st.sampled_from(["service", "siret", "role"]), texts, max_size=3),
    st.lists(
        st.one_of(
            st.dictionaries(st.sampled_from(["service", "siret", "role", "x"]), texts),
            st.fixed_dictionaries({"service": texts, "siret": texts, "role": texts}),
            st.integers(),
        ),
        max_size=2,
    ),
)
CLAIMS = ["iss", "sub", "aud", "jti", *OPTIONAL, "pagm", "habilitations", "auth_time"]
VALID = {"iss": ISSUER, "sub": "D1", "aud": AUDIENCE, "jti": "j"}


def same_as_spec(payload: dict[str, Any]) -> None:
    built, expected = parsed(payload), spec_vector(payload)
    assert built == expected
    if expected is not None and built is not None:
        assert repr(built) == repr(expected) and built.claims is payload


@settings(max_examples=1000)
@given(st.dictionaries(st.sampled_from(CLAIMS), claim_values, max_size=6), st.booleans())
def test_parser_agrees_with_the_spec(claims: dict[str, Any], start_valid: bool) -> None:
    same_as_spec({**VALID, **claims} if start_valid else claims)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"aud": [AUDIENCE, "b"]},
        {"aud": []},
        {"aud": [""]},
        {"aud": ""},
        {"acr": ""},
        {"acr": None},
        {"auth_time": True},
        {"auth_time": 2**70},
        {"auth_time": -1},
        {"auth_time": 0},
        {"auth_time": 0.5},
        {"auth_time": MAX + 0.5},
        {"auth_time": float("nan")},
        {"auth_time": MAX},
        {"pagm": None},
        {"pagm": []},
        {"pagm": ["a", ""]},
        {"habilitations": None},
        {"habilitations": []},
        {"habilitations": [{"service": "S", "siret": "1", "role": "R"}] * 2},
        {"habilitations": [{"service": "S", "siret": "1"}]},
        {"sub": ""},
        {"jti": 1},
        {"sid": "s", "email": "e", "siret": "1", "given_name": "g", "family_name": "f"},
    ],
    ids=repr,
)
def test_parser_corner_cases(changes: dict[str, Any]) -> None:
    same_as_spec({**VALID, **changes})


def test_the_parser_builds_through_the_constructors(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``object.__new__`` + ``__dict__``: each vector and habilitation passes its ``__init__``."""
    built: list[type] = []

    class Vector(IdentityVector):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(IdentityVector)
            super().__init__(*args, **kwargs)

    class Right(Habilitation):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            built.append(Habilitation)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(_claims, "IdentityVector", Vector)
    monkeypatch.setattr(_claims, "Habilitation", Right)
    right = {"service": "S", "siret": "1", "role": "R"}
    vector = _claims.py_vector({**VALID, "habilitations": [right, right]})
    assert type(vector) is Vector and built == [Habilitation, Habilitation, IdentityVector]


BLOCKED_ROUND_TRIP = """
import sys
sys.modules["token_suite._speedups"] = None
from tests.token_suite.jwt_support import AUDIENCE, ES256, ISSUER, NOW, fresh_cache, trust
from token_suite import _jws, jwt
from token_suite.vector import Habilitation, IdentityVector
assert _jws.SPEEDUPS is None and _jws.split is _jws.py_split
vector = IdentityVector(subject="D1", pagm=("P",), habilitations=(Habilitation("DSN", "1"),))
token = jwt.issue(vector, signer=ES256, issuer=ISSUER, audience=AUDIENCE, now=NOW)
print(jwt.verify(token, trust=trust(), audience=AUDIENCE, now=NOW, replay=fresh_cache()).habilitations)
"""


def test_a_blocked_c_module_falls_back_to_python_framing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_ROUND_TRIP],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "Habilitation(service='DSN', siret='1', role='DECLARANT')" in done.stdout
