"""What the SAML endpoints share: our clock, address, entityID and signing key; how a
message is received (HTTP-Redirect or HTTP-POST), its partner found by Issuer and its
signature checked with that partner's registered keys only; refusals as a page on
our origin; and the HTTP-POST binding's self-submitting form."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from flask import current_app, make_response, render_template, request
from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from idp.stores import db
from idp.tokens.signing import keyring
from idp.web.answers import no_store
from keys.model import KeyUse, SigningKey
from partners.models import SamlServiceProvider
from token_suite import bindings as b

#: Longest RelayState accepted (SAML Bindings: 80 bytes are required, we allow more).
MAX_RELAY_STATE = 1024
#: the pages of this package replace the site-wide CSP with their own ``frame-ancestors``
NEVER_FRAMED = "'none'"


def now() -> datetime:
    return datetime.now(UTC)


def base() -> str:
    return str(current_app.config["BASE_URL"]).rstrip("/")


def signer() -> SigningKey:
    return keyring().active(KeyUse.SAML)


def entity_id() -> str:
    return str(current_app.config["SAML_ENTITY_ID"])


def refused(exc: b.MessageError) -> tuple[str, int]:
    """Every refusal is a page on our origin: nothing is redirected or posted anywhere
    (the SSO and SLO blueprints' handler for :class:`token_suite.bindings.MessageError`)."""
    current_app.logger.info("SAML refusé : %s", exc)
    return render_template("saml_error.html", reason=exc.reason), 400


# ------------------------------------------------------------------ incoming


@dataclass(frozen=True)
class Incoming:
    """A SAML message as received, before any of it is trusted."""

    xml: bytes
    relay_state: str | None
    redirect: b.RedirectParameters | None


def incoming_message(kind: str) -> Incoming:
    if request.method == "GET":
        params = b.redirect_parameters(request.query_string, kind)
        incoming = Incoming(b.decode_redirect(params.message), params.relay_state, params)
    else:
        value = request.form.get(kind)
        if not value:
            raise b.MessageError(f"{kind} absent")
        incoming = Incoming(b.decode_post(value), request.form.get("RelayState"), None)
    if incoming.relay_state is not None and len(incoming.relay_state) > MAX_RELAY_STATE:
        raise b.MessageError("RelayState trop long")
    return incoming


def service_provider(session: Session, entity_id: str) -> SamlServiceProvider:
    sp = session.scalars(
        select(SamlServiceProvider).where(SamlServiceProvider.entity_id == entity_id)
    ).first()
    if sp is None:
        raise b.MessageError("émetteur inconnu : aucun partenaire SAML enregistré sous ce nom")
    return sp


def registered_certificates(sp: SamlServiceProvider) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in sp.certificates_pem]


def verified(
    incoming: Incoming, root: etree._Element, sp: SamlServiceProvider, *, required: bool
) -> etree._Element:
    """The message as signed by the partner's registered keys (never a key it carries).

    A present signature is always checked; an absent one is refused when
    ``required``. For HTTP-POST only the signed copy is returned (stops wrapping).
    """
    certificates = registered_certificates(sp)
    signed = (
        incoming.redirect.signature is not None
        if incoming.redirect is not None
        else b.has_xml_signature(root)
    )
    if not signed:
        if required and not certificates:
            raise b.MessageSignatureError(
                "message non signé : une signature est exigée et ce partenaire n'a "
                "enregistré aucun certificat de signature"
            )
        if required:
            raise b.MessageSignatureError(
                "message non signé : ce partenaire doit signer ses messages"
            )
        return root
    if not certificates:
        raise b.MessageError("message signé mais aucun certificat enregistré pour ce partenaire")
    if incoming.redirect is not None:
        b.verify_redirect_signature(incoming.redirect, certificates)
        return root
    copy = b.verified_xml(root, certificates)
    if b.issuer_of(copy) != b.issuer_of(root):
        raise b.MessageError("Issuer modifié")
    return copy


def has_certificates(sp: SamlServiceProvider) -> bool:
    return bool(sp.certificates_pem)


def receive(
    kind: str,
    tags: list[str],
    *,
    required: Callable[[SamlServiceProvider], bool] = has_certificates,
    lookup: Callable[[str], SamlServiceProvider] | None = None,
) -> tuple[Incoming, etree._Element, SamlServiceProvider]:
    """Parse, find the partner by Issuer (``lookup``, by default in the request's
    session), verify (a signature is ``required(sp)``: by default whenever the partner has
    registered certificates)."""
    incoming = incoming_message(kind)
    root = b.parse_message(incoming.xml, tags)
    issuer = b.issuer_of(root)
    sp = lookup(issuer) if lookup is not None else service_provider(db.session(), issuer)
    return incoming, verified(incoming, root, sp, required=required(sp)), sp


def post_page(action: str, field: str, value: str, relay_state: str | None) -> Response:
    """The HTTP-POST binding: a form that submits itself, with a visible button
    (works without JavaScript)."""
    nonce = secrets.token_urlsafe(16)
    html = render_template(
        "saml_post.html",
        action=action,
        field=field,
        value=value,
        relay_state=relay_state,
        nonce=nonce,
    )
    response = no_store(make_response(html), frame_ancestors=NEVER_FRAMED)
    response.headers["Content-Security-Policy"] += f"; script-src 'nonce-{nonce}'"
    return response
