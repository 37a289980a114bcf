"""Name normalisation for login matching: case, accents and spacing do not matter."""

from __future__ import annotations

import unicodedata

from rcd_store.errors import InvalidValue

_SEPARATORS = {" ", "-", "'", "\u2019", "\u00a0", "\t", "."}


def name_key(value: str) -> str:
    """The matching key of a name: DUPONT = Dupont, Élodie = ELODIE, Jean-Pierre = jean pierre."""
    decomposed = unicodedata.normalize("NFKD", value)
    kept = (
        c
        for c in decomposed
        if not unicodedata.combining(c) and c not in _SEPARATORS and not c.isspace()
    )
    return "".join(kept).casefold().replace("œ", "oe").replace("æ", "ae")


def clean_display_name(value: str) -> str:
    """A name as typed, trimmed and with inner spaces collapsed; an empty or overlong
    name is refused (:class:`~rcd_store.errors.InvalidValue`, a ``ValueError``)."""
    cleaned = " ".join(value.split())
    if not cleaned:
        raise InvalidValue("nom vide")
    if len(cleaned) > 100:
        raise InvalidValue("nom trop long (100 caractères au plus)")
    return cleaned
