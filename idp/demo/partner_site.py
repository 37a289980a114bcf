"""The demo partner's site as it knows itself and the operator: its addresses and
key (:class:`PartnerSite`, :func:`load_key`, :func:`site_metadata`), the operator seen
through its public documents only (:class:`Operator`), and who arrived
(:class:`Arrivals`). The app (:mod:`idp.demo.partner`) and its pages and API
(:mod:`idp.demo.partner_views`, :mod:`idp.demo.partner_api`) build on it.

Arrivals are kept server side, keyed by the operator's session id (the SAML
SessionIndex, the OIDC ``sid``), so a LogoutRequest from the operator ends them
even when the browser's cookie does not come along (a logout page in a frame).
"""

from __future__ import annotations

import json
import re
import threading
import time
import unicodedata
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from keys.generate import generate_key
from keys.model import KeyUse, SigningKey
from token_suite import Trust, messages
from token_suite.bindings import BINDING_REDIRECT
from token_suite.metadata import idp_endpoints

CACHE = timedelta(minutes=5)


def slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


@dataclass(frozen=True)
class PartnerSite:
    """Where the partner lives and whom it trusts."""

    name: str
    base_url: str
    idp_url: str
    folder: Path
    service: str = "DSN"
    #: PAGM allowing its API's operation (any one of them; Interops-A)
    api_pagm: tuple[str, ...] = ("DSN_DECLARANT",)

    @property
    def entity_id(self) -> str:
        return f"{self.base_url}/saml/metadata"

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/saml/acs"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/saml/slo"

    @property
    def callback_url(self) -> str:
        return f"{self.base_url}/oidc/callback"

    @property
    def logged_out_url(self) -> str:
        return f"{self.base_url}/deconnecte"

    @property
    def api_audience(self) -> str:
        """The API's identifier: the audience of the tokens it accepts (Interops-A)."""
        return f"{self.base_url}/api"

    @property
    def client_id(self) -> str:
        return f"demo-{slug(self.name)}"


# ------------------------------------------------------------------ key, metadata


_KEYS: dict[Path, SigningKey] = {}
_KEYS_LOCK = threading.Lock()
#: where earlier versions wrote the key in clear (deleted on sight)
_OLD_KEY_FILE = "saml-key.pem"


def load_key(folder: Path) -> SigningKey:
    """The partner's SAML key and certificate for the site of ``folder``: made once per
    process and kept in memory only, so no private key lies in clear on disk (the site
    is registered again, with its new certificate, at every start). A key file left in
    clear by an earlier version is deleted."""
    with _KEYS_LOCK:
        (folder / _OLD_KEY_FILE).unlink(missing_ok=True)
        key = _KEYS.get(folder)
        if key is None:
            key = _KEYS[folder] = generate_key(KeyUse.SAML, now=datetime.now(UTC), alg="RS256")
        return key


def site_metadata(site: PartnerSite, key: SigningKey) -> bytes:
    """The partner's SAML SP metadata: entityID, signing certificate, ACS and SLO."""
    return messages.sp_metadata(
        entity_id=site.entity_id, acs_url=site.acs_url, slo_url=site.slo_url, signing_key=key
    )


# --------------------------------------------------------------- the operator


def fetch_url(url: str, data: dict[str, str] | None = None) -> bytes:
    """GET ``url``, or POST ``data`` form-encoded to it (at most 1 MiB read)."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=10) as response:
        return bytes(response.read(1024 * 1024))


Fetch = Callable[[str, "dict[str, str] | None"], bytes]


@dataclass
class Operator:
    """What the partner knows of the identity provider, fetched from its public URLs."""

    idp_url: str
    fetch: Fetch = fetch_url
    _saml: tuple[float, Trust, dict[str, str]] | None = None
    _oidc: tuple[float, dict[str, Any], Trust] | None = None

    def saml(self) -> tuple[Trust, dict[str, str]]:
        """Trust (certificates, entityID) and endpoints from the signed SAML metadata."""
        if self._saml is None or self._saml[0] < time.monotonic():
            document = self.fetch(f"{self.idp_url}/saml/metadata", None)
            trust = Trust.from_metadata(document)
            endpoints = {
                tag: endpoint.location
                for tag, found in idp_endpoints(document).items()
                for endpoint in found
                if endpoint.binding == BINDING_REDIRECT
            }
            self._saml = (time.monotonic() + CACHE.total_seconds(), trust, endpoints)
        return self._saml[1], self._saml[2]

    def oidc(self) -> tuple[dict[str, Any], Trust]:
        """The discovery document and the JWKS it names."""
        if self._oidc is None or self._oidc[0] < time.monotonic():
            discovery = json.loads(
                self.fetch(f"{self.idp_url}/.well-known/openid-configuration", None)
            )
            jwks = json.loads(self.fetch(discovery["jwks_uri"], None))
            trust = Trust.from_jwks(jwks, issuer=discovery["issuer"])
            self._oidc = (time.monotonic() + CACHE.total_seconds(), discovery, trust)
        return self._oidc[1], self._oidc[2]


# ------------------------------------------------------------------- arrivals


@dataclass
class Arrivals:
    """Who arrived in which browser (local id -> protocol -> arrival), server side."""

    by_browser: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, local: str, protocol: str, arrival: dict[str, Any]) -> None:
        with self.lock:
            self.by_browser.setdefault(local, {})[protocol] = arrival

    def of(self, local: str | None) -> dict[str, dict[str, Any]]:
        with self.lock:
            return dict(self.by_browser.get(local or "", {}))

    def pop(self, local: str | None) -> dict[str, dict[str, Any]]:
        with self.lock:
            return self.by_browser.pop(local or "", {})

    def end(self, subject: str, sids: list[str]) -> int:
        """End every arrival of ``subject`` in one of the operator's sessions ``sids``
        (all of the subject's when no SessionIndex was given)."""
        ended = 0
        with self.lock:
            for arrivals in self.by_browser.values():
                for protocol, arrival in list(arrivals.items()):
                    if arrival["subject"] == subject and (not sids or arrival.get("sid") in sids):
                        del arrivals[protocol]
                        ended += 1
        return ended
