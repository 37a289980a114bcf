"""Must hold (issue 19): no input makes ``verify`` raise anything but an Interops error.

Hypothesis builds tokens that reach every check: JWT headers and claims whose
members take every JSON type, extreme dates (9999-12-31, year 1, 10**30, tiny and
huge floats), signatures of every length beside genuine ones, validly signed by a
trusted key so that the checks after the signature run too; SAML jetons with
relative and odd namespace URIs, extreme instants with any offset, and signature
values of every length, re-signed or not. The oracle is strict:

* only :class:`InteropsError` escapes, and never :class:`InvalidSecurity` (the
  boundary's answer to a defect: if it fired here, a bug would be hiding behind it);
* an accepted token carries exactly the content its trusted signer signed.

Derandomised in CI (tests/token_suite/conftest.py).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import xmlsec
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.token_suite import saml_support
from tests.token_suite.jwt_support import (
    AUDIENCE,
    ES256,
    ISSUER,
    NOW,
    PS256,
    RS256,
    RecordingCache,
    trust,
)
from token_suite import _jws, jwt, saml
from token_suite.errors import InteropsError, InvalidSecurity
from token_suite.replay import InMemoryReplayCache
from token_suite.vector import IdentityVector

TRUST = trust()
KEYS = (ES256, RS256, PS256)
#: Examples per property; ``VERIFY_TOTAL_EXAMPLES=20000`` explores deeper (a manual run).
EXAMPLES = int(os.environ.get("VERIFY_TOTAL_EXAMPLES", "300"))
SLOW = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

EXTREME_NUMBERS: list[Any] = [
    253402300799,
    253402300800,
    -253402300799,
    -253402300800,
    10**30,
    -(10**30),
    2**63,
    2**64 + 1,
    1e300,
    -1e300,
    1.7976931348623157e308,
    5e-324,
    0,
    -0.0,
    0.5,
    float("inf"),
    int(NOW.timestamp()),
    int(NOW.timestamp()) + 300,
]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
any_member = json_values | st.sampled_from(EXTREME_NUMBERS)
HEADER_NAMES = ["alg", "kid", "typ", "cty", "crit", "jku", "jwk", "x5u", "x5c", "b64", "zip", "x"]
CLAIM_NAMES = [
    *["iss", "sub", "aud", "jti", "exp", "iat", "nbf", "auth_time", "acr", "amr", "siret"],
    *["pagm", "habilitations", "given_name", "family_name", "email", "sid", "x"],
]
ABSENT = object()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def base_claims() -> dict[str, Any]:
    token = jwt.issue(saml_support.VECTOR, signer=ES256, issuer=ISSUER, audience=AUDIENCE, now=NOW)
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return claims


BASE_CLAIMS = base_claims()


def changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for name, value in changes.items():
        if value is ABSENT:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def signature_variants(genuine: bytes) -> st.SearchStrategy[tuple[str, bytes]]:
    return st.one_of(
        st.just(("genuine", genuine)),
        st.binary(max_size=600).map(lambda raw: ("random", raw)),
        st.integers(min_value=0, max_value=600).map(lambda n: ("zeros", b"\0" * n)),
        st.sampled_from(
            [
                ("short", genuine[1:]),
                ("long", b"\0" + genuine),
                ("long", genuine + b"\0"),
                ("flipped", bytes([genuine[0] ^ 1]) + genuine[1:]),
            ]
        ),
    )


def assert_only_interops(call: Callable[[], IdentityVector]) -> IdentityVector | None:
    """The oracle: a vector, or an Interops error that is not the boundary's."""
    try:
        vector = call()
    except InvalidSecurity as exc:  # the boundary fired: a defect reached it
        raise AssertionError(f"verify hit its boundary: {exc}") from exc
    except InteropsError as exc:
        if currently_in_test_context():
            event(exc.code)
        return None
    if currently_in_test_context():
        event("accepted")
    return vector


@st.composite
def jwt_cases(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    key = draw(st.sampled_from(KEYS))
    header = changed(
        {"alg": key.alg, "kid": key.kid, "typ": "JWT"},
        draw(
            st.dictionaries(st.sampled_from(HEADER_NAMES), any_member | st.just(ABSENT), max_size=3)
        ),
    )
    claims = changed(
        BASE_CLAIMS,
        draw(
            st.dictionaries(st.sampled_from(CLAIM_NAMES), any_member | st.just(ABSENT), max_size=3)
        ),
    )
    ascii_only = draw(st.booleans())
    segments = [
        b64(json.dumps(part, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))
        for part in (header, claims)
    ]
    signing_input = ".".join(segments)
    genuine = _jws.build_signer(key)(signing_input.encode("ascii"))
    mode, signature = draw(signature_variants(genuine))
    return f"{signing_input}.{b64(signature)}", mode, claims


@SLOW
@given(case=jwt_cases(), partner_cache=st.booleans(), typ=st.sampled_from([None, "JWT"]))
def test_jwt_verify_raises_only_interops_errors(
    case: tuple[str, str, dict[str, Any]], partner_cache: bool, typ: str | None
) -> None:
    token, mode, claims = case
    cache: Any = RecordingCache() if partner_cache else InMemoryReplayCache(clock=lambda: NOW)
    vector = assert_only_interops(
        lambda: jwt.verify(token, trust=TRUST, audience=AUDIENCE, now=NOW, replay=cache, typ=typ)
    )
    if vector is not None:
        assert mode == "genuine"
        assert vector.claims == claims


@SLOW
@given(token=st.text(max_size=300) | st.binary(max_size=300))
def test_jwt_verify_of_any_text_or_bytes(token: str | bytes) -> None:
    assert (
        assert_only_interops(
            lambda: jwt.verify(
                token, trust=TRUST, audience=AUDIENCE, now=NOW, replay=RecordingCache()
            )
        )
        is None
    )


@SLOW
@given(
    segments=st.lists(
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        min_size=3,
        max_size=3,
    )
)
def test_jwt_verify_of_any_base64url_segments(segments: list[str]) -> None:
    token = ".".join(segments)
    assert (
        assert_only_interops(
            lambda: jwt.verify(
                token, trust=TRUST, audience=AUDIENCE, now=NOW, replay=RecordingCache()
            )
        )
        is None
    )


# ----------------------------------------------------------------------------- SAML

ODD_URIS = [
    "relative",
    "../up",
    "#fragment",
    "?query",
    "//host/path",
    "a b",
    "%zz",
    "x:y z",
    "urn:",
    ":",
    "http://[::1",
    "\u00e9t\u00e9",
    "urn:oasis:names:tc:SAML:2.0:assertion",
    "http://www.w3.org/2000/09/xmldsig#",
]
ZONES = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14, minutes=-59))]
EXTREME_INSTANTS = [
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59.999999",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "2025-03-01T10:00:00+00:00",
    "2025-03-01T10:05:00+01:00",
    "2025-03-01",
    "20250301T100500Z",
    "2025-W09-6",
    "2025-02-30T00:00:00Z",
    "2025-03-01T10:00:00.1234567Z",
    "garbage",
    "",
]
instants = st.sampled_from(EXTREME_INSTANTS) | st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(ZONES),
)
uris = st.sampled_from(ODD_URIS) | st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8
)
TIME_PLACES = [
    ("saml:Conditions", "NotBefore"),
    ("saml:Conditions", "NotOnOrAfter"),
    ("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", "NotOnOrAfter"),
    ("saml:AuthnStatement", "AuthnInstant"),
]
ELEMENT_PLACES = [".", "saml:Issuer", "saml:Subject/saml:NameID", "saml:Conditions"]


def declare(element: Any, uri: str, default: bool) -> None:
    """Give ``element`` a namespace declaration for ``uri`` (prefix ``zz`` or default)."""
    text = etree.tostring(element).decode("utf-8")
    name = "xmlns" if default else "xmlns:zz"
    value = uri.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    start = text.index(" ") if " " in text.split(">", 1)[0] else text.index(">")
    try:
        replacement = etree.fromstring(f'{text[:start]} {name}="{value}"{text[start:]}')
    except etree.XMLSyntaxError:
        return  # the parser refuses this URI: nothing to mutate
    element.getparent().replace(element, replacement)


@st.composite
def saml_cases(draw: st.DrawFn) -> tuple[bytes, bool]:
    times = draw(st.dictionaries(st.sampled_from(TIME_PLACES), instants, max_size=3))
    namespace = draw(
        st.none() | st.tuples(st.sampled_from(ELEMENT_PLACES[1:]), uris, st.booleans())
    )

    def set_times(assertion: Any) -> None:
        for (path, attribute), value in times.items():
            assertion.find(path, saml_support.NS).set(attribute, value)

    def declare_namespace(assertion: Any) -> None:
        if namespace is not None:
            place, uri, default = namespace
            declare(assertion.find(place, saml_support.NS), uri, default)

    def mutate(assertion: Any) -> None:
        set_times(assertion)
        if signed_namespace:
            declare_namespace(assertion)

    signed_namespace = draw(st.booleans())
    try:
        document = saml_support.crafted(mutate)
    except xmlsec.Error:  # xmlsec cannot canonicalise it either: declared after signing
        signed_namespace = False
        document = saml_support.crafted(mutate)
    if not signed_namespace and namespace is not None:
        root = etree.fromstring(document)
        declare_namespace(root.find("saml:Assertion", saml_support.NS))
        document = etree.tostring(root)
    outer = draw(st.none() | st.tuples(uris, st.booleans()))
    if outer is not None:
        name = "xmlns" if outer[1] else "xmlns:zz"
        value = outer[0].replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        marker = b"<samlp:Response "
        document = document.replace(marker, marker + f'{name}="{value}" '.encode(), 1)
    signature = draw(st.none() | st.binary(max_size=600) | st.sampled_from(["short", "long"]))
    genuine = True
    if signature is not None:
        try:
            root = etree.fromstring(document)
        except etree.XMLSyntaxError:
            return document, genuine
        value_element = root.find("saml:Assertion/ds:Signature/ds:SignatureValue", saml_support.NS)
        raw = base64.b64decode(value_element.text)
        new = raw[1:] if signature == "short" else b"\0" + raw if signature == "long" else signature
        assert isinstance(new, bytes)
        value_element.text = base64.b64encode(new).decode("ascii")
        document = etree.tostring(root)
        genuine = new == raw
    return document, genuine


@SLOW
@given(case=saml_cases(), partner_cache=st.booleans())
def test_saml_verify_raises_only_interops_errors(
    case: tuple[bytes, bool], partner_cache: bool
) -> None:
    document, genuine = case
    cache: Any = RecordingCache() if partner_cache else saml_support.fresh_cache()
    vector = assert_only_interops(lambda: saml_support.verify(document, replay=cache))
    if vector is not None:
        assert genuine
        assert vector.subject == saml_support.VECTOR.subject
        assert vector.habilitations == saml_support.VECTOR.habilitations


@SLOW
@given(document=st.text(max_size=300) | st.binary(max_size=300))
def test_saml_verify_of_any_text_or_bytes(document: str | bytes) -> None:
    assert assert_only_interops(lambda: saml_support.verify(document)) is None


@pytest.mark.parametrize("uri", ODD_URIS)
@pytest.mark.parametrize("default", [False, True], ids=["prefixed", "default"])
def test_saml_every_odd_namespace_uri_on_the_response(uri: str, default: bool) -> None:
    """Deterministic twin of the property above for each listed URI (no randomness)."""
    text = saml_support.issue().decode("utf-8")
    name = "xmlns" if default else "xmlns:zz"
    document = text.replace("<samlp:Response ", f'<samlp:Response {name}="{uri}" ', 1)
    assert_only_interops(lambda: saml_support.verify(document.encode("utf-8")))


@pytest.mark.parametrize("value", EXTREME_INSTANTS)
@pytest.mark.parametrize("place", TIME_PLACES, ids=lambda p: f"{p[0].split('/')[-1]}@{p[1]}")
def test_saml_every_extreme_instant_in_every_place(value: str, place: tuple[str, str]) -> None:
    def mutate(assertion: Any) -> None:
        assertion.find(place[0], saml_support.NS).set(place[1], value)

    document = saml_support.crafted(mutate)
    assert_only_interops(lambda: saml_support.verify(document, replay=RecordingCache()))
    assert_only_interops(lambda: saml.verify(document, trust=saml_support.TRUST, audience="a"))
