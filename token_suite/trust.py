"""Trust anchors: the keys and issuer a verifier accepts, chosen before any check.

A :class:`Trust` is built from the operator's SAML metadata or JWKS; a
:class:`~token_suite.remote.RemoteTrust` (``Trust.from_issuer``...) fetches them by
URL and keeps them fresh. Both are trust anchors (:class:`TrustAnchor`). Keys are never taken from
the token itself (INTEROPS_PROFILE.md, check 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography import x509

from keys.model import PublicKey

if TYPE_CHECKING:
    from token_suite.remote import RefreshPolicy, RemoteTrust


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
        from token_suite.metadata import trust_from_idp_metadata

        return trust_from_idp_metadata(source)

    @classmethod
    def from_jwks(cls, source: dict[str, Any] | str | Path, *, issuer: str | None = None) -> Trust:
        """Trust the keys of a JWKS (a dict, or a file path)."""
        from token_suite.jwt import trust_from_jwks

        return trust_from_jwks(source, issuer=issuer)

    @classmethod
    def from_issuer(cls, issuer: str, *, policy: RefreshPolicy | None = None) -> RemoteTrust:
        """Trust the operator at ``issuer`` (its base URL): its discovery document names
        the JWKS and SAML metadata, fetched and kept fresh (:mod:`token_suite.remote`)."""
        from token_suite.remote import from_issuer

        return from_issuer(issuer, policy=policy)

    @classmethod
    def from_jwks_url(
        cls, url: str, *, issuer: str | None = None, policy: RefreshPolicy | None = None
    ) -> RemoteTrust:
        """Trust the keys of the JWKS at ``url``, fetched and kept fresh."""
        from token_suite.remote import RemoteTrust

        return RemoteTrust(issuer=issuer, jwks_url=url, policy=policy)

    @classmethod
    def from_metadata_url(cls, url: str, *, policy: RefreshPolicy | None = None) -> RemoteTrust:
        """Trust the IdP of the SAML metadata at ``url``, fetched and kept fresh."""
        from token_suite.remote import RemoteTrust

        return RemoteTrust(metadata_url=url, policy=policy)

    def for_jwt(self, kid: str) -> Trust:
        """These keys, whatever the ``kid`` (a fixed anchor never refetches)."""
        return self

    def for_saml(self) -> Trust:
        return self

    def refreshed_for_saml(self) -> Trust | None:
        return None
