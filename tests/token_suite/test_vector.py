"""token_suite.vector: habilitations in both spellings, amr, the identity vector."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from token_suite.vector import (
    ACR_LEVELS,
    ACR_PASSWORD,
    ACR_TOTP,
    NO_SUBJECT,
    Habilitation,
    IdentityVector,
)


def test_habilitation_spellings_round_trip() -> None:
    habilitation = Habilitation("DSN", "73282932000074", "DECLARANT")
    assert habilitation.as_saml() == "DSN/73282932000074/DECLARANT"
    assert habilitation.as_claim() == {
        "service": "DSN",
        "siret": "73282932000074",
        "role": "DECLARANT",
    }
    assert Habilitation.from_saml(habilitation.as_saml()) == habilitation
    assert Habilitation.from_claim(habilitation.as_claim()) == habilitation
    assert Habilitation("DSN", "1").role == "DECLARANT"
    assert min(Habilitation("B", "1"), Habilitation("A", "2")).service == "A"


@pytest.mark.parametrize("value", ["DSN/1", "DSN/1/R/X", "DSN//R", "/1/R", "DSN/1/", ""])
def test_slash_spelling_refuses_other_shapes(value: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        Habilitation.from_saml(value)


@pytest.mark.parametrize(
    "value",
    [
        ["DSN", "1", "R"],
        "DSN/1/R",
        None,
        {"service": "DSN", "siret": "1"},
        {"service": "DSN", "siret": "1", "role": ""},
        {"service": "DSN", "siret": 1, "role": "R"},
    ],
)
def test_from_claim_refuses_malformed(value: Any) -> None:
    with pytest.raises(ValueError, match="habilitation claim"):
        Habilitation.from_claim(value)


def test_amr_follows_acr() -> None:
    assert IdentityVector(subject="D1").amr == ["pwd"]
    assert IdentityVector(subject="D1", acr=ACR_PASSWORD).amr == ["pwd"]
    assert IdentityVector(subject="D1", acr=ACR_TOTP).amr == ["pwd", "otp"]
    assert IdentityVector(subject="client", acr="urn:interops:acr:machine").amr == []
    assert ACR_LEVELS.index(ACR_PASSWORD) < ACR_LEVELS.index(ACR_TOTP)


def test_identity_vector_defaults_and_immutability() -> None:
    vector = IdentityVector(subject=NO_SUBJECT)
    assert vector.subject == "NON_RENSEIGNE"
    assert vector.pagm == () and vector.habilitations == () and vector.claims == {}
    assert vector.acr == ACR_PASSWORD and vector.auth_time is None
    with pytest.raises(FrozenInstanceError):
        vector.subject = "x"  # type: ignore[misc]
    assert IdentityVector(subject="a").claims is not IdentityVector(subject="a").claims
