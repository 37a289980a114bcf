"""Helpers for the JWT tests: the stored vector keys, a fixed clock, trust and caches."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from cryptography.hazmat.primitives import serialization

from keys.model import KeyState, KeyUse, SigningKey, thumbprint
from token_suite.jwt import trust_from_jwks
from token_suite.replay import InMemoryReplayCache
from token_suite.trust import Trust
from token_suite.vector import ACR_TOTP, Habilitation, IdentityVector

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "jwt"
NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
ISSUER = "https://idp.interops.example"
AUDIENCE = "urn:interops:partner:api"

VECTOR = IdentityVector(
    subject="D0000001",
    siret="73282932000074",
    family_name="Dupont",
    given_name="Élodie",
    email="elodie.dupont@example.fr",
    pagm=("PAGM_DSN_DECL", "PAGM_DSN_CONSULT"),
    habilitations=(Habilitation("DSN", "73282932000074", "DECLARANT"),),
    acr=ACR_TOTP,
    auth_time=NOW - timedelta(minutes=1),
)


def load_key(name: str, alg: str) -> SigningKey:
    """A key stored beside the vectors: es256, rs256, ps256 (trusted) or attacker_es256."""
    private_key: Any = serialization.load_pem_private_key(
        (VECTORS / f"{name}.pem").read_bytes(), None
    )
    return SigningKey(
        kid=thumbprint(private_key.public_key()),
        use=KeyUse.JWT,
        alg=alg,
        state=KeyState.ACTIVE,
        private_key=private_key,
        created_at=NOW,
    )


ES256 = load_key("es256", "ES256")
RS256 = load_key("rs256", "RS256")
PS256 = load_key("ps256", "PS256")
ATTACKER = load_key("attacker_es256", "ES256")
JWKS: dict[str, Any] = json.loads((VECTORS / "jwks.json").read_text("utf-8"))


def trust(issuer: str | None = ISSUER) -> Trust:
    return trust_from_jwks(JWKS, issuer=issuer)


def fresh_cache(now: datetime = NOW) -> InMemoryReplayCache:
    return InMemoryReplayCache(clock=lambda: now)


def make_vectors() -> ModuleType:
    """The generator module (tests/vectors/jwt/make_vectors.py)."""
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingCache:
    """A partner's own :class:`ReplayCache` (as Redis or SQL are): a dict of datetimes."""

    def __init__(self) -> None:
        self.expiry: dict[str, datetime] = {}

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        if token_id in self.expiry:
            return True
        self.expiry[token_id] = expires_at
        return False
