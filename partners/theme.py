"""A partner's widget theme: its colours, logo and button wording, validated on write.

Stable API (the CLI and the operator console call it; keep the signatures):

- ``validate_theme(data: Mapping) -> dict``: the checked, normalised theme, or
  :class:`InvalidTheme` (a :class:`rcd_store.errors.DirectoryError`, HTTP 400, French
  message naming the field) and nothing to store. ``data`` may give any of:

  - ``"primary"``: the button's background, exactly ``#RRGGBB`` (stored lower case);
  - ``"text"``: the button's text, exactly ``#RRGGBB``; the pair (each missing colour
    taken from :data:`DEFAULT_THEME`) must reach the WCAG AA contrast of 4.5:1;
  - ``"logo_url"``: an absolute ``https`` URL of an image (``http`` only for
    ``localhost``/``127.0.0.1``, as the registry's other URLs), without credentials,
    fragment, spaces, quotes or brackets; no ``data:`` URL;
  - ``"label"``: ``{"fr": "...", "en": "..."}`` (either or both), the button's wording:
    plain text of 1 to :data:`MAX_LABEL` characters, no ``<`` or ``>``, no control or
    bidirectional formatting character (spaces are collapsed).

  Any other key, or another type, is refused. ``{}`` is valid: the default look.
  Each message starts with the field it refuses (stable, a form maps them to its fields):
  ``couleur principale``, ``couleur du texte``, ``contraste insuffisant``, ``URL du logo``,
  ``libellé (fr)``, ``libellé (en)``; ``libellés``, ``langue de libellé``, ``clé de thème``
  and ``thème`` for a malformed object.
- ``merge_theme(current, changes) -> dict``: ``current`` (a stored theme or None)
  changed by ``changes`` (same keys; ``""`` or None removes a value, ``label`` merges
  per locale), then validated as a whole.
- ``effective_theme(partner) -> dict``: what the widget applies for a partner (or None):
  :data:`DEFAULT_THEME` completed by its stored theme, validated again on read (a
  stored theme that no longer passes is ignored, never served).
- ``contrast_ratio(a, b) -> float``: the WCAG 2 contrast ratio of two ``#RRGGBB``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from partners.models import Partner
from rcd_store.errors import InvalidValue

log = logging.getLogger(__name__)

KEYS = ("primary", "text", "logo_url", "label")
LOCALES = ("fr", "en")
MAX_LABEL = 60
MAX_URL = 2000
MIN_CONTRAST = 4.5
#: the widget's own look (the colours of widget.js's style sheet); no logo, and the
#: translated "Se connecter avec Interops" as wording
DEFAULT_THEME: dict[str, Any] = {
    "primary": "#000091",
    "text": "#ffffff",
    "logo_url": None,
    "label": {},
}
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%]+")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}


class InvalidTheme(InvalidValue):
    """A theme refused before anything is written (the message names the field)."""


def _colour(value: object, what: str) -> str:
    if not isinstance(value, str) or not _COLOUR.fullmatch(value):
        raise InvalidTheme(f"couleur {what} invalide : {value!r} (format #RRGGBB attendu)")
    return value.lower()


def _luminance(colour: str) -> float:
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """The WCAG 2 contrast ratio (1 to 21) of two ``#RRGGBB`` colours."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _logo_url(value: object) -> str:
    shown = repr(value)[:120]
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL:
        raise InvalidTheme(f"URL du logo invalide : {shown} (URL https de 2000 caractères au plus)")
    if not _URL_CHARS.fullmatch(value):
        raise InvalidTheme(
            f"URL du logo invalide : {shown} (ni espace, ni guillemet, ni parenthèse, ni chevron)"
        )
    parts = urlsplit(value)
    local = parts.hostname in _LOCAL_HOSTS
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidTheme(f"URL du logo invalide : {shown} (URL https absolue attendue)")
    if parts.scheme == "http" and not local:
        raise InvalidTheme(f"URL du logo invalide : {shown} (https obligatoire)")
    if parts.fragment or "#" in value or parts.username or parts.password:
        raise InvalidTheme(f"URL du logo invalide : {shown} (ni fragment ni identifiants)")
    return value


def _label(value: object, locale: str) -> str:
    if not isinstance(value, str):
        raise InvalidTheme(f"libellé ({locale}) invalide : texte attendu")
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if not 0 < len(text) <= MAX_LABEL:
        raise InvalidTheme(f"libellé ({locale}) invalide : de 1 à {MAX_LABEL} caractères")
    if "<" in text or ">" in text:
        raise InvalidTheme(f"libellé ({locale}) invalide : texte simple, sans balise (< ou >)")
    if any(unicodedata.category(c) in _FORBIDDEN_CATEGORIES for c in text):
        raise InvalidTheme(
            f"libellé ({locale}) invalide : caractère de contrôle ou de mise en forme interdit"
        )
    return text


def _labels(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidTheme('libellés invalides : {"fr": "...", "en": "..."} attendu')
    unknown = [str(k) for k in value if k not in LOCALES]
    if unknown:
        raise InvalidTheme(f"langue de libellé inconnue : {unknown[0]!r} (fr ou en)")
    return {locale: _label(value[locale], locale) for locale in LOCALES if locale in value}


def validate_theme(data: Mapping[str, Any]) -> dict[str, Any]:
    """The checked, normalised theme (only the keys given), or :class:`InvalidTheme`."""
    if not isinstance(data, Mapping):
        raise InvalidTheme("thème invalide : objet JSON attendu")
    unknown = [str(k) for k in data if k not in KEYS]
    if unknown:
        raise InvalidTheme(f"clé de thème inconnue : {unknown[0]!r} ({', '.join(KEYS)})")
    theme: dict[str, Any] = {}
    for key in ("primary", "text"):
        if key in data:
            theme[key] = _colour(data[key], "principale" if key == "primary" else "du texte")
    if "logo_url" in data:
        theme["logo_url"] = _logo_url(data["logo_url"])
    if "label" in data:
        theme["label"] = _labels(data["label"])
    primary = theme.get("primary", DEFAULT_THEME["primary"])
    text = theme.get("text", DEFAULT_THEME["text"])
    ratio = contrast_ratio(primary, text)
    if ratio < MIN_CONTRAST:
        raise InvalidTheme(
            f"contraste insuffisant entre le texte {text} et le fond {primary} : "
            f"{ratio:.2f}:1 (au moins {MIN_CONTRAST}:1, WCAG AA)"
        )
    return theme


def merge_theme(current: Mapping[str, Any] | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` changed by ``changes`` ("" or None removes; labels merge per locale),
    validated as a whole."""
    merged: dict[str, Any] = {k: v for k, v in (current or {}).items() if k != "label"}
    labels: dict[str, Any] = dict((current or {}).get("label") or {})
    for key, value in changes.items():
        if key == "label" and isinstance(value, Mapping):
            labels.update(value)
        elif key == "label" and value in ("", None):
            labels.clear()
        else:
            merged[key] = value
    labels = {k: v for k, v in labels.items() if v not in ("", None)}
    merged = {k: v for k, v in merged.items() if v not in ("", None)}
    if labels:
        merged["label"] = labels
    return validate_theme(merged)


def effective_theme(partner: Partner | None) -> dict[str, Any]:
    """The theme the widget applies: the defaults completed by the partner's own."""
    stored = partner.theme if partner is not None else None
    try:
        own = validate_theme(stored) if stored else {}
    except InvalidTheme as exc:
        log.warning("thème du partenaire %s ignoré : %s", partner and partner.name, exc)
        own = {}
    return {**DEFAULT_THEME, **own, "label": dict(own.get("label") or {})}
