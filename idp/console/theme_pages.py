"""A partner's widget theme in the console: its colours, logo and button wording in
French and English, checked by :mod:`partners.theme` (format, WCAG AA contrast, plain
text) through the registry's edit (audited); an empty field goes back to the default."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask.typing import ResponseReturnValue

from idp.console.common import back, bp, field_text
from idp.console.forms import Filled, edited
from idp.console.partner_pages import partner_or_404
from idp.stores import db
from partners.models import Partner
from partners.services import PartnerSettings
from partners.theme import DEFAULT_THEME

#: start of a theme refusal -> its field
THEME_FIELDS = {
    "couleur principale": "theme_fond",
    "couleur du texte": "theme_texte",
    "contraste insuffisant": "theme_texte",
    "URL du logo": "theme_logo",
    "libellé (fr)": "theme_fr",
    "libellé (en)": "theme_en",
}


def _values(theme: dict[str, Any] | None) -> dict[str, str]:
    own = theme or {}
    labels = own.get("label") or {}
    return {
        "theme_fond": own.get("primary", ""),
        "theme_texte": own.get("text", ""),
        "theme_logo": own.get("logo_url", ""),
        "theme_fr": labels.get("fr", ""),
        "theme_en": labels.get("en", ""),
    }


def _page(partner: Partner, filled: Filled, status: int = 200) -> ResponseReturnValue:
    return render_template(
        "console/theme.html",
        partner=partner,
        form=filled.values,
        errors=filled.errors,
        default=DEFAULT_THEME,
    ), status


@bp.get("/partenaires/<int:partner_id>/theme")
def theme(partner_id: int) -> ResponseReturnValue:
    partner = partner_or_404(partner_id)
    return _page(partner, Filled(_values(partner.theme)))


@bp.post("/partenaires/<int:partner_id>/theme")
def theme_post(partner_id: int) -> ResponseReturnValue:
    partner = partner_or_404(partner_id)
    name = partner.name
    values = {key: field_text(key) for key in _values(None)}
    filled = Filled(dict(values))
    changes = {
        "primary": values["theme_fond"],
        "text": values["theme_texte"],
        "logo_url": values["theme_logo"],
        "label": {"fr": values["theme_fr"], "en": values["theme_en"]},
    }
    if edited(name, PartnerSettings(name=name, theme=changes), filled, THEME_FIELDS) is None:
        status = int(filled.values.pop("status", 400))
        return _page(partner_or_404(partner_id), filled, status)
    db.session().commit()
    return back("console.partner", "theme", partner_id=partner_id)
