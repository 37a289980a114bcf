"""Issue 19, "Tests that kill the survivors": each test names the mutant it kills.

Mutation testing (docs/mutation.md) found checks that no test would miss;
every test here fails on the mutant it names and passes on the code.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from keys.generate import generate_key
from keys.model import KeyUse
from tests.token_suite import saml_support, test_remote
from tests.token_suite.jwt_support import ES256, RS256, RecordingCache
from tests.token_suite.test_jwt import b64, base_claims, issue, signed, verify
from token_suite import _claims, _jws, _xmldsig, jwt, saml
from token_suite.errors import FailedCheck, InvalidSecurityToken, InvalidVI, Replay
from token_suite.trust import Trust
from token_suite.vector import Habilitation, IdentityVector

NOW = saml_support.NOW
END = NOW + timedelta(minutes=5)  # the issued NotOnOrAfter
SKEW = timedelta(seconds=60)
CONFIRMATION = "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"


def set_attribute(path: str, attribute: str, value: str) -> Any:
    def mutate(assertion: Any) -> None:
        assertion.find(path, saml_support.NS).set(attribute, value)

    return mutate


def both(*mutations: Any) -> Any:
    def mutate(assertion: Any) -> None:
        for mutation in mutations:
            mutation(assertion)

    return mutate


# ------------------------------------------------------- SAML replay expiry (end + skew)


def test_saml_replay_remembers_the_id_until_not_on_or_after_plus_skew() -> None:
    """Kills ``end + skew`` -> ``end - skew`` (and any other expiry) in saml.verify."""
    cache = RecordingCache()
    vector = saml_support.verify(saml_support.issue(), replay=cache, skew=SKEW)
    assert cache.expiry == {vector.claims["id"]: END + SKEW}
    other = RecordingCache()
    saml_support.verify(saml_support.issue(), replay=other, skew=timedelta(seconds=7))
    assert list(other.expiry.values()) == [END + timedelta(seconds=7)]


def test_two_saml_assertions_pass_through_one_cache_each_once() -> None:
    """Kills ``seen(None, ...)``: two distinct assertions are not the same token."""
    cache = saml_support.fresh_cache()
    first, second = saml_support.issue(), saml_support.issue()
    ids = {saml_support.verify(d, replay=cache).claims["id"] for d in (first, second)}
    assert len(ids) == 2
    for document in (first, second):
        with pytest.raises(Replay):
            saml_support.verify(document, replay=cache)
    assert len(cache) == 2


# ----------------------------------------------- SAML expiry boundary (now - skew >= end)


def test_saml_expires_exactly_at_not_on_or_after_plus_skew() -> None:
    """Kills ``now - skew >= end`` -> ``>``: the subject confirmation lasts longer here,
    so only the Conditions check can refuse at that instant."""
    later = (END + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = saml_support.crafted(set_attribute(CONFIRMATION, "NotOnOrAfter", later))
    just_before = END + SKEW - timedelta(microseconds=1)
    assert saml_support.verify(document, now=just_before).claims["not_on_or_after"] == END
    with pytest.raises(InvalidVI, match="the assertion has expired"):
        saml_support.verify(document, now=END + SKEW)


def test_saml_subject_confirmation_expires_exactly_at_its_end_plus_skew() -> None:
    confirmation_end = NOW + timedelta(minutes=2)
    document = saml_support.crafted(
        set_attribute(CONFIRMATION, "NotOnOrAfter", "2025-03-01T10:02:00Z")
    )
    vector = saml_support.verify(document, now=confirmation_end + SKEW - timedelta(microseconds=1))
    assert vector.subject == saml_support.VECTOR.subject
    with pytest.raises(InvalidVI, match="subject confirmation has expired"):
        saml_support.verify(document, now=confirmation_end + SKEW)


def test_saml_not_before_boundary() -> None:
    document = saml_support.issue()
    assert saml_support.verify(document, now=NOW - SKEW).subject == saml_support.VECTOR.subject
    with pytest.raises(InvalidVI, match="not valid yet"):
        saml_support.verify(document, now=NOW - SKEW - timedelta(microseconds=1))


@pytest.mark.parametrize(
    "spelling",
    ["2025-03-01T11:05:00+01:00", "2025-03-01T05:05:00-05:00", "2025-03-01T10:05:00+00:00"],
)
def test_saml_times_with_an_explicit_offset(spelling: str) -> None:
    """Instants with an offset other than ``Z`` mean the same UTC instant."""
    document = saml_support.crafted(
        both(
            set_attribute("saml:Conditions", "NotOnOrAfter", spelling),
            set_attribute(CONFIRMATION, "NotOnOrAfter", spelling),
        )
    )
    vector = saml_support.verify(document, now=END + SKEW - timedelta(microseconds=1))
    assert vector.claims["not_on_or_after"] == END
    with pytest.raises(InvalidVI, match="expired"):
        saml_support.verify(document, now=END + SKEW)


# ------------------------------------------------------------- the parser's hardening

DEEP = b"<a>" * 300 + b"</a>" * 300


def test_parser_resolve_entities_is_off() -> None:
    """Kills ``resolve_entities`` flipped: an internal entity stays unexpanded."""
    document = b'<!DOCTYPE x [<!ENTITY e "expanded">]><x>&e;</x>'
    assert etree.fromstring(document, _xmldsig._parser()).text is None
    with pytest.raises(InvalidSecurityToken, match="DOCTYPE"):
        _xmldsig.parse_xml(document)


@pytest.fixture
def dtd_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server serving a DTD, recording every request."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY e "from the network">')

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/x.dtd", requests
    server.shutdown()
    server.server_close()


def test_parser_no_network_holds_even_where_a_dtd_would_be_loaded(
    dtd_server: tuple[str, list[str]],
) -> None:
    """Kills ``no_network`` flipped: with DTD loading on, the network is still refused."""
    url, requests = dtd_server
    document = f'<!DOCTYPE x SYSTEM "{url}"><x>&e;</x>'.encode()
    loading = etree.XMLParser(**{**_xmldsig.PARSER_OPTIONS, "load_dtd": True})
    with pytest.raises(etree.XMLSyntaxError, match="network"):
        etree.fromstring(document, loading)
    assert requests == []
    with pytest.raises(InvalidSecurityToken):
        _xmldsig.parse_xml(document)
    assert requests == []


def test_parser_huge_tree_is_off() -> None:
    """Kills ``huge_tree`` flipped: libxml2's depth limit (256) stays in force."""
    with pytest.raises(InvalidSecurityToken, match="depth"):
        _xmldsig.parse_xml(DEEP)
    shallow = b"<a>" * 200 + b"</a>" * 200
    assert _xmldsig.parse_xml(shallow).tag == "a"


def test_billion_laughs_is_refused_without_expanding() -> None:
    data = (saml_support.VECTORS / "billion_laughs.xml").read_bytes()
    started = time.perf_counter()
    with pytest.raises(InvalidSecurityToken, match="malformed XML"):
        saml_support.verify(data)
    assert time.perf_counter() - started < 1.0


# --------------------------------------------------- JWT _habilitation, deterministic

GOOD = {"service": "DSN", "siret": "73282932000074", "role": "DECLARANT"}


@pytest.mark.parametrize(
    "habilitation",
    [
        {**GOOD, "service": ""},
        {**GOOD, "siret": ""},
        {**GOOD, "role": ""},
        {**GOOD, "service": 1},
        {**GOOD, "siret": None},
        {**GOOD, "role": ["DECLARANT"]},
        {"siret": "73282932000074", "role": "DECLARANT"},
        {"service": "DSN", "role": "DECLARANT"},
        {"service": "DSN", "siret": "73282932000074"},
    ],
    ids=repr,
)
def test_habilitation_needs_three_non_empty_strings(habilitation: dict[str, Any]) -> None:
    """Kills each ``and`` -> ``or`` in ``_claims._habilitation``: an empty or missing service,
    SIRET or role is refused, through ``verify`` and ``py_vector``."""
    claims = base_claims(habilitations=[GOOD, habilitation])
    with pytest.raises(InvalidSecurityToken, match="habilitations malformed"):
        verify(signed(claims))
    with pytest.raises(InvalidSecurityToken, match="habilitations malformed"):
        jwt.py_vector(claims)


def test_habilitation_of_three_strings_is_read() -> None:
    claims = base_claims(habilitations=[GOOD, {"service": "S", "siret": "1", "role": "R"}])
    vector = verify(signed(claims))
    assert vector.habilitations == (
        Habilitation("DSN", "73282932000074", "DECLARANT"),
        Habilitation("S", "1", "R"),
    )
    assert jwt.py_vector(claims).habilitations == vector.habilitations


# ------------------------------------------------- long segments and the exact size cap


def test_header_of_256_characters_or_more_takes_the_simd_path() -> None:
    """Header segments from 256 characters on are decoded by pybase64: same header."""
    header = {"alg": "ES256", "kid": ES256.kid, "typ": "JWT", "x": "é" * 150}
    token = signed(base_claims(), header=header)
    segment = token.split(".")[0]
    assert len(segment) >= _jws._SIMD_FROM
    assert verify(token).claims["sub"] == "D0000001"
    assert _jws.parse_header(segment.encode()) == header


@pytest.mark.parametrize("length", [255, 256, 257, 258, 259, 300, 301])
def test_long_segments_stay_canonical(length: int) -> None:
    """On both codec paths: one spelling per value, a bad length refused."""
    segment = b"A" * length
    remainder = length % 4
    if remainder == 1:
        with pytest.raises(ValueError, match="length"):
            _jws.b64decode(segment)
        return
    assert _jws.b64decode(segment) == base64.urlsafe_b64decode(segment + b"=" * (-length % 4))
    if remainder:
        with pytest.raises(ValueError, match="non-canonical"):
            _jws.b64decode(segment[:-1] + b"B")  # B: low bits set


def test_long_non_canonical_header_is_invalid_security_token() -> None:
    header = b64(json.dumps({"alg": "ES256", "kid": ES256.kid, "x": "y" * 300}).encode())
    assert len(header) % 4 in (2, 3) and len(header) >= _jws._SIMD_FROM
    last = header[-1]
    twin = header[:-1] + ("B" if last != "B" else "C")
    _, payload, signature = issue().split(".")
    with pytest.raises(InvalidSecurityToken, match="non-canonical"):
        verify(f"{twin}.{payload}.{signature}")


def test_jwt_size_cap_is_exact() -> None:
    token = issue()
    assert verify(token, max_size=len(token)).subject == "D0000001"
    with pytest.raises(InvalidSecurityToken, match="too large"):
        verify(token, max_size=len(token) - 1)
    assert len(issue()) < jwt.MAX_SIZE


def test_saml_size_cap_is_exact() -> None:
    document = saml_support.issue()
    vector = saml_support.verify(document, max_size=len(document))
    assert vector.subject == saml_support.VECTOR.subject
    with pytest.raises(InvalidSecurityToken, match="larger than"):
        saml_support.verify(document, max_size=len(document) - 1)


# ------------------------------------------- survivors of the full run (docs/mutation.md)


def test_extra_claims_are_written_compact_and_in_utf8() -> None:
    """Kills ``_extra_json``'s ``separators`` dropped and ``ensure_ascii`` turned on: the
    extra claims are spelled as the core ones (compact UTF-8, what verify reads fastest)."""
    extra = {"nonce": "é-1", "act": {"sub": "x", "n": [1, 2]}}
    token = issue(extra_claims=extra)
    payload = base64.urlsafe_b64decode(token.split(".")[1] + "==")
    assert "é-1".encode() in payload
    compact = json.dumps(json.loads(payload), separators=(",", ":"), ensure_ascii=False)
    assert payload == compact.encode()


def test_extra_claims_that_are_not_unicode_are_a_value_error() -> None:
    """Kills the ``strict`` error handler renamed: a lone surrogate is a ``ValueError``."""
    with pytest.raises(UnicodeEncodeError):
        issue(extra_claims={"nonce": "\ud800"})


def test_long_base64url_encodings_keep_their_last_characters() -> None:
    """Kills ``rstrip(b"=")`` widened on the pybase64 path: an encoding of 256 bytes or
    more that ends in ``X`` keeps it (only padding is removed)."""
    for size in (258, 300, 600):  # multiples of 3: the last character is the last 6 bits
        data = bytes(size - 1) + bytes([23])  # 23 is "X"
        expected = base64.urlsafe_b64encode(data).rstrip(b"=")
        assert expected.endswith(b"X")
        assert _jws.py_b64encode(data) == expected == _jws.b64encode(data)


def test_header_segment_is_the_compact_json_of_alg_kid_typ() -> None:
    """Kills ``encode_json``'s separators dropped: one spelling of the issued header."""
    segment = _jws.header_segment("k-1", "ES256", "JWT")
    assert base64.urlsafe_b64decode(segment + b"==") == b'{"alg":"ES256","kid":"k-1","typ":"JWT"}'


@pytest.mark.skipif(_jws.SPEEDUPS is None, reason="token_suite._speedups absent or blocked")
def test_es256_tokens_are_assembled_by_the_c_module() -> None:
    """Kills the fast path's conditions in ``build_compact``: an ES256 key signs through
    ``_speedups.es256_compact`` with the Python DER fallback; RSA keys in Python."""
    native = _jws.SPEEDUPS
    compact: Any = _jws.build_compact(ES256)
    assert compact.func is native.es256_compact and compact.args[2] is _jws.der_to_raw
    assert not hasattr(_jws.build_compact(RS256), "func")
    python_compact: Any = _jws.build_compact(ES256, native=None)
    assert not hasattr(python_compact, "func")
    token = python_compact(_jws.header_segment(ES256.kid, "ES256", "JWT") + b".", b'{"sub":"x"}')
    assert _jws.verifier_for(ES256.public_key, "ES256")(
        token.rpartition(".")[0].encode(), _jws.b64decode(token.rpartition(".")[2].encode())
    )


@pytest.mark.parametrize(("typ", "lifetime"), [("JWT", 5), ("at+jwt", 15)])
def test_a_new_key_issues_headers_with_its_typ(typ: str, lifetime: int) -> None:
    """Kills ``typ`` dropped in ``_issuing`` (masked by its cache for the stored keys)."""
    key = generate_key(KeyUse.JWT, now=NOW, alg="ES256")
    token = jwt.issue(
        saml_support.VECTOR,
        signer=key,
        issuer="https://idp.example",
        audience="urn:a",
        now=NOW,
        typ=typ,
        lifetime=timedelta(minutes=lifetime),
    )
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "kid": key.kid, "typ": typ}


def test_signature_template_has_text_only_where_values_go() -> None:
    """Kills stray text in the template: only digest, signature and certificate hold text."""
    material = _xmldsig.material(saml_support.IDP)
    template = etree.fromstring(_xmldsig.signature_template("_id", material))
    holders = {f"{_xmldsig.DS}X509Certificate"}
    for node in template.iter():
        assert not (node.tail or "").strip()
        assert not (node.text or "").strip() or node.tag in holders


def test_saml_known_pagm_equal_to_the_tokens_is_enough() -> None:
    """Kills ``set(pagm) <= set(known)`` -> ``<``: the same set of PAGM passes check 7."""
    pagm = set(saml_support.VECTOR.pagm)
    vector = saml_support.verify(saml_support.issue(), known_pagm=pagm)
    assert set(vector.pagm) == pagm


def duplicate_id_document(attribute: str) -> Any:
    """Two elements sharing an ID (built in place: libxml2 refuses to parse such xml:ids)."""
    root = etree.Element("r")
    for name in ("a", "b"):
        etree.SubElement(root, name).set(attribute, "i")
    return root


def test_duplicate_ids_are_refused_in_a_fresh_thread() -> None:
    """Kills ``_ids_xpath``'s mutants (masked by its per-thread cache): a thread that never
    compiled the XPath still refuses duplicate ``ID`` and ``xml:id`` values."""
    outcomes: list[object] = []

    def run() -> None:
        for attribute in ("ID", _xmldsig.XML_ID):
            try:
                _xmldsig.refuse_duplicate_ids(duplicate_id_document(attribute))
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                outcomes.append(type(exc))
            else:
                outcomes.append(None)
        _xmldsig.refuse_duplicate_ids(etree.fromstring('<r><a ID="1"/><b ID="2"/></r>'))
        outcomes.append("unique ok")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert outcomes == [FailedCheck, FailedCheck, "unique ok"]


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("ds:SignedInfo/ds:CanonicalizationMethod", "canonicalisation method"),
        ("ds:SignedInfo/ds:SignatureMethod", "signature algorithm"),
        ("ds:SignedInfo/ds:Reference/ds:DigestMethod", "digest algorithm"),
        ("ds:SignedInfo", "exactly one Reference"),
    ],
)
def test_a_missing_signature_part_is_failed_check(path: str, reason: str) -> None:
    """Kills ``_algorithm`` and ``_check_signed_info`` reading an absent element."""
    root = etree.fromstring(saml_support.issue(sign_response=False))
    signature = root.find("saml:Assertion/ds:Signature", saml_support.NS)
    part = signature.find(path, saml_support.NS)
    part.getparent().remove(part)
    with pytest.raises(FailedCheck, match=reason):
        saml_support.verify(etree.tostring(root))


def test_new_ids_are_160_random_bits() -> None:
    ids = {saml.new_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 41 and i.startswith("_") and int(i[1:], 16) >= 0 for i in ids)


def test_instants_are_written_in_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills ``astimezone(UTC)`` -> ``astimezone()``: the host's zone never leaks in."""
    monkeypatch.setenv("TZ", "America/Martinique")
    time.tzset()
    try:
        paris = timezone(timedelta(hours=1))
        assert saml._instant(datetime(2025, 3, 1, 11, 0, tzinfo=paris)) == "2025-03-01T10:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_attribute_values_with_quotes_round_trip() -> None:
    """Kills ``_attr``'s ``&quot;`` escape altered."""
    recipient = 'https://sp.example/acs?a="b"&c=<d>'
    vector = saml_support.verify(saml_support.issue(recipient=recipient, in_response_to='_"q"'))
    assert vector.claims["recipient"] == recipient
    assert vector.claims["in_response_to"] == '_"q"'


UTF8_VECTOR = IdentityVector(subject="D0000002", given_name="Élodie", pagm=(), habilitations=())


@pytest.mark.parametrize("options", [{}, {"assertion_only": True}, {"sign_response": False}])
def test_issued_document_shape(options: dict[str, Any]) -> None:
    """Kills the issuing mutants that only change the document's bytes: UTF-8 with its
    declaration, an ``_``+40 hex ``ID`` on each element, the signature right after the
    ``Issuer``, the caller's ``assertion_id``, and no text outside leaf elements."""
    document = saml_support.issue(vector=UTF8_VECTOR, assertion_id="_named", **options)
    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "Élodie".encode() in document
    root = etree.fromstring(document)
    assertion = root if root.tag == saml.ASSERTION_TAG else root.find("saml:Assertion", NS_ALL)
    assert assertion.get("ID") == "_named"
    assert assertion[1].tag == _xmldsig.SIGNATURE_TAG
    if root is not assertion:
        assert len(root.get("ID")) == 41 and root.get("ID").startswith("_")
        signed = options.get("sign_response", True)
        assert (root[1].tag == _xmldsig.SIGNATURE_TAG) is signed
    full = etree.fromstring(saml_support.issue(**options))  # several values per attribute
    minimal = etree.fromstring(saml_support.issue(vector=IdentityVector(subject="D1")))
    for element in [*root.iter(), *full.iter(), *minimal.iter()]:
        if len(element):
            assert not (element.text or "").strip(), element.tag
        assert not (element.tail or "").strip(), element.tag
    assert assertion.find("saml:AttributeStatement", NS_ALL) is not None
    assert minimal.find(".//saml:AttributeStatement", NS_ALL) is None
    assert saml_support.verify(document).claims["id"] == "_named"


NS_ALL = saml_support.NS


def test_a_key_that_does_not_fit_its_alg_never_signs() -> None:
    """Kills ``build_signer``'s ``or`` -> ``and``: an EC key labelled RS256 is not signed
    with as ES256 (the header would lie); it refuses, as ``SigningKey.sign`` does."""
    from dataclasses import replace

    mislabelled = replace(ES256, alg="RS256")
    with pytest.raises(ValueError, match="cannot sign"):
        _jws.build_signer(mislabelled)(b"data")


def test_the_duplicate_id_xpath_is_compiled_once_per_thread() -> None:
    """Kills the per-thread cache of ``_ids_xpath`` unread or misnamed (a cost, per call)."""
    seen: list[object] = []

    def run() -> None:
        for _ in range(2):
            _xmldsig.refuse_duplicate_ids(etree.fromstring('<r><a ID="1"/></r>'))
            seen.append(_xmldsig._local.ids)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert len(seen) == 2 and seen[0] is seen[1]


def test_canonical_bytes_drop_comments() -> None:
    """Kills ``with_comments=True`` in ``canonical_bytes``: its contract, on any tree."""
    element = etree.fromstring("<a ID='x'>D00<!-- split -->01</a>")
    assert _xmldsig.canonical_bytes(element) == b'<a ID="x">D0001</a>'


def test_a_signed_element_holding_a_comment_verifies() -> None:
    """Kills ``with_comments=True`` in ``_c14n``: the digest of an issued element is over
    what exclusive c14n without comments gives, as xmlsec checks it."""
    material = _xmldsig.material(saml_support.IDP)
    element = etree.fromstring(
        f'<saml:Issuer xmlns:saml="{saml.SAML_NS}" ID="_c"><!-- x -->{saml_support.ISSUER}'
        "<saml:x>y</saml:x></saml:Issuer>"
    )
    _xmldsig.sign_enveloped(element, material, position=0)
    copy = _xmldsig.verified_copy(element, certificates=[saml_support.IDP.certificate])
    assert saml_support.ISSUER.encode() in etree.tostring(copy)
    assert copy.findtext(f"{{{saml.SAML_NS}}}x") == "y"


# ------------------------------------------------ re-run on the one claim parser (_claims)


@pytest.mark.parametrize("claim", ["iat", "nbf"])
def test_jwt_dates_as_early_as_the_timestamp_range_pass(claim: str) -> None:
    """Kills ``-MAX_TIMESTAMP < iat`` / ``< nbf`` in ``_check_window``: the range is closed."""
    token = signed(base_claims(**{claim: -_claims.MAX_TIMESTAMP}))
    assert verify(token).subject == verify(issue()).subject


def test_jwt_replay_of_a_token_expiring_at_the_last_second_is_remembered_to_the_end() -> None:
    """Kills ``until > _END_OF_TIME_S`` in ``_check_replay``: ``exp`` of 9999-12-31T23:59:59Z
    plus one second of skew is exactly the end of time, kept as ``datetime.max``."""
    cache = RecordingCache()
    claims = base_claims(exp=_claims.MAX_TIMESTAMP, jti="last-second")
    verify(signed(claims), replay=cache, skew=timedelta(seconds=1))
    assert cache.expiry == {"last-second": datetime.max.replace(tzinfo=UTC)}


def test_jwt_header_is_compact_json() -> None:
    """Kills ``separators=None`` in ``_jws.encode_json``: the header is written without spaces."""
    header = base64.urlsafe_b64decode(issue().split(".")[0] + "==")
    assert b" " not in header and header.startswith(b'{"alg":')


def test_encode_json_is_compact() -> None:
    """Kills ``separators=None`` in ``_jws.encode_json`` (the header segment is cached, so the
    issuing tests may not reach it): compact JSON, no spaces."""
    assert _jws.encode_json({"alg": "ES256", "kid": "k"}) == b'{"alg":"ES256","kid":"k"}'


def test_a_plain_json_object_takes_the_fast_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills the mutants of ``decode_object``'s orjson path: an object without duplicates,
    written as orjson writes it, never reaches the strict (slow) decoder."""

    def slow(data: bytes, what: str) -> dict[str, Any]:
        raise AssertionError("strict decoder reached")

    monkeypatch.setattr(_jws, "strict_object", slow)
    assert _jws.decode_object(b'{"a":1,"b":[true]}', "payload") == {"a": 1, "b": [True]}


def test_the_verifier_cache_is_cleared_at_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills ``len(_VERIFIERS) > _MAX_VERIFIERS`` in ``verifier_for``: never more than the
    bound of keys held (a flood of published keys cannot grow it without end)."""
    monkeypatch.setattr(_jws, "_VERIFIERS", {})
    monkeypatch.setattr(_jws, "_MAX_VERIFIERS", 3)
    keys = [generate_key(KeyUse.JWT, now=NOW) for _ in range(4)]
    for key in keys:
        _jws.verifier_for(key.public_key, key.alg)
    assert len(_jws._VERIFIERS) == 1


def test_a_known_kid_never_makes_the_remote_trust_refetch() -> None:
    """Kills ``anchor.for_jwt(None)`` in ``_header_verifier``: once the refetch interval has
    passed, a token signed by a key already fetched is verified without asking the operator."""
    operator = test_remote.Operator(jwt_keys=[generate_key(KeyUse.JWT, now=NOW)])
    trust = operator.trust()
    token = test_remote._jwt(operator.jwt_keys[0])
    test_remote._verify_jwt(token, trust)
    operator.time += test_remote.POLICY.refetch_interval + 1
    asked = len(operator.asked)
    assert test_remote._verify_jwt(token, trust).subject == "D0000001"
    assert len(operator.asked) == asked


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_encode_json_refuses_nan_and_infinities(number: float) -> None:
    """Kills ``allow_nan`` dropped or ``True`` in ``_jws.encode_json``: its contract."""
    with pytest.raises(ValueError):
        _jws.encode_json({"x": number})


def test_openssl_signatures_are_framed_without_the_der_decoder() -> None:
    """Kills ``minimal_der_to_raw(der) -> None`` in ``der_to_raw``: OpenSSL's minimal DER is
    framed directly (there is no fallback: any other shape is refused)."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    der = ec.generate_private_key(ec.SECP256R1()).sign(b"x", ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    assert _jws.der_to_raw(der) == r.to_bytes(32, "big") + s.to_bytes(32, "big")


class _RotatedAnchor:
    """A trust anchor whose cached certificates are stale and whose refetch has the new one."""

    def __init__(self) -> None:
        self.refetched = 0

    def for_saml(self) -> Trust:
        stale = saml_support.ATTACKER.certificate
        return Trust(issuer=saml_support.ISSUER, saml_certificates=(stale,))  # type: ignore[arg-type]

    def refreshed_for_saml(self) -> Trust | None:
        self.refetched += 1
        return saml_support.TRUST


def test_saml_signed_by_a_rotated_key_verifies_after_one_refetch() -> None:
    """Kills the mutants of ``saml.verify``'s retry: a signature the cached certificates do
    not verify makes the anchor refetch once, and the assertion is verified with the new ones."""
    anchor = _RotatedAnchor()
    vector = saml_support.verify(saml_support.issue(), trust=anchor)
    assert vector.subject == saml_support.VECTOR.subject and anchor.refetched == 1


@pytest.mark.parametrize(
    "document", [b"<!DOCTYPE r><r/>", b'<!DOCTYPE r SYSTEM "x.dtd"><r/>', b"<!DOCTYPE r []><r/>"]
)
def test_any_doctype_is_refused(document: bytes) -> None:
    """Kills ``doctype and internalDTD`` in ``parse_xml``: a DOCTYPE without an internal
    subset is refused as well as one with."""
    with pytest.raises(InvalidSecurityToken, match="DOCTYPE"):
        _xmldsig.parse_xml(document)


def test_the_xml_parser_is_one_per_thread_and_kept() -> None:
    """Kills the mutants of ``_xmldsig._parser``: a safe parser, reused within a thread
    (built once), another one in another thread (lxml parsers are not thread-safe)."""
    first = _xmldsig._parser()
    assert isinstance(first, etree.XMLParser) and _xmldsig._parser() is first
    other: list[etree.XMLParser] = []
    thread = threading.Thread(target=lambda: other.append(_xmldsig._parser()))
    thread.start()
    thread.join()
    assert isinstance(other[0], etree.XMLParser) and other[0] is not first


def test_saml_base64_with_a_character_outside_the_alphabet_is_refused() -> None:
    """Kills ``validate`` dropped or ``False`` in ``saml._document_bytes``: the posted base64
    is strict (a stray character is an error, not skipped)."""
    posted = base64.b64encode(saml_support.issue()).decode()
    assert saml_support.verify(posted).subject == saml_support.VECTOR.subject
    with pytest.raises(InvalidSecurityToken):
        saml_support.verify(posted[:40] + "*" + posted[40:])
