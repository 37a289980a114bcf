"""Trust anchors: the keys and issuer a verifier accepts, chosen before any check.

A :class:`Trust` is built from the operator's SAML metadata or JWKS (files or
documents); a :class:`RemoteTrust` (``Trust.from_issuer``, ``from_jwks_url``,
``from_metadata_url``) fetches them by URL and keeps them fresh. Both are trust
anchors (:class:`TrustAnchor`). Keys are never taken from the token itself
(docs/profile.md, check 2).

Kept fresh, a :class:`RemoteTrust` follows these rules, so that a key rotation at
the operator needs no restart or code change at the partner:

* documents are cached for their ``Cache-Control: max-age``, bounded by a floor and a
  ceiling (an operator cannot make us fetch on every token, nor keep a key forever);
* a token naming an unknown ``kid`` (or a SAML signature no known certificate checks)
  triggers a refetch at most once per ``refetch_interval`` whatever the number of
  such tokens or threads: a flood of random kids cannot make us hammer the operator;
* when the operator is unreachable or serves a broken document, the last good keys
  are kept (up to ``stale_limit`` past their expiry); with nothing valid cached,
  verification fails with :class:`~token_suite.errors.TrustUnavailable`;
* keys come only from these documents, over HTTPS (plain HTTP only to the loopback
  interface, for tests and local demos): never from the token.

Thread-safe (one lock per document; after ``fork`` a child starts with fresh locks);
each process of a partner keeps its own copy, bounded by the same interval.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509

from keys.jwks import public_keys_from_jwks
from keys.model import PublicKey
from token_suite.errors import InteropsError, TrustUnavailable
from token_suite.metadata import idp_signing


class TrustAnchor(Protocol):
    """What ``verify`` asks of a trust anchor: the keys to use now."""

    @property
    def issuer(self) -> str | None:
        """The trusted issuer (JWT ``iss``), when known."""
        ...

    def for_jwt(self, kid: str) -> Trust:
        """The JWT keys to verify a token naming ``kid`` with."""
        ...

    def for_saml(self) -> Trust:
        """The SAML certificates (and entityID) to verify a jeton with."""
        ...

    def refreshed_for_saml(self) -> Trust | None:
        """Fresher SAML certificates after none verified a signature, or None."""
        ...


@dataclass(frozen=True)
class Trust:
    """One trusted operator: its issuer and its published verification keys.

    ``jwt_keys`` maps ``kid`` to a public key (from a JWKS); ``jwt_algs`` the
    algorithm each key was published for. ``saml_certificates`` are the signing
    certificates of the IdP metadata.
    """

    issuer: str | None = None
    jwt_keys: dict[str, PublicKey] = field(default_factory=dict)
    jwt_algs: dict[str, str] = field(default_factory=dict)
    saml_certificates: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_metadata(cls, source: bytes | str | Path) -> Trust:
        """Trust the IdP described by SAML metadata (bytes, or a file path)."""
        return trust_from_idp_metadata(source)

    @classmethod
    def from_jwks(cls, source: dict[str, Any] | str | Path, *, issuer: str | None = None) -> Trust:
        """Trust the keys of a JWKS (a dict, or a file path)."""
        return trust_from_jwks(source, issuer=issuer)

    @classmethod
    def from_issuer(cls, issuer: str, *, policy: RefreshPolicy | None = None) -> RemoteTrust:
        """Trust the operator at ``issuer`` (its base URL): its discovery document names
        the JWKS and SAML metadata, fetched and kept fresh (see the module)."""
        return from_issuer(issuer, policy=policy)

    @classmethod
    def from_jwks_url(
        cls, url: str, *, issuer: str | None = None, policy: RefreshPolicy | None = None
    ) -> RemoteTrust:
        """Trust the keys of the JWKS at ``url``, fetched and kept fresh."""
        return RemoteTrust(issuer=issuer, jwks_url=url, policy=policy)

    @classmethod
    def from_metadata_url(cls, url: str, *, policy: RefreshPolicy | None = None) -> RemoteTrust:
        """Trust the IdP of the SAML metadata at ``url``, fetched and kept fresh."""
        return RemoteTrust(metadata_url=url, policy=policy)

    def for_jwt(self, kid: str) -> Trust:
        """These keys, whatever the ``kid`` (a fixed anchor never refetches)."""
        return self

    def for_saml(self) -> Trust:
        return self

    def refreshed_for_saml(self) -> Trust | None:
        return None


def trust_from_jwks(source: dict[str, Any] | str | Path, *, issuer: str | None = None) -> Trust:
    """Trust the public signature keys of a JWKS (a dict, or a JSON file path).

    Parsing is :func:`keys.jwks.public_keys_from_jwks` (``ValueError``, as
    ``JWKSError``): it refuses private members, HMAC and unknown key types,
    RSA under 2048 bits, an ``alg`` foreign to the key, RSA keys without
    ``alg``, duplicate kids and kids unsafe as names; keys for another use are
    skipped. Each kid keeps the ``alg`` it was published for (check 2).
    """
    document = source if isinstance(source, dict) else json.loads(Path(source).read_text("utf-8"))
    published = public_keys_from_jwks(document)
    return Trust(
        issuer=issuer,
        jwt_keys={kid: key for kid, (_, key) in published.items()},
        jwt_algs={kid: alg for kid, (alg, _) in published.items()},
    )


def trust_from_idp_metadata(
    source: bytes | str | Path, *, signed_by: Collection[x509.Certificate] | None = None
) -> Trust:
    """Trust the IdP of this metadata (XML bytes or text, or a file path): its
    ``entityID`` and signing certificates (:func:`token_suite.metadata.idp_signing`;
    with ``signed_by``, only metadata signed by one of those certificates)."""
    entity_id, certificates = idp_signing(source, signed_by=signed_by)
    return Trust(issuer=entity_id, saml_certificates=certificates)


# ------------------------------------------------------------------- kept fresh by URL

#: Largest document fetched (bytes).
MAX_DOCUMENT_SIZE = 1024 * 1024
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Fetched:
    """A fetched document and how long its server says it may be kept (seconds)."""

    body: bytes
    max_age: float | None


Fetcher = Callable[[str, float], Fetched]


@dataclass(frozen=True)
class RefreshPolicy:
    """How long documents are kept and how often they may be fetched (seconds)."""

    default_max_age: float = 300.0
    min_max_age: float = 60.0
    max_max_age: float = 86400.0
    refetch_interval: float = 30.0
    stale_limit: float = 86400.0
    timeout: float = 5.0


def cache_lifetime(cache_control: str | None) -> float | None:
    """``max-age`` of a ``Cache-Control`` value (0 for no-store/no-cache), or None."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    found = _MAX_AGE.search(cache_control)
    return float(found.group(1)) if found else None


def check_url(url: str) -> str:
    """``url`` if keys may be fetched from it: HTTPS, or HTTP to the loopback only
    (plain HTTP elsewhere would let anyone on the path substitute the keys)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ValueError(f"keys are fetched over HTTPS only: {url!r}")
    return url


def http_fetch(url: str, timeout: float) -> Fetched:
    """GET ``url`` (urllib, no redirects to other schemes followed blindly: a redirect
    target is checked like the URL itself); 200 only, at most MAX_DOCUMENT_SIZE bytes."""
    request = urllib.request.Request(url, headers={"Accept": "application/json, */*"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        check_url(answer.geturl())
        if answer.status != 200:
            raise OSError(f"HTTP {answer.status}")
        body = answer.read(MAX_DOCUMENT_SIZE + 1)
        if len(body) > MAX_DOCUMENT_SIZE:
            raise OSError("document too large")
        return Fetched(body, cache_lifetime(answer.headers.get("Cache-Control")))


_instances: weakref.WeakSet[_Document] = weakref.WeakSet()


class _Document:
    """One fetched document turned into a Trust, with its expiry and its lock."""

    def __init__(
        self, url: str, parse: Callable[[bytes], Trust], fetch: Fetcher, policy: RefreshPolicy
    ) -> None:
        self.url, self.parse, self.fetch, self.policy = url, parse, fetch, policy
        self.trust: Trust | None = None
        self.expires = 0.0
        self.last_attempt = float("-inf")
        self.error = "not fetched yet"
        self.lock = threading.Lock()
        _instances.add(self)

    def get(self, now: float, *, force: bool = False) -> Trust:
        """The current Trust: refetched when expired (or ``force``d), at most once per
        refetch interval; the last good one kept when the fetch fails."""
        trust = self.trust
        if trust is not None and now < self.expires and not force:
            return trust
        with self.lock:
            if now - self.last_attempt >= self.policy.refetch_interval:
                self._refetch(now)
            return self._usable(now)

    def _refetch(self, now: float) -> None:
        self.last_attempt = now
        try:
            fetched = self.fetch(self.url, self.policy.timeout)
            trust = self.parse(fetched.body)
        except (OSError, ValueError, InteropsError, urllib.error.URLError) as exc:
            self.error = f"{self.url}: {exc}"
            return
        policy = self.policy
        max_age = policy.default_max_age if fetched.max_age is None else fetched.max_age
        self.trust = trust
        self.expires = now + min(max(max_age, policy.min_max_age), policy.max_max_age)

    def _usable(self, now: float) -> Trust:
        if self.trust is None or now >= self.expires + self.policy.stale_limit:
            raise TrustUnavailable(f"no valid keys of the operator: {self.error}")
        return self.trust


def _reset_locks() -> None:
    for document in list(_instances):
        document.lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks)


class RemoteTrust:
    """A trusted operator whose keys are fetched by URL and kept fresh (see module doc).

    Pass it wherever a :class:`Trust` is accepted (``jwt.verify``, ``saml.verify``).
    """

    def __init__(
        self,
        *,
        issuer: str | None = None,
        jwks_url: str | None = None,
        metadata_url: str | None = None,
        policy: RefreshPolicy | None = None,
        fetch: Fetcher = http_fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if jwks_url is None and metadata_url is None:
            raise ValueError("RemoteTrust needs a JWKS URL, a metadata URL, or both")
        self.issuer = issuer
        self.policy = policy or RefreshPolicy()
        self.clock = clock
        self._jwks = self._document(jwks_url, self._parse_jwks, fetch)
        self._metadata = self._document(metadata_url, _parse_metadata, fetch)

    def _document(
        self, url: str | None, parse: Callable[[bytes], Trust], fetch: Fetcher
    ) -> _Document | None:
        return None if url is None else _Document(check_url(url), parse, fetch, self.policy)

    def _parse_jwks(self, body: bytes) -> Trust:
        document = json.loads(body)
        return trust_from_jwks(document if isinstance(document, dict) else {}, issuer=self.issuer)

    def for_jwt(self, kid: str) -> Trust:
        """The JWT keys now, refetched first when ``kid`` is unknown (rate-limited)."""
        if self._jwks is None:
            raise TrustUnavailable("this trust anchor has no JWKS URL")
        now = self.clock()
        trust = self._jwks.get(now)
        if kid in trust.jwt_keys:
            return trust
        return self._jwks.get(now, force=True)

    def for_saml(self) -> Trust:
        """The SAML certificates and entityID now (refetched when expired)."""
        return self._saml().get(self.clock())

    def refreshed_for_saml(self) -> Trust | None:
        """Refetched SAML certificates after none checked a signature, or None when the
        last fetch was too recent (at most one per refetch interval)."""
        document = self._saml()
        before = document.last_attempt
        trust = document.get(self.clock(), force=True)
        return trust if document.last_attempt != before else None

    def _saml(self) -> _Document:
        if self._metadata is None:
            raise TrustUnavailable("this trust anchor has no SAML metadata URL")
        return self._metadata


def _parse_metadata(body: bytes) -> Trust:
    return trust_from_idp_metadata(body)


def from_issuer(
    issuer: str,
    *,
    policy: RefreshPolicy | None = None,
    fetch: Fetcher = http_fetch,
    clock: Callable[[], float] = time.monotonic,
) -> RemoteTrust:
    """Read ``issuer``'s OpenID discovery document (its ``issuer`` must be exactly
    ``issuer``) and trust the JWKS and SAML metadata it names, kept fresh."""
    issuer = issuer.rstrip("/")
    url = check_url(f"{issuer}/.well-known/openid-configuration")
    timeout = (policy or RefreshPolicy()).timeout
    try:
        document: Any = json.loads(fetch(url, timeout).body)
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise TrustUnavailable(f"discovery document unavailable: {url}: {exc}") from exc
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise TrustUnavailable("the discovery document names another issuer")
    jwks_url, metadata_url = document.get("jwks_uri"), document.get("saml_metadata_uri")
    for value in (jwks_url, metadata_url):
        if value is not None and not isinstance(value, str):
            raise TrustUnavailable("malformed discovery document")
    return RemoteTrust(
        issuer=issuer,
        jwks_url=jwks_url,
        metadata_url=metadata_url,
        policy=policy,
        fetch=fetch,
        clock=clock,
    )
