"""A partner's OAuth clients in the console: add one, edit its redirect URIs, widget
origins, grants and authentication method, give it a new secret (shown once), delete
it. Every change goes through :mod:`partners.services` (validated and audited)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import abort, render_template
from flask.typing import ResponseReturnValue

from idp.console.common import address, back, bp, operator
from idp.console.forms import (
    CLIENT_FIELDS,
    Filled,
    client_form,
    client_values,
    edited,
    same_client,
)
from idp.console.partner_pages import partner_or_404
from idp.i18n import _
from idp.stores import db
from partners import services as registry
from partners.models import OAuthClient, Partner
from partners.services import GRANTS, TOKEN_AUTH
from rcd_store.errors import DirectoryError

SECRET_METHODS = ("client_secret_basic", "client_secret_post")


@contextmanager
def _answered() -> Iterator[None]:
    """A refusal of the registry as a 400 page with its reason; nothing is changed."""
    try:
        yield
    except DirectoryError as exc:
        db.session().rollback()
        abort(400, description=_("Opération refusée : {reason}.", reason=exc.message))


def _client_or_404(partner: Partner, client_pk: int) -> OAuthClient:
    found = db.session().get(OAuthClient, client_pk)
    if found is None or found.partner_id != partner.id:
        abort(404)
    return found


def _page(
    partner: Partner, client: OAuthClient | None, filled: Filled, status: int
) -> tuple[str, int]:
    return render_template(
        "console/client.html",
        partner=partner,
        client=client,
        form=filled.values,
        errors=filled.errors,
        grants=GRANTS,
        methods=TOKEN_AUTH,
    ), status


def _secret_page(partner: Partner, client_id: str, secret: str | None) -> ResponseReturnValue:
    """The new secret, shown once (the page is never cached), or back to the partner."""
    if secret is None:
        return back("console.partner", "client", partner_id=partner.id)
    return render_template(
        "console/secret.html", partner=partner, client_id=client_id, secret=secret
    )


def _save(partner_id: int, client_pk: int | None) -> ResponseReturnValue:
    partner = partner_or_404(partner_id)
    client = None if client_pk is None else _client_or_404(partner, client_pk)
    name = partner.name
    settings, filled = client_form(client)
    session = db.session()
    if (
        client is None
        and settings is not None
        and registry.client_by_id(session, settings.client_id)
    ):
        filled.errors.add(
            _("Opération refusée : {reason}.", reason=_("cet identifiant de client existe déjà")),
            "client_id",
        )
        settings = None
    result = None
    if settings is not None:
        result = edited(
            name, registry.PartnerSettings(name=name, client=settings), filled, CLIENT_FIELDS
        )
    if result is None:
        status = int(filled.values.pop("status", 400))
        partner = partner_or_404(partner_id)
        return _page(
            partner,
            None if client_pk is None else _client_or_404(partner, client_pk),
            filled,
            status,
        )
    session.commit()
    return _secret_page(
        partner_or_404(partner_id), filled.values["client_id"], result.client_secret
    )


@bp.get("/partenaires/<int:partner_id>/clients/nouveau")
def client_add(partner_id: int) -> ResponseReturnValue:
    return _page(partner_or_404(partner_id), None, Filled(client_values(None)), 200)


@bp.post("/partenaires/<int:partner_id>/clients/nouveau")
def client_add_post(partner_id: int) -> ResponseReturnValue:
    return _save(partner_id, None)


@bp.get("/partenaires/<int:partner_id>/clients/<int:client_pk>")
def client(partner_id: int, client_pk: int) -> ResponseReturnValue:
    partner = partner_or_404(partner_id)
    found = _client_or_404(partner, client_pk)
    return _page(partner, found, Filled(client_values(found)), 200)


@bp.post("/partenaires/<int:partner_id>/clients/<int:client_pk>")
def client_post(partner_id: int, client_pk: int) -> ResponseReturnValue:
    return _save(partner_id, client_pk)


@bp.post("/partenaires/<int:partner_id>/clients/<int:client_pk>/secret")
def client_secret_post(partner_id: int, client_pk: int) -> ResponseReturnValue:
    """A new secret for a client authenticated by secret; the old one is refused from now."""
    partner = partner_or_404(partner_id)
    found = _client_or_404(partner, client_pk)
    if found.token_endpoint_auth_method not in SECRET_METHODS:
        abort(400, description=_("Ce client ne s'authentifie pas par secret."))
    session = db.session()
    settings = registry.PartnerSettings(
        name=partner.name, client=same_client(found, new_secret=True)
    )
    with _answered():
        result = registry.edit_partner(
            session, partner.name, settings, actor=operator().id, address=address()
        )
    session.commit()
    return _secret_page(partner_or_404(partner_id), found.client_id, result.client_secret)


@bp.post("/partenaires/<int:partner_id>/clients/<int:client_pk>/supprimer")
def client_delete_post(partner_id: int, client_pk: int) -> ResponseReturnValue:
    partner = partner_or_404(partner_id)
    found = _client_or_404(partner, client_pk)
    session = db.session()
    with _answered():
        registry.remove_client(
            session, partner.name, found.client_id, actor=operator().id, address=address()
        )
    session.commit()
    return back("console.partner", "client-supprime", partner_id=partner_id)
