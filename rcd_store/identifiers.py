"""SIREN and SIRET validation (Luhn, with La Poste's exception).

docs/profile.md, "Identifiants": a SIREN is 9 digits and a SIRET 14 digits,
both with a valid Luhn checksum; La Poste's establishments (SIREN 356000000)
instead need a digit sum that is a multiple of 5, except the head office
35600000000048 which passes Luhn.
"""

from __future__ import annotations

from rcd_store.errors import DirectoryError

LA_POSTE_SIREN = "356000000"
LA_POSTE_HEAD_OFFICE = "35600000000048"


class InvalidIdentifier(DirectoryError, ValueError):
    """A SIREN or SIRET that is malformed or fails its checksum."""


def luhn_ok(digits: str) -> bool:
    """True when the decimal string passes the Luhn checksum."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _clean(value: str) -> str:
    return "".join(value.split()) if isinstance(value, str) else ""


def validate_siren(value: str) -> str:
    """Return the SIREN without spaces, or raise :class:`InvalidIdentifier`."""
    siren = _clean(value)
    if len(siren) != 9 or not siren.isascii() or not siren.isdigit():
        raise InvalidIdentifier(f"SIREN invalide : {value!r} (9 chiffres attendus)")
    if not luhn_ok(siren):
        raise InvalidIdentifier(f"SIREN invalide : {value!r} (clé de contrôle incorrecte)")
    return siren


def validate_siret(value: str) -> str:
    """Return the SIRET without spaces, or raise :class:`InvalidIdentifier`."""
    siret = _clean(value)
    if len(siret) != 14 or not siret.isascii() or not siret.isdigit():
        raise InvalidIdentifier(f"SIRET invalide : {value!r} (14 chiffres attendus)")
    if siret.startswith(LA_POSTE_SIREN) and siret != LA_POSTE_HEAD_OFFICE:
        valid = sum(int(c) for c in siret) % 5 == 0
    else:
        valid = luhn_ok(siret)
    if not valid:
        raise InvalidIdentifier(f"SIRET invalide : {value!r} (clé de contrôle incorrecte)")
    return siret


def is_valid_siret(value: str) -> bool:
    try:
        validate_siret(value)
    except InvalidIdentifier:
        return False
    return True
