"""Shared keys for the keys tests, generated once (RSA generation is slow)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keys.crypto import MasterKey
from keys.generate import generate_key
from keys.model import KeyState, KeyUse, SigningKey

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def saml_key() -> SigningKey:
    """An RSA 2048 SAML key with its self-signed certificate (active)."""
    return generate_key(KeyUse.SAML, now=NOW, state=KeyState.ACTIVE)


@pytest.fixture(scope="session")
def es_key() -> SigningKey:
    return generate_key(KeyUse.JWT, now=NOW)


@pytest.fixture(scope="session")
def rs_key() -> SigningKey:
    return generate_key(KeyUse.JWT, now=NOW, alg="RS256")


@pytest.fixture(scope="session")
def master_key() -> MasterKey:
    return MasterKey.generate()
