"""A partner's SAML settings in the console: its service provider's metadata, uploaded
as an XML file and checked by :mod:`partners.services` (entityID, assertion consumer
services, signing certificates)."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from idp.console.common import back, bp
from idp.console.forms import SAML_FIELDS, Filled, edited
from idp.console.partner_pages import partner_or_404
from idp.i18n import _
from idp.stores import db
from partners import services as registry
from partners.models import Partner

#: the largest metadata document accepted (the request body is bounded as well)
MAX_METADATA = 512 * 1024


def _page(partner: Partner, filled: Filled, status: int = 200) -> ResponseReturnValue:
    return render_template(
        "console/saml.html", partner=partner, errors=filled.errors, form=filled.values
    ), status


@bp.get("/partenaires/<int:partner_id>/saml")
def saml(partner_id: int) -> ResponseReturnValue:
    return _page(partner_or_404(partner_id), Filled())


def _uploaded(filled: Filled) -> bytes | None:
    upload = request.files.get("metadonnees")
    data = upload.read(MAX_METADATA + 1) if upload is not None else b""
    if not data:
        filled.errors.add(_("Choisissez le fichier XML des métadonnées."), "metadonnees")
        return None
    if len(data) > MAX_METADATA:
        filled.errors.add(_("Fichier trop volumineux : 512 Kio au plus."), "metadonnees")
        return None
    return data


@bp.post("/partenaires/<int:partner_id>/saml")
def saml_post(partner_id: int) -> ResponseReturnValue:
    partner = partner_or_404(partner_id)
    name = partner.name
    filled = Filled()
    metadata = _uploaded(filled)
    result = None
    if metadata is not None:
        settings = registry.PartnerSettings(name=name, saml_metadata=metadata)
        result = edited(name, settings, filled, SAML_FIELDS)
    if result is None:
        status = int(filled.values.pop("status", 400))
        return _page(partner_or_404(partner_id), filled, status)
    db.session().commit()
    return back("console.partner", "saml", partner_id=partner_id)
