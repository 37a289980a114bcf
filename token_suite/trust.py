"""Trust anchors: the keys and issuer a verifier accepts, chosen before any check.

A :class:`Trust` is built from the operator's SAML metadata or JWKS. Keys are
never taken from the token itself (INTEROPS_PROFILE.md, check 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from keys.model import PublicKey


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
