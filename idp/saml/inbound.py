"""Inbound trust: a trusted partner portal posts a signed jeton for its own user.

``POST /confiance/entrante`` (form field ``SAMLResponse`` or ``jeton``, optional
``RelayState``; CSRF-exempt: the jeton's signature authenticates the post). The
trust anchor is chosen before any check from the token's issuer: only a partner
registered as a trusted portal, with SAML metadata, has one; its certificates
and entityID are the only ones accepted. The jeton must be for us (audience =
our SAML entity ID), fresh, and never seen before (shared replay cache). Its
NameID must be a declarant the portal may assert (:mod:`idp.auth.asserted`: active,
not locked, served by the portal); a session then opens at the level
:data:`idp.oidc.grants.ASSERTED_ACR` (``amr`` empty: the portal's claimed level is
kept in the audit event, never taken as ours), audited with the partner's name.
Anything else is refused with its Interops code, and no session opens. RelayState
is followed only to a local path (:mod:`idp.web.redirects`).
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta

from cryptography import x509
from flask import Blueprint, Flask, Response, current_app, redirect, request
from lxml import etree  # type: ignore[import-untyped,unused-ignore]
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.auth.asserted import NotAssertable, assertable
from idp.oidc.grants import ASSERTED_ACR
from idp.sessions import sso as sessions
from idp.stores import db
from idp.stores.replay import replay_cache
from idp.web import csrf
from idp.web.redirects import local_target
from partners.models import Partner, SamlServiceProvider
from rcd_store import audit
from rcd_store.models import Declarant
from token_suite import Trust
from token_suite import saml as interops_saml
from token_suite.errors import (
    InteropsError,
    InvalidIssuer,
    InvalidSecurityToken,
    InvalidVI,
    SecurityTokenUnavailable,
)
from token_suite.vector import IdentityVector

bp = Blueprint("inbound", __name__)


def init_app(app: Flask) -> None:
    """Inbound SAML responses come by POST from the partner IdPs (signed): no CSRF form token."""
    csrf.exempt(app, bp.name)


SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
MAX_SIZE = interops_saml.DEFAULT_MAX_SIZE


def _document(form_value: str) -> bytes:
    data = form_value.strip().encode("utf-8")
    if not data:
        raise SecurityTokenUnavailable("no jeton in the post")
    if len(data) > MAX_SIZE:
        raise InvalidSecurityToken("jeton too large")
    if data.startswith(b"<"):
        return data
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecurityToken("jeton is neither XML nor base64") from None


def claimed_issuer(document: bytes) -> str:
    """The issuer the jeton names, read only to choose the trust anchor (never trusted
    as such: :func:`token_suite.saml.verify` then checks it against that anchor).

    Parsed without DTD, entities or network (stops XXE and entity bombs here too)."""
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError:
        raise InvalidSecurityToken("malformed XML") from None
    if root.getroottree().docinfo.doctype:
        raise InvalidSecurityToken("a DOCTYPE is not allowed")
    issuer = root.find(f"{{{SAML_NS}}}Issuer")
    if issuer is None:
        issuer = root.find(f"{{{SAML_NS}}}Assertion/{{{SAML_NS}}}Issuer")
    if issuer is None or not (issuer.text or "").strip():
        raise InvalidIssuer("the jeton names no issuer")
    return str(issuer.text).strip()


def trusted_portal(session: Session, issuer: str) -> tuple[Partner, Trust]:
    """The trusted portal whose registered entityID is ``issuer``, and its trust anchor.

    Stops tokens from any other party, and from a registered partner that is not
    a trusted portal: an issuer without an anchor here fails at once."""
    partner = session.scalars(
        select(Partner)
        .join(SamlServiceProvider, SamlServiceProvider.partner_id == Partner.id)
        .where(SamlServiceProvider.entity_id == issuer, Partner.trusted_portal.is_(True))
    ).first()
    if partner is None or partner.saml is None or not partner.saml.certificates_pem:
        raise InvalidIssuer("issuer is not a trusted portal")
    certificates = tuple(
        x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in partner.saml.certificates_pem
    )
    return partner, Trust(issuer=partner.saml.entity_id, saml_certificates=certificates)


def _verified(session: Session, document: bytes) -> tuple[Partner, IdentityVector]:
    partner, trust = trusted_portal(session, claimed_issuer(document))
    vector = interops_saml.verify(
        document,
        trust=trust,
        audience=current_app.config["SAML_ENTITY_ID"],
        skew=timedelta(seconds=partner.clock_skew_seconds),
        replay=replay_cache(),
    )
    return partner, vector


def _declarant(session: Session, partner: Partner, vector: IdentityVector) -> Declarant:
    """The declarant the portal may assert (:func:`idp.auth.asserted.assertable`: active, not
    locked, served by the portal); ``InvalidVI`` otherwise."""
    try:
        return assertable(session, partner, vector.subject)
    except NotAssertable as refused:
        raise InvalidVI(refused.reason) from None


def _refused(session: Session, error: InteropsError) -> None:
    session.rollback()
    audit.record(
        session,
        "inbound.refused",
        target=request.remote_addr,
        data={"code": error.code, "reason": error.reason[:200]},
    )
    session.commit()


@bp.post("/confiance/entrante")
def receive() -> Response:
    """Open an SSO session for the declarant a trusted portal vouches for."""
    session = db.session()
    raw = request.form.get("SAMLResponse") or request.form.get("jeton") or ""
    try:
        partner, vector = _verified(session, _document(raw))
        declarant = _declarant(session, partner, vector)
    except InteropsError as error:
        _refused(session, error)
        raise
    opened = sessions.open_session(
        session,
        declarant.id,
        acr=ASSERTED_ACR,
        amr=[],
        origin=f"inbound:{partner.name}"[:40],
        replaces=request.cookies.get(sessions.COOKIE),
    )
    audit.record(
        session,
        "login.inbound",
        actor=declarant.id,
        target=partner.name,
        data={
            "token": str(vector.claims.get("id")),
            "asserted_acr": vector.acr,
            "sid": opened.row.sid,
        },
    )
    session.commit()
    response: Response = redirect(local_target(request.form.get("RelayState")))  # type: ignore[assignment]
    sessions.set_cookie(response, opened.cookie)
    return response
