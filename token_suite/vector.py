"""The identity vector: what a token says about its subject, in one model.

The same :class:`IdentityVector` is built from directory data to issue a token
and returned by ``verify()``; SAML and JWT are two spellings of it
(docs/profile.md, "Un vecteur d'identité, deux écritures").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Machine calls with no user carry this subject in SAML.
NO_SUBJECT = "NON_RENSEIGNE"

ACR_PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
ACR_TOTP = "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken"
#: Authentication levels, weakest first: check 6 compares positions in this list.
ACR_LEVELS: tuple[str, ...] = (ACR_PASSWORD, ACR_TOTP)


@dataclass(frozen=True, order=True)
class Habilitation:
    """One right: a role on a service for an establishment (``DSN/SIRET/DECLARANT``)."""

    service: str
    siret: str
    role: str = "DECLARANT"

    def as_saml(self) -> str:
        return f"{self.service}/{self.siret}/{self.role}"

    def as_claim(self) -> dict[str, str]:
        return {"service": self.service, "siret": self.siret, "role": self.role}

    @classmethod
    def from_saml(cls, value: str) -> Habilitation:
        """Parse ``SERVICE/SIRET/ROLE``; raises ``ValueError`` on any other shape."""
        parts = value.split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"malformed habilitation {value!r}")
        return cls(*parts)

    @classmethod
    def from_claim(cls, value: Any) -> Habilitation:
        """Parse a ``{"service","siret","role"}`` object; ``ValueError`` otherwise."""
        if not isinstance(value, dict):
            raise ValueError("habilitation claim must be an object")  # noqa: TRY004 - documented
        items = [value.get(k) for k in ("service", "siret", "role")]
        if not all(isinstance(v, str) and v for v in items):
            raise ValueError("habilitation claim needs service, siret and role strings")
        return cls(*items)  # type: ignore[arg-type]


@dataclass(frozen=True)
class IdentityVector:
    """Who the subject is and what it may do, for one audience.

    On issue, the caller has already minimised ``pagm`` and ``habilitations`` to
    the audience's services. On verify, every field comes from the signed part.
    """

    subject: str
    siret: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    email: str | None = None
    pagm: tuple[str, ...] = ()
    habilitations: tuple[Habilitation, ...] = ()
    acr: str = ACR_PASSWORD
    auth_time: datetime | None = None
    session_index: str | None = None
    #: verify(): the token's own identifiers and times (issuer, audience, id, ...)
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def amr(self) -> list[str]:
        """``["pwd", "otp"]``, ``["pwd"]``, or ``[]`` when no person authenticated here
        (a machine, a partner's assertion)."""
        if self.acr == ACR_TOTP:
            return ["pwd", "otp"]
        return ["pwd"] if self.acr == ACR_PASSWORD else []
