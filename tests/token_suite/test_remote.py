"""Trust by URL (``token_suite.remote``): cached per ``max-age`` within a floor and a
ceiling, refetched on an unknown key at most once per interval, last good keys kept
while the operator is unreachable, a clear error with nothing valid cached."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from keys.generate import generate_key
from keys.jwks import jwks
from keys.model import KeyUse, SigningKey
from token_suite import jwt, saml
from token_suite.errors import FailedCheck, TrustUnavailable
from token_suite.metadata import idp_metadata
from token_suite.replay import InMemoryReplayCache
from token_suite.trust import (
    Fetched,
    RefreshPolicy,
    RemoteTrust,
    cache_lifetime,
    check_url,
    from_issuer,
)
from token_suite.vector import ACR_PASSWORD, IdentityVector

ISSUER = "https://idp.example"
ENTITY = "urn:interops:73282932000074:idp:test"
JWKS_URL = f"{ISSUER}/.well-known/jwks.json"
METADATA_URL = f"{ISSUER}/saml/metadata"
NOW = datetime.now(UTC).replace(microsecond=0)
VECTOR = IdentityVector(subject="D0000001", acr=ACR_PASSWORD, auth_time=NOW)
POLICY = RefreshPolicy(
    default_max_age=300, min_max_age=60, max_max_age=3600, refetch_interval=30, stale_limit=600
)


@dataclass
class Operator:
    """A fake operator: its published keys, what it answers, and what it was asked."""

    jwt_keys: list[SigningKey] = field(default_factory=list)
    saml_keys: list[SigningKey] = field(default_factory=list)
    max_age: float | None = 300
    down: bool = False
    asked: list[str] = field(default_factory=list)
    time: float = 1000.0

    def fetch(self, url: str, timeout: float) -> Fetched:
        self.asked.append(url)
        if self.down:
            raise OSError("connection refused")
        if url == JWKS_URL:
            return Fetched(json.dumps(jwks(self.jwt_keys)).encode(), self.max_age)
        if url == METADATA_URL:
            document = idp_metadata(
                entity_id=ENTITY, signing_keys=self.saml_keys, sso_url=f"{ISSUER}/saml/sso"
            )
            return Fetched(document, self.max_age)
        discovery = {"issuer": ISSUER, "jwks_uri": JWKS_URL, "saml_metadata_uri": METADATA_URL}
        return Fetched(json.dumps(discovery).encode(), None)

    def clock(self) -> float:
        return self.time

    def trust(self) -> RemoteTrust:
        return from_issuer(ISSUER, policy=POLICY, fetch=self.fetch, clock=self.clock)

    def rotate_jwt(self) -> SigningKey:
        key = generate_key(KeyUse.JWT, now=NOW)
        self.jwt_keys.append(key)
        return key


def _jwt(key: SigningKey) -> str:
    return jwt.issue(VECTOR, signer=key, issuer=ISSUER, audience="urn:api", now=datetime.now(UTC))


def _verify_jwt(token: str, trust: RemoteTrust) -> IdentityVector:
    return jwt.verify(token, trust=trust, audience="urn:api", replay=InMemoryReplayCache())


def _saml(key: SigningKey) -> bytes:
    return saml.issue(
        VECTOR, signer=key, issuer=ENTITY, audience="https://sp", recipient="https://sp/acs",
        now=datetime.now(UTC),
    )  # fmt: skip


def _verify_saml(document: bytes, trust: RemoteTrust) -> IdentityVector:
    return saml.verify(document, trust=trust, audience="https://sp", replay=InMemoryReplayCache())


@pytest.fixture
def operator() -> Operator:
    return Operator(
        jwt_keys=[generate_key(KeyUse.JWT, now=NOW)], saml_keys=[generate_key(KeyUse.SAML, now=NOW)]
    )


def test_from_issuer_verifies_both_token_kinds(operator: Operator) -> None:
    trust = operator.trust()
    assert _verify_jwt(_jwt(operator.jwt_keys[0]), trust).subject == "D0000001"
    assert _verify_saml(_saml(operator.saml_keys[0]), trust).subject == "D0000001"
    assert trust.for_saml().issuer == ENTITY and trust.issuer == ISSUER
    # one discovery, one JWKS, one metadata
    assert sorted(set(operator.asked)) == sorted(operator.asked)


def test_documents_are_kept_for_their_max_age_within_floor_and_ceiling(operator: Operator) -> None:
    trust = operator.trust()
    kid = operator.jwt_keys[0].kid
    trust.for_jwt(kid)
    operator.time += 299
    trust.for_jwt(kid)
    assert operator.asked.count(JWKS_URL) == 1
    operator.time += 2
    trust.for_jwt(kid)
    assert operator.asked.count(JWKS_URL) == 2
    # max-age 0 (no-store) is raised to the floor; a year is cut to the ceiling
    for max_age, kept in ((0, 60), (365 * 86400, 3600)):
        operator.max_age = max_age
        fresh = operator.trust()
        fresh.for_jwt(kid)
        count = operator.asked.count(JWKS_URL)
        operator.time += kept - 1
        fresh.for_jwt(kid)
        assert operator.asked.count(JWKS_URL) == count
        operator.time += 2
        fresh.for_jwt(kid)
        assert operator.asked.count(JWKS_URL) == count + 1


def test_a_rotated_key_is_fetched_on_its_first_token(operator: Operator) -> None:
    trust = operator.trust()
    old = operator.jwt_keys[0]
    assert _verify_jwt(_jwt(old), trust)
    operator.time += 40
    new = operator.rotate_jwt()
    assert _verify_jwt(_jwt(new), trust).subject == "D0000001"
    assert _verify_jwt(_jwt(old), trust).subject == "D0000001"
    # SAML too: a certificate never seen makes the trust refetch the metadata once
    operator.saml_keys.insert(0, generate_key(KeyUse.SAML, now=NOW))
    operator.time += 40
    assert _verify_saml(_saml(operator.saml_keys[0]), trust).subject == "D0000001"


def test_an_unknown_kid_flood_refetches_at_most_once_per_interval(operator: Operator) -> None:
    trust = operator.trust()
    trust.for_jwt(operator.jwt_keys[0].kid)
    operator.time += 31
    before = operator.asked.count(JWKS_URL)

    def flood() -> None:
        for _ in range(250):
            forged = generate_key(KeyUse.JWT, now=NOW)
            token = jwt.issue(
                VECTOR, signer=forged, issuer=ISSUER, audience="urn:api", now=datetime.now(UTC)
            )
            with pytest.raises(FailedCheck, match="unknown key id"):
                _verify_jwt(token, trust)

    threads = [threading.Thread(target=flood) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert operator.asked.count(JWKS_URL) - before == 1
    operator.time += 31
    with pytest.raises(FailedCheck):
        _verify_jwt(_jwt(generate_key(KeyUse.JWT, now=NOW)), trust)
    assert operator.asked.count(JWKS_URL) - before == 2


def test_last_good_keys_are_kept_while_the_operator_is_down(operator: Operator) -> None:
    trust = operator.trust()
    token = _jwt(operator.jwt_keys[0])
    assert _verify_jwt(token, trust)
    operator.down = True
    operator.time += 300 + 500  # expired, but within the stale limit
    assert _verify_jwt(_jwt(operator.jwt_keys[0]), trust).subject == "D0000001"
    operator.time += 200  # beyond expiry + stale limit: nothing valid is cached
    with pytest.raises(TrustUnavailable, match="connection refused") as caught:
        _verify_jwt(_jwt(operator.jwt_keys[0]), trust)
    assert caught.value.http_status == 503 and caught.value.code == "wsse:FailedCheck"
    operator.down = False
    operator.time += 31
    assert _verify_jwt(_jwt(operator.jwt_keys[0]), trust).subject == "D0000001"


def test_a_broken_document_keeps_the_last_good_keys(operator: Operator) -> None:
    trust = operator.trust()
    assert _verify_jwt(_jwt(operator.jwt_keys[0]), trust)
    good = operator.fetch

    def broken(url: str, timeout: float) -> Fetched:
        return Fetched(b'{"keys": "nope"}', 300) if url == JWKS_URL else good(url, timeout)

    trust._jwks.fetch = broken  # type: ignore[union-attr]
    operator.time += 400
    assert _verify_jwt(_jwt(operator.jwt_keys[0]), trust).subject == "D0000001"


def test_nothing_fetched_yet_is_a_clear_error(operator: Operator) -> None:
    trust = operator.trust()
    operator.down = True
    with pytest.raises(TrustUnavailable, match="no valid keys of the operator"):
        trust.for_jwt("kid")
    with pytest.raises(TrustUnavailable, match="discovery document unavailable"):
        operator.trust()


def test_discovery_must_name_this_issuer(operator: Operator) -> None:
    def lying(url: str, timeout: float) -> Fetched:
        return Fetched(json.dumps({"issuer": "https://evil.example"}).encode(), None)

    with pytest.raises(TrustUnavailable, match="another issuer"):
        from_issuer(ISSUER, fetch=lying)
    with pytest.raises(ValueError, match="needs a JWKS URL"):
        RemoteTrust()


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://idp.example/jwks", True),
        ("http://127.0.0.1:5000/jwks", True),
        ("http://localhost/jwks", True),
        ("http://idp.example/jwks", False),
        ("file:///etc/passwd", False),
        ("ftp://idp.example/x", False),
        ("/relative", False),
    ],
)
def test_keys_come_over_https_only(url: str, ok: bool) -> None:
    if ok:
        assert check_url(url) == url
    else:
        with pytest.raises(ValueError):
            check_url(url)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("public, max-age=300", 300.0),
        ('max-age="60"', 60.0),
        ("no-store", 0.0),
        ("private, no-cache, max-age=900", 0.0),
        ("s-maxage=10", None),
        ("max-age=abc", None),
    ],
)
def test_cache_control(header: str | None, seconds: float | None) -> None:
    assert cache_lifetime(header) == seconds


def test_a_forked_worker_keeps_using_the_trust(operator: Operator) -> None:
    """Pre-forking servers build the trust before forking: the child's locks are fresh
    (a lock held by another thread at fork time would otherwise block it forever)."""
    import os

    trust = operator.trust()
    token = _jwt(operator.jwt_keys[0])
    assert _verify_jwt(token, trust)
    document = trust._jwks
    assert document is not None
    document.lock.acquire()  # as if another thread were fetching at fork time
    try:
        pid = os.fork()
        if pid == 0:  # the child: verify, refetch once on an unknown kid, report by exit code
            code = 1
            try:
                import signal

                signal.alarm(10)  # a lock inherited held would hang here: die instead
                operator.time += 31
                fresh = operator.rotate_jwt()
                code = 0 if _verify_jwt(_jwt(fresh), trust).subject == "D0000001" else 2
            finally:
                os._exit(code)
    finally:
        document.lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
