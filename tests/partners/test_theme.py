"""A partner's widget theme is validated strictly on write and again on read: only known
keys, colours exactly #RRGGBB with an accessible contrast, an https logo, plain-text
labels in French and English (issue 17: "themed per partner")."""

from __future__ import annotations

from typing import Any

import pytest

from partners.models import Partner
from partners.theme import (
    DEFAULT_THEME,
    InvalidTheme,
    contrast_ratio,
    effective_theme,
    merge_theme,
    validate_theme,
)
from rcd_store.errors import DirectoryError

GOOD = {
    "primary": "#1E5B2A",
    "text": "#FFFFFF",
    "logo_url": "https://cdn.partenaire.example/logo.svg?v=2",
    "label": {"fr": "  Connexion   MSA ", "en": "Sign in with MSA"},
}


def test_a_good_theme_is_normalised() -> None:
    assert validate_theme(GOOD) == {
        "primary": "#1e5b2a",
        "text": "#ffffff",
        "logo_url": "https://cdn.partenaire.example/logo.svg?v=2",
        "label": {"fr": "Connexion MSA", "en": "Sign in with MSA"},
    }
    assert validate_theme({}) == {}
    assert validate_theme({"logo_url": "http://127.0.0.1:8200/logo.png"})["logo_url"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": "#000000"}, "clé de thème inconnue"),
        ({"primary": "red"}, "couleur principale invalide"),
        ({"primary": "#12345"}, "couleur principale invalide"),
        ({"primary": "#1234567"}, "couleur principale invalide"),
        ({"text": "#fff"}, "couleur du texte invalide"),
        ({"text": "#ffffff;background:url(x)"}, "couleur du texte invalide"),
        ({"primary": 0x000091}, "couleur principale invalide"),
        ({"logo_url": "http://cdn.example/logo.png"}, "https obligatoire"),
        ({"logo_url": "javascript:alert(1)"}, "URL du logo invalide"),
        ({"logo_url": "javascript:alert"}, "URL https absolue"),
        ({"logo_url": "ftp://x.example/a.png"}, "URL https absolue"),
        ({"logo_url": "data:image/png;base64,AAAA"}, "URL https absolue"),
        ({"logo_url": "https://x.example/a.png#f"}, "ni fragment"),
        ({"logo_url": "https://u:p@x.example/a.png"}, "ni fragment ni identifiants"),
        ({"logo_url": 'https://x.example/a".png'}, "ni guillemet"),
        ({"logo_url": "https://x.example/a).png"}, "ni guillemet"),
        ({"logo_url": "https://x.example/a b.png"}, "ni espace"),
        ({"logo_url": "https://x.example/" + "a" * 2000}, "2000 caractères"),
        ({"label": "Connexion"}, "libellés invalides"),
        ({"label": {"de": "Anmelden"}}, "langue de libellé inconnue"),
        ({"label": {"fr": ""}}, "de 1 à 60"),
        ({"label": {"fr": "x" * 61}}, "de 1 à 60"),
        ({"label": {"fr": 3}}, "texte attendu"),
        ({"label": {"fr": "<b>Connexion</b>"}}, "sans balise"),
        ({"label": {"en": "Sign in\u202e"}}, "caractère de contrôle"),
        ({"label": {"en": "Sign\x00in"}}, "caractère de contrôle"),
        ({"primary": "#777777", "text": "#ffffff"}, "contraste insuffisant"),
        ({"text": "#0000ff"}, "contraste insuffisant"),
    ],
)
def test_a_bad_theme_is_refused_with_a_clear_error(data: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTheme, match=message) as raised:
        validate_theme(data)
    assert isinstance(raised.value, DirectoryError)
    assert raised.value.http_status == 400


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(InvalidTheme, match="objet JSON attendu"):
        validate_theme(["#000000"])  # type: ignore[arg-type]


def test_contrast_ratio_follows_wcag() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio(DEFAULT_THEME["primary"], DEFAULT_THEME["text"]) >= 4.5


def test_merge_changes_removes_and_merges_labels() -> None:
    current = validate_theme(GOOD)
    merged = merge_theme(current, {"primary": "#000000", "label": {"en": ""}})
    assert merged["primary"] == "#000000"
    assert merged["label"] == {"fr": "Connexion MSA"}
    assert "logo_url" not in merge_theme(current, {"logo_url": ""})
    assert merge_theme(None, {"label": {"fr": "Entrer"}}) == {"label": {"fr": "Entrer"}}
    with pytest.raises(InvalidTheme, match="contraste"):
        merge_theme(current, {"text": "#1e5b2b"})


def test_effective_theme_completes_the_defaults_and_ignores_a_corrupt_one() -> None:
    assert effective_theme(None) == DEFAULT_THEME
    partner = Partner(name="MSA", theme={"primary": "#1e5b2a", "label": {"fr": "Entrer"}})
    assert effective_theme(partner) == {
        **DEFAULT_THEME,
        "primary": "#1e5b2a",
        "label": {"fr": "Entrer"},
    }
    partner.theme = {"primary": "#000000;}</style><script>", "label": {"fr": "<img>"}}
    assert effective_theme(partner) == DEFAULT_THEME
