"""A partner's SAML settings in the console: its service provider's metadata, uploaded
as an XML file or fetched from a URL (then fetched again on a schedule by
:mod:`idp.saml.metadata_refresh`), and the certificates the partner signs that document
with. Every check is :mod:`partners.saml_metadata`'s, through the registry's edit."""

from __future__ import annotations

from typing import Any

from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue

from idp.console.common import back, bp, field_text
from idp.console.forms import SAML_FIELDS, Filled, edited
from idp.console.partner_pages import partner_or_404
from idp.i18n import _
from idp.saml.metadata_refresh import policy
from idp.stores import db
from partners import saml_metadata
from partners import services as registry
from partners.models import Partner
from rcd_store.errors import DirectoryError

#: the largest metadata document accepted (the request body is bounded as well)
MAX_METADATA = 512 * 1024
MAX_PEM = 50_000


def _page(partner: Partner, filled: Filled, status: int = 200) -> ResponseReturnValue:
    return render_template(
        "console/saml.html", partner=partner, errors=filled.errors, form=filled.values
    ), status


def _current_pem(partner: Partner) -> str:
    return "".join(partner.saml.metadata_signing_pem or []) if partner.saml else ""


@bp.get("/partenaires/<int:partner_id>/saml")
def saml(partner_id: int) -> ResponseReturnValue:
    partner = partner_or_404(partner_id)
    url = partner.saml.metadata_url if partner.saml else None
    return _page(
        partner, Filled({"url_metadonnees": url or "", "certificat": _current_pem(partner)})
    )


def _uploaded(filled: Filled) -> bytes:
    upload = request.files.get("metadonnees")
    data = upload.read(MAX_METADATA + 1) if upload is not None else b""
    if len(data) > MAX_METADATA:
        filled.errors.add(_("Fichier trop volumineux : 512 Kio au plus."), "metadonnees")
    return data


def _fields(partner: Partner, filled: Filled) -> dict[str, Any] | None:
    """The registry's settings of the form: a file or a URL (fetched now), and the
    signing certificates when they changed; None, with the reasons, if refused."""
    url, pem = filled.values["url_metadonnees"], filled.values["certificat"]
    data = _uploaded(filled)
    if data and url:
        filled.errors.add(
            _("Choisissez un fichier ou une URL, pas les deux (videz le champ URL)."), "metadonnees"
        )
    fields: dict[str, Any] = {}
    where = "certificat"
    try:
        if " ".join(pem.split()) != " ".join(_current_pem(partner).split()):
            found = saml_metadata.signing_certificates(pem.encode()) if pem else []
            fields["metadata_signing_pem"] = found
        where = "metadonnees" if data else "url_metadonnees"
        if data:
            fields["saml_metadata"] = data
        elif url:
            refresh = policy(current_app.config)
            fields["saml_metadata"] = saml_metadata.fetch(url, refresh.fetch)
            fields["saml_metadata_url"] = url
            fields["metadata_refresh_seconds"] = refresh.refresh_seconds
    except DirectoryError as exc:
        filled.errors.add(_("Opération refusée : {reason}.", reason=exc.message), where)
    if not fields and not filled.errors:
        message = _("Choisissez le fichier XML des métadonnées ou donnez leur URL.")
        filled.errors.add(message, "metadonnees")
    return None if filled.errors else fields


@bp.post("/partenaires/<int:partner_id>/saml")
def saml_post(partner_id: int) -> ResponseReturnValue:
    partner = partner_or_404(partner_id)
    name = partner.name
    url = field_text("url_metadonnees")
    filled = Filled({"url_metadonnees": url, "certificat": field_text("certificat", limit=MAX_PEM)})
    fields = _fields(partner, filled)
    db.session().commit()  # no transaction held while the document was fetched
    result = None
    if fields is not None:
        settings = registry.PartnerSettings(name=name, **fields)
        prefixes = SAML_FIELDS if "saml_metadata_url" not in fields else _by_url()
        result = edited(name, settings, filled, prefixes)
    if result is None:
        status = int(filled.values.pop("status", 400))
        return _page(partner_or_404(partner_id), filled, status)
    db.session().commit()
    return back("console.partner", "saml", partner_id=partner_id)


def _by_url() -> dict[str, str]:
    """A fetched document's refusals are about the URL's field."""
    return {
        start: "url_metadonnees" if name == "metadonnees" else name
        for start, name in SAML_FIELDS.items()
    }
