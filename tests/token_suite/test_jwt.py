"""token_suite.jwt: issuing, and each verification check with its Interops code."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from keys.generate import generate_key
from keys.model import KeyState, KeyUse
from tests.token_suite.jwt_support import (
    ATTACKER,
    AUDIENCE,
    ES256,
    ISSUER,
    JWKS,
    NOW,
    PS256,
    RS256,
    VECTOR,
    fresh_cache,
    trust,
)
from token_suite import _jws, jwt
from token_suite.errors import (
    FailedCheck,
    InteropsError,
    InvalidAuthLevel,
    InvalidIssuer,
    InvalidPagm,
    InvalidSecurityToken,
    InvalidService,
    InvalidVI,
    Replay,
    SecurityTokenUnavailable,
)
from token_suite.replay import ReplayCacheFull
from token_suite.trust import Trust
from token_suite.vector import ACR_PASSWORD, ACR_TOTP, Habilitation, IdentityVector


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def issue(**options: Any) -> str:
    arguments: dict[str, Any] = {
        "signer": ES256,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "now": NOW,
    }
    arguments.update(options)
    vector = arguments.pop("vector", VECTOR)
    return jwt.issue(vector, **arguments)


def verify(token: str | bytes, **options: Any) -> IdentityVector:
    arguments: dict[str, Any] = {
        "trust": trust(),
        "audience": AUDIENCE,
        "now": NOW,
        "replay": fresh_cache(),
    }
    arguments.update(options)
    return jwt.verify(token, **arguments)


def signed(claims: dict[str, Any], header: dict[str, Any] | None = None, key: Any = ES256) -> str:
    """A token validly signed by ``key`` with arbitrary claims (reaches checks 3 to 8)."""
    header = header or {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def claims_of(token: str) -> dict[str, Any]:
    result: dict[str, Any] = unb64(token.split(".")[1])
    return result


def base_claims(**changes: Any) -> dict[str, Any]:
    claims = claims_of(issue())
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


# ------------------------------------------------------------------------- issue


def test_issue_header_and_claims_follow_the_profile() -> None:
    token = issue(jti="id-1")
    header = unb64(token.split(".")[0])
    assert header == {"alg": "ES256", "kid": ES256.kid, "typ": "JWT"}
    ts = int(NOW.timestamp())
    assert claims_of(token) == {
        "iss": ISSUER,
        "sub": "D0000001",
        "aud": AUDIENCE,
        "iat": ts,
        "nbf": ts,
        "exp": ts + 300,
        "jti": "id-1",
        "acr": ACR_TOTP,
        "amr": ["pwd", "otp"],
        "auth_time": ts - 60,
        "siret": "73282932000074",
        "given_name": "Élodie",
        "family_name": "Dupont",
        "email": "elodie.dupont@example.fr",
        "pagm": ["PAGM_DSN_DECL", "PAGM_DSN_CONSULT"],
        "habilitations": [{"service": "DSN", "siret": "73282932000074", "role": "DECLARANT"}],
    }


def test_payload_is_the_compact_json_dumps_of_the_claims() -> None:
    payload = base64.urlsafe_b64decode(issue().split(".")[1] + "==")
    assert "Élodie".encode() in payload  # UTF-8, as RFC 8259 requires between systems
    compact = json.dumps(json.loads(payload), separators=(",", ":"), ensure_ascii=False)
    assert payload == compact.encode()


def test_minimal_vector_emits_only_what_is_set() -> None:
    vector = IdentityVector(subject="client-42")
    claims = claims_of(issue(vector=vector, audience=["urn:a", "urn:b"]))
    assert set(claims) == {"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "acr", "amr"}
    assert claims["aud"] == ["urn:a", "urn:b"]
    assert claims["amr"] == ["pwd"] and claims["acr"] == ACR_PASSWORD
    assert len(claims["jti"]) >= 20


def test_jti_is_fresh_for_each_token() -> None:
    assert claims_of(issue())["jti"] != claims_of(issue())["jti"]


def test_extra_claims_are_added_never_override() -> None:
    extra = {"nonce": "n-1", "azp": "client", "sid": "s-1", "scope": "openid", "act": {"sub": "x"}}
    claims = claims_of(issue(extra_claims=extra))
    assert {name: claims[name] for name in extra} == extra
    assert list(claims)[-5:] == list(extra)
    for core in ("sub", "exp", "email", "pagm"):
        with pytest.raises(ValueError, match="core claims"):
            issue(extra_claims={core: "x"})
    with pytest.raises(ValueError, match="strings"):
        issue(extra_claims={1: "x"})
    with pytest.raises(ValueError):
        issue(extra_claims={"x": float("nan")})


@pytest.mark.parametrize(
    ("typ", "lifetime", "allowed"),
    [
        ("JWT", timedelta(minutes=5), True),
        ("JWT", timedelta(minutes=5, seconds=1), False),
        ("at+jwt", timedelta(minutes=15), True),
        ("application/AT+JWT", timedelta(minutes=15), True),
        ("at+jwt", timedelta(minutes=15, seconds=1), False),
        ("JWT", timedelta(0), False),
        ("JWT", timedelta(seconds=-1), False),
    ],
)
def test_lifetime_caps(typ: str, lifetime: timedelta, allowed: bool) -> None:
    if allowed:
        claims = claims_of(issue(typ=typ, lifetime=lifetime))
        assert claims["exp"] - claims["iat"] == lifetime.total_seconds()
    else:
        with pytest.raises(ValueError, match="lifetime"):
            issue(typ=typ, lifetime=lifetime)


def test_issue_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timezone"):
        issue(now=datetime(2025, 3, 1, 10, 0))
    with pytest.raises(ValueError, match="timezone"):  # the vector's auth_time too
        issue(vector=IdentityVector(subject="D1", auth_time=datetime(2025, 3, 1, 10, 0)))
    for audience in ("", [], ["ok", ""], ["ok", 3], 3, None):
        with pytest.raises(ValueError, match="audience"):
            issue(audience=audience)
    hs = generate_key(KeyUse.JWT, now=NOW)
    object.__setattr__(hs, "alg", "HS256")
    with pytest.raises(ValueError, match="not allowed"):
        issue(signer=hs)


def test_es256_signer_needs_p256() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = generate_key(KeyUse.JWT, now=NOW)
    object.__setattr__(key, "private_key", ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ValueError, match="P-256"):
        issue(signer=key)


@pytest.mark.parametrize("key", [ES256, RS256, PS256], ids=lambda k: k.alg)
def test_round_trip_every_algorithm(key: Any) -> None:
    token = issue(signer=key, jti="rt-1", extra_claims={"sid": "sess-1"})
    assert unb64(token.split(".")[0])["alg"] == key.alg
    vector = verify(token)
    assert vector.subject == VECTOR.subject
    assert vector.siret == VECTOR.siret
    assert vector.family_name == "Dupont" and vector.given_name == "Élodie"
    assert vector.email == VECTOR.email
    assert vector.pagm == VECTOR.pagm
    assert vector.habilitations == VECTOR.habilitations
    assert vector.acr == ACR_TOTP and vector.amr == ["pwd", "otp"]
    assert vector.auth_time == VECTOR.auth_time
    assert vector.session_index == "sess-1"
    assert vector.claims == claims_of(token)


def test_signer_is_built_once_per_key() -> None:
    assert _jws.compact_for(ES256) is _jws.compact_for(ES256)
    assert _jws.build_signer(RS256) == RS256.sign
    first = jwt._issuing(ES256, "JWT", timedelta(minutes=5))
    assert jwt._ISSUING[(id(ES256), "JWT", timedelta(minutes=5))] is first
    assert first[0] is ES256 and first[3] == 300 and first[1].endswith(b".")
    assert jwt._issuing(ES256, "at+jwt", timedelta(minutes=15))[3] == 900


def test_issuing_cache_is_bounded_and_never_serves_another_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jwt, "_ISSUING", {})
    monkeypatch.setattr(jwt, "_MAX_ISSUING", 2)
    for typ in ("JWT", "at+jwt", "id_token+jwt"):
        jwt._issuing(ES256, typ, timedelta(minutes=5))
    assert len(jwt._ISSUING) == 1
    # an entry left by a key whose id() is now another key's is rebuilt, not used
    jwt._ISSUING[(id(RS256), "JWT", jwt.DEFAULT_LIFETIME)] = jwt._issuing(
        ES256, "JWT", jwt.DEFAULT_LIFETIME
    )
    token = issue(signer=RS256)
    assert unb64(token.split(".")[0])["alg"] == "RS256" and verify(token).subject


def test_jti_pool_is_drawn_once_per_batch_and_emptied_in_a_forked_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = jwt.os.urandom

    def counting(size: int) -> bytes:
        calls.append(size)
        return real(size)

    monkeypatch.setattr(jwt.os, "urandom", counting)
    jwt._JTIS.clear()
    drawn = {jwt._fresh_jti() for _ in range(jwt._JTI_BATCH + 1)}
    assert len(drawn) == jwt._JTI_BATCH + 1 and all(len(jti) == 32 for jti in drawn)
    assert calls == [16 * jwt._JTI_BATCH] * 2
    assert len(jwt._JTIS) == jwt._JTI_BATCH - 1
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(writer, str(len(jwt._JTIS)).encode())
        os._exit(0)
    os.close(writer)
    assert os.read(reader, 16) == b"0"
    os.close(reader)
    os.waitpid(child, 0)
    assert len(jwt._JTIS) == jwt._JTI_BATCH - 1


# ---------------------------------------------------------------- verify: check 1


def test_check_1_presence_size_and_form() -> None:
    token = issue()
    with pytest.raises(SecurityTokenUnavailable):
        verify("")
    with pytest.raises(SecurityTokenUnavailable):
        verify(b"")
    assert verify(token.encode()).subject == VECTOR.subject
    with pytest.raises(InvalidSecurityToken, match="too large"):
        verify(token, max_size=len(token) - 1)
    header, payload, signature = token.split(".")
    nan, duplicate, quoted = b64(b'{"a":NaN}'), b64(b'{"a":1,"a":2}'), b64(b'"ES256"')
    for bad in (
        f"{header}.{payload}",
        f"{header}.{payload}.{signature}.x",
        f"{header}.{payload}.{signature}=",
        f"{header}.{payload}+.{signature}",
        f"{header} .{payload}.{signature}",
        f"{header}.{payload}.{signature}é",
        f"{header}.{payload}x.{signature}",  # length 1 mod 4
        f"{header}.{b64(b'[1]')}.{signature}",
        f"{header}.{b64(b'{not json')}.{signature}",
        f"{header}.{nan}.{signature}",
        f"{header}.{duplicate}.{signature}",
        f"{header}.{b64(bytes([0xFF, 0xFE]))}.{signature}",
        f"{quoted}.{payload}.{signature}",
    ):
        with pytest.raises(InvalidSecurityToken):
            verify(bad, max_size=10**6)


def test_check_1_refuses_non_canonical_base64url() -> None:
    token = issue()
    header, payload, signature = token.split(".")
    last = signature[-1]
    index = _jws._CANONICAL_LAST[len(signature) % 4]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) + 1]  # same decoded bytes, non-zero unused bits
    assert ord(sibling) not in index
    with pytest.raises(InvalidSecurityToken, match="canonical"):
        verify(f"{header}.{payload}.{signature[:-1]}{sibling}")


def test_recursion_bomb_is_invalid_security_token() -> None:
    token = issue()
    _, payload, signature = token.split(".")
    bomb = b64(b"[" * 50000 + b"]" * 50000)
    with pytest.raises(InvalidSecurityToken):
        verify(f"{bomb}.{payload}.{signature}", max_size=10**6)


# ---------------------------------------------------------------- verify: check 2


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "kid": ES256.kid},
        {"alg": "HS256", "kid": ES256.kid},
        {"alg": "ES384", "kid": ES256.kid},
        {"kid": ES256.kid},
        {"alg": "ES256"},
        {"alg": "ES256", "kid": ATTACKER.kid},
        {"alg": "ES256", "kid": "../es256"},
        {"alg": "ES256", "kid": ES256.kid, "jku": "https://evil.example/jwks"},
        {"alg": "ES256", "kid": ES256.kid, "x5c": ["MII="]},
        {"alg": "ES256", "kid": ES256.kid, "crit": ["b64"], "b64": False},
        {"alg": "ES256", "kid": ES256.kid, "zip": "DEF"},
        {"alg": "RS256", "kid": ES256.kid},
        {"alg": "PS256", "kid": RS256.kid},
    ],
)
def test_check_2_header(header: dict[str, Any]) -> None:
    with pytest.raises(FailedCheck):
        verify(signed(base_claims(), header=header))


def test_check_2_signature_by_an_untrusted_key_under_a_trusted_kid() -> None:
    header = {"alg": "ES256", "kid": ES256.kid}
    with pytest.raises(FailedCheck, match="does not verify"):
        verify(signed(base_claims(), header=header, key=ATTACKER))


def test_check_2_typ_when_asked() -> None:
    access = issue(typ="at+jwt", lifetime=timedelta(minutes=10))
    assert verify(access, typ="at+jwt").subject == VECTOR.subject
    assert verify(access, typ="application/at+jwt").subject == VECTOR.subject
    with pytest.raises(FailedCheck, match="type"):
        verify(issue(), typ="at+jwt")
    no_typ = signed(base_claims(), header={"alg": "ES256", "kid": ES256.kid})
    with pytest.raises(FailedCheck, match="type"):
        verify(no_typ, typ="JWT")
    assert verify(no_typ).subject == VECTOR.subject


def test_check_2_published_key_must_fit_its_algorithm() -> None:
    wrong = Trust(
        issuer=ISSUER,
        jwt_keys={ES256.kid: RS256.public_key},
        jwt_algs={ES256.kid: "ES256"},
    )
    with pytest.raises(FailedCheck, match="does not fit"):
        verify(issue(), trust=wrong)
    unpublished_alg = Trust(issuer=ISSUER, jwt_keys={ES256.kid: ES256.public_key})
    with pytest.raises(FailedCheck, match="published"):
        verify(issue(), trust=unpublished_alg)


def test_verifier_building_refuses_misfits() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    with pytest.raises(ValueError, match="P-256"):
        _jws.verifier_for(ec.generate_private_key(ec.SECP384R1()).public_key(), "ES256")
    with pytest.raises(ValueError, match="not supported"):
        _jws.verifier_for(ES256.public_key, "HS256")
    with pytest.raises(ValueError, match="2048"):
        _jws.verifier_for(ES256.public_key, "RS256")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(ValueError, match="2048"):
        _jws.verifier_for(small, "PS256")


def test_verifier_cache_is_reused_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    public_key = ES256.public_key
    first = _jws.verifier_for(public_key, "ES256")
    assert _jws.verifier_for(public_key, "ES256") is first
    monkeypatch.setattr(_jws, "_MAX_VERIFIERS", 1)
    _jws.verifier_for(RS256.public_key, "RS256")
    assert len(_jws._VERIFIERS) == 1
    assert verify(issue()).subject == VECTOR.subject


def test_wrong_length_signatures_fail() -> None:
    header, payload, _ = issue().split(".")
    for signature in (b"", b"\0" * 63, b"\0" * 65, b"\0" * 64):
        with pytest.raises(FailedCheck):
            verify(f"{header}.{payload}.{b64(signature)}")
    rsa_header, rsa_payload, _ = issue(signer=RS256).split(".")
    with pytest.raises(FailedCheck):
        verify(f"{rsa_header}.{rsa_payload}.{b64(b'0' * 256)}")


# ---------------------------------------------- verify: signed claims well-typed


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": None},
        {"iss": 5},
        {"sub": ""},
        {"sub": None},
        {"jti": None},
        {"jti": ["x"]},
        {"aud": None},
        {"aud": []},
        {"aud": [AUDIENCE, 3]},
        {"aud": 3},
        {"siret": 73282932000074},
        {"email": ["x"]},
        {"acr": 1},
        {"sid": 1},
        {"pagm": "PAGM_DSN_DECL"},
        {"pagm": ["ok", 1]},
        {"habilitations": {"service": "DSN"}},
        {"habilitations": [{"service": "DSN", "siret": "1"}]},
        {"habilitations": ["DSN/1/DECLARANT"]},
        {"auth_time": "yesterday"},
        {"auth_time": -1},
        {"auth_time": True},
    ],
)
def test_malformed_claims_are_invalid_security_token(changes: dict[str, Any]) -> None:
    claims = base_claims()
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    with pytest.raises(InvalidSecurityToken):
        verify(signed(claims))


def test_absent_optional_claims() -> None:
    claims = base_claims(
        siret=None,
        pagm=None,
        habilitations=None,
        acr=None,
        auth_time=None,
        email=None,
        given_name=None,
        family_name=None,
    )
    vector = verify(signed(claims))
    assert vector.pagm == () and vector.habilitations == ()
    assert vector.acr == ACR_PASSWORD and vector.auth_time is None
    assert vector.siret is vector.email is vector.session_index is None


# ---------------------------------------------------------------- verify: check 3


@pytest.mark.parametrize(
    ("changes", "now_offset"),
    [
        ({"exp": None}, 0),
        ({"iat": None}, 0),
        ({"exp": "soon"}, 0),
        ({"exp": True}, 0),
        ({"nbf": "now"}, 0),
        ({"exp": 10**20}, 0),
        ({"iat": -(10**20)}, 0),
        ({}, 361),  # exp = now + 300, skew 60
        ({"nbf": int(NOW.timestamp()) + 61}, 0),
        ({"iat": int(NOW.timestamp()) + 61}, 0),
    ],
)
def test_check_3_validity_window(changes: dict[str, Any], now_offset: int) -> None:
    claims = base_claims()
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    token = signed(claims)
    with pytest.raises(InvalidVI):
        verify(token, now=NOW + timedelta(seconds=now_offset))


def test_check_3_infinite_exp() -> None:
    text = json.dumps(base_claims()).replace('"exp": ', '"exp": 1e400, "x": ')
    header = b64(json.dumps({"alg": "ES256", "kid": ES256.kid}).encode())
    signing_input = f"{header}.{b64(text.encode())}"
    token = f"{signing_input}.{b64(ES256.sign(signing_input.encode()))}"
    with pytest.raises(InvalidVI, match="range"):
        verify(token)


def test_check_3_skew_bounds() -> None:
    token = issue()
    assert verify(token, now=NOW + timedelta(seconds=359)).subject
    with pytest.raises(InvalidVI, match="expired"):
        verify(token, now=NOW + timedelta(seconds=360))
    with pytest.raises(InvalidVI, match="expired"):
        verify(token, now=NOW + timedelta(seconds=301), skew=timedelta(0))
    assert verify(token, now=NOW - timedelta(seconds=60)).subject
    with pytest.raises(InvalidVI, match="not yet"):
        verify(token, now=NOW - timedelta(seconds=61))
    no_nbf = signed(base_claims(nbf=None, exp=int(NOW.timestamp()) + 100.9))
    with pytest.raises(InvalidVI, match="expired"):  # fractional exp truncated, as PyJWT
        verify(no_nbf, now=NOW + timedelta(seconds=160.5))


# ------------------------------------------------------------------ checks 4 to 8


def test_check_4_audience() -> None:
    with pytest.raises(InvalidService):
        verify(issue(audience="urn:other"))
    with pytest.raises(InvalidService):
        verify(issue(audience=["urn:a", "urn:b"]))
    assert verify(issue(audience=["urn:a", AUDIENCE])).subject


def test_check_5_issuer() -> None:
    with pytest.raises(InvalidIssuer):
        verify(issue(issuer="https://evil.example"))
    assert verify(issue(), trust=trust(None), issuer=ISSUER).subject
    assert verify(issue(), issuer=ISSUER).subject
    with pytest.raises(ValueError, match="needs issuer"):
        verify(issue(), trust=trust(None))
    with pytest.raises(ValueError, match="differs"):
        verify(issue(), issuer="https://other.example")


def test_check_6_authentication_level() -> None:
    password = issue(vector=IdentityVector(subject="D1", acr=ACR_PASSWORD))
    assert verify(password, min_acr=ACR_PASSWORD).acr == ACR_PASSWORD
    with pytest.raises(InvalidAuthLevel):
        verify(password, min_acr=ACR_TOTP)
    assert verify(issue(), min_acr=ACR_TOTP).acr == ACR_TOTP
    unknown = signed(base_claims(acr="urn:custom:level"))
    with pytest.raises(InvalidAuthLevel):
        verify(unknown, min_acr=ACR_PASSWORD)
    with pytest.raises(ValueError, match="unknown authentication level"):
        verify(issue(), min_acr="urn:custom:level")


def test_check_7_pagm() -> None:
    known = {"PAGM_DSN_DECL", "PAGM_DSN_CONSULT", "PAGM_OTHER"}
    assert verify(issue(), known_pagm=known).pagm == VECTOR.pagm
    with pytest.raises(InvalidPagm, match="unknown"):
        verify(issue(), known_pagm={"PAGM_DSN_DECL"})
    identity_only = issue(vector=IdentityVector(subject="D1"))
    with pytest.raises(InvalidPagm, match="no PAGM"):
        verify(identity_only, known_pagm=known)
    assert verify(identity_only).pagm == ()


def test_check_8_replay_until_exp_plus_skew() -> None:
    token = issue()
    now = [NOW]
    from token_suite.replay import InMemoryReplayCache

    cache = InMemoryReplayCache(clock=lambda: now[0])
    verify(token, replay=cache)
    with pytest.raises(Replay):
        verify(token, replay=cache)
    now[0] = NOW + timedelta(seconds=359)
    with pytest.raises(Replay):
        verify(token, replay=cache, now=now[0])
    assert len(cache) == 1
    now[0] = NOW + timedelta(seconds=360)
    with pytest.raises(InvalidVI):  # by then the token has expired anyway
        verify(token, replay=cache, now=now[0])


class DatetimeCache:
    """A :class:`ReplayCache` of another kind (as Redis or SQL are): given datetimes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        self.calls.append((token_id, expires_at))
        return len(self.calls) > 1


def test_check_8_other_caches_get_an_aware_datetime() -> None:
    token = issue()
    cache = DatetimeCache()
    verify(token, replay=cache)
    with pytest.raises(Replay):
        verify(token, replay=cache)
    jti = claims_of(token)["jti"]
    assert cache.calls[0] == (jti, NOW + timedelta(minutes=5, seconds=60))
    assert cache.calls[0][1].tzinfo is UTC


def test_replay_cache_full_refuses() -> None:
    from token_suite.replay import InMemoryReplayCache

    cache = InMemoryReplayCache(max_entries=1, clock=lambda: NOW)
    verify(issue(), replay=cache)
    with pytest.raises(ReplayCacheFull) as caught:
        verify(issue(), replay=cache)
    assert caught.value.code == "vi:Replay"


def test_default_replay_cache_is_process_wide() -> None:
    now = datetime.now(UTC)
    token = issue(now=now)
    jwt.verify(token, trust=trust(), audience=AUDIENCE)
    with pytest.raises(Replay):
        jwt.verify(token, trust=trust(), audience=AUDIENCE, now=now)
    assert jwt.DEFAULT_REPLAY_CACHE.max_entries == 200_000


def test_naive_now_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        verify(issue(), now=datetime(2025, 3, 1, 10, 0))


def test_first_failure_decides() -> None:
    """An expired token for another audience from another issuer: check 3 speaks first."""
    claims = base_claims(aud="urn:other", iss="https://evil.example", exp=0, iat=0, nbf=0)
    with pytest.raises(InvalidVI):
        verify(signed(claims))
    with pytest.raises(InvalidService):
        verify(signed(base_claims(aud="urn:other", iss="https://evil.example")))


@pytest.mark.parametrize(
    ("token", "error"),
    [
        ("x.y.z", InvalidSecurityToken),
        ("", SecurityTokenUnavailable),
        (b"", SecurityTokenUnavailable),
        ("a.b", InvalidSecurityToken),
        ("a.b.c.d", InvalidSecurityToken),
        ("é.b.c", InvalidSecurityToken),
        (b"\xff.\xfe.\xfd", InvalidSecurityToken),
        ("\ud800.a.b", InvalidSecurityToken),
        ("e30.e30.", FailedCheck),  # {} . {} . no signature
        ("W10.e30.AA", InvalidSecurityToken),  # header is a JSON array
        ("e30.W10.AA", InvalidSecurityToken),  # payload is a JSON array
        (".e30.AA", InvalidSecurityToken),
        ("x" * (jwt.MAX_SIZE + 1), InvalidSecurityToken),
    ],
)
def test_every_error_is_an_interops_error(token: str | bytes, error: type[Exception]) -> None:
    with pytest.raises(InteropsError) as caught:
        verify(token)
    assert type(caught.value) is error


# ------------------------------------------------------------------------- JWKS


def test_trust_from_jwks_dict_and_file(tmp_path: Path) -> None:
    from_dict = jwt.trust_from_jwks(JWKS, issuer=ISSUER)
    assert from_dict.jwt_algs == {ES256.kid: "ES256", RS256.kid: "RS256", PS256.kid: "PS256"}
    assert from_dict.issuer == ISSUER
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(JWKS), "utf-8")
    for source in (path, str(path)):
        loaded = jwt.trust_from_jwks(source)
        assert loaded.jwt_algs == from_dict.jwt_algs and loaded.issuer is None
        assert verify(issue(), trust=loaded, issuer=ISSUER).subject


def test_trust_from_jwks_refuses_private_members() -> None:
    private = dict(JWKS["keys"][0], d="AAAA")
    with pytest.raises(ValueError, match="private"):
        jwt.trust_from_jwks({"keys": [private]})


def test_trust_from_public_jwk_of_a_generated_key() -> None:
    key = generate_key(KeyUse.JWT, now=NOW, alg="PS256", state=KeyState.ACTIVE)
    loaded = jwt.trust_from_jwks({"keys": [key.public_jwk()]}, issuer=ISSUER)
    assert verify(issue(signer=key), trust=loaded).subject == VECTOR.subject


def test_habilitation_round_trip_of_odd_values() -> None:
    vector = IdentityVector(
        subject='quote " backslash \\ and \u2028 and \x00',
        habilitations=(Habilitation("S/1", "é", 'r"'),),
        pagm=("ü", "\ud7ff"),
    )
    result = verify(issue(vector=vector))
    assert result.subject == vector.subject
    assert result.habilitations == vector.habilitations and result.pagm == vector.pagm


def test_machine_acr_has_empty_amr() -> None:
    """No person authenticated here (client_credentials, a partner's assertion): amr is []."""
    vector = IdentityVector(subject="client-42", acr="urn:interops:acr:machine")
    claims = claims_of(issue(vector=vector))
    assert claims["acr"] == "urn:interops:acr:machine" and claims["amr"] == []
