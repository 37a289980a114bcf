import pytest

from rcd_store.identifiers import (
    InvalidIdentifier,
    is_valid_siret,
    luhn_ok,
    validate_siren,
    validate_siret,
)

VALID_SIRET = ["73282932000074", "35600000000048", "35600000010866", "35600000009075"]
INVALID_SIRET = [
    "35600000009090",
    "12345678912345",
    "7328293200007",
    "7328293200007A",
    "",
    "７３２８２９３２００００７４",
]


@pytest.mark.parametrize("siret", VALID_SIRET)
def test_valid_siret(siret: str) -> None:
    assert validate_siret(siret) == siret
    assert is_valid_siret(siret)


@pytest.mark.parametrize("siret", INVALID_SIRET)
def test_invalid_siret(siret: str) -> None:
    with pytest.raises(InvalidIdentifier):
        validate_siret(siret)
    assert not is_valid_siret(siret)


def test_siret_spaces_are_ignored() -> None:
    assert validate_siret("732 829 320 00074") == "73282932000074"


def test_la_poste_uses_digit_sum_not_luhn() -> None:
    # 35600000010866 fails Luhn but its digit sum is a multiple of 5
    assert not luhn_ok("35600000010866")
    assert is_valid_siret("35600000010866")
    # the head office passes Luhn, and the digit-sum rule does not apply to it
    assert luhn_ok("35600000000048")


def test_siren() -> None:
    assert validate_siren("732829320") == "732829320"
    for bad in ("123456789", "73282932", "73282932A"):
        with pytest.raises(InvalidIdentifier):
            validate_siren(bad)
