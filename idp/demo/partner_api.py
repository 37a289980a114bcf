"""Interops-A at the demo partner: its API, verified with ``token_suite`` alone (its
framework helpers, :mod:`token_suite.web`, as a partner's own API would use them).

Two doors onto the same operation (the declarations the caller may see):

- REST, ``GET /api/declarations`` with ``Authorization: Bearer <Interops-R JWT>``:
  an RFC 9068 access token (``typ`` ``at+jwt``) verified by
  :func:`token_suite.jwt.verify` against the operator's JWKS (named by its
  discovery document), issuer = the discovery ``issuer``, audience = the partner's
  API identifier (:attr:`PartnerSite.api_audience`). Errors answer JSON
  ``{"error", "code", "error_description"}`` with the profile's HTTP status and a
  ``WWW-Authenticate: Bearer`` header (RFC 6750).
- SOAP 1.1, ``POST /api/soap``: a signed ``saml:Assertion`` in the
  ``wsse:Security`` header, the envelope parsed by the hardened parser (no DTD, no
  entities, no network, size bounded), the Assertion verified by
  :func:`token_suite.saml.verify` against the operator's SAML metadata, audience =
  the API identifier. Errors answer a SOAP Fault whose ``faultcode`` is the
  profile's code, with HTTP 500 as the SOAP 1.1 HTTP binding requires of faults.

Replay (check 8): an access token or an Interops-A assertion is a *bearer*
credential, presented on every call for its whole (short) lifetime, so the API
does **not** refuse a ``jti`` / assertion ``ID`` already seen; reuse is bounded by
``exp`` / ``NotOnOrAfter`` (at most 15 and 5 minutes). One-time tokens
(navigation jetons, ID tokens) keep replay refusal at the site's ``/saml/acs``
and ``/oidc/callback``.

A valid token whose PAGM holds none of :attr:`PartnerSite.api_pagm` is refused
with ``DroitsInsuffisants`` (403): the token is fine, the operation is not allowed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from flask import Blueprint, Response, jsonify, request

from token_suite import web
from token_suite.errors import DroitsInsuffisants, InteropsError, InvalidSecurityToken
from token_suite.vector import IdentityVector

if TYPE_CHECKING:
    from idp.demo.partner_site import Operator, PartnerSite

API_NS = "urn:interops:demo:declarations"


# ------------------------------------------------------------------- operation


def require_pagm(vector: IdentityVector, allowed: tuple[str, ...]) -> None:
    """Application check after a valid token: one of ``allowed`` PAGM, else
    :class:`DroitsInsuffisants` (stops a token valid for the service but for
    another profile, e.g. consultation only, from acting as a declarant)."""
    if not set(vector.pagm) & set(allowed):
        raise DroitsInsuffisants(f"PAGM {', '.join(allowed)} required")


def declarations(vector: IdentityVector, service: str) -> dict[str, Any]:
    """The demo answer: who called and a declaration per habilitated establishment."""
    sirets = sorted({h.siret for h in vector.habilitations if h.service == service})
    if not sirets and vector.siret:
        sirets = [vector.siret]
    return {
        "sub": vector.subject,
        "client_id": vector.claims.get("client_id"),
        "pagm": list(vector.pagm),
        "declarations": [{"siret": s, "periode": "2026-01", "statut": "acceptée"} for s in sirets],
    }


# --------------------------------------------------------------------- answers


def _flask(answer: web.Answer) -> Response:
    return Response(answer.body, status=answer.status, headers=list(answer.headers))


def soap_declarations(answer: dict[str, Any]) -> str:
    items = "".join(
        f"<d:declaration siret={quoteattr(d['siret'])} periode={quoteattr(d['periode'])} "
        f"statut={quoteattr(d['statut'])}/>"
        for d in answer["declarations"]
    )
    return f'<d:declarations xmlns:d="{API_NS}" sub={quoteattr(answer["sub"])}>{items}</d:declarations>'


# ------------------------------------------------------------------- blueprint


def api_blueprint(site: PartnerSite, operator: Operator) -> Blueprint:
    """The partner's API (REST and SOAP) for ``site``, trusting ``operator``."""
    bp = Blueprint("partner_api", __name__)

    @bp.get("/api/declarations")
    def rest_declarations() -> Response:
        """Interops-R: a bearer access token for this API, then the PAGM check."""
        discovery, trust = operator.oidc()
        result = web.authenticate(
            trust=trust,
            audience=site.api_audience,
            authorization=request.headers.get("Authorization"),
            issuer=discovery["issuer"],
        )
        if isinstance(result, web.Answer):
            return _flask(result)
        try:
            require_pagm(result, site.api_pagm)
        except InteropsError as error:
            return _flask(web.rest_error(error))
        response = jsonify(declarations(result, site.service))
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.post("/api/soap")
    def soap_endpoint() -> Response:
        """Interops-A: a signed assertion in wsse:Security, then the PAGM check."""
        if (request.content_length or 0) > web.MAX_SOAP_BYTES:
            too_large = InvalidSecurityToken(f"SOAP request larger than {web.MAX_SOAP_BYTES} bytes")
            return _flask(web.soap_error(too_large))
        trust, _ = operator.saml()
        result = web.authenticate(
            trust=trust,
            audience=site.api_audience,
            soap_body=request.stream.read(web.MAX_SOAP_BYTES + 1),
        )
        if isinstance(result, web.Answer):
            return _flask(result)
        try:
            require_pagm(result, site.api_pagm)
        except InteropsError as error:
            return _flask(web.soap_error(error))
        body = web.soap_envelope(soap_declarations(declarations(result, site.service)))
        headers = {"Content-Type": "text/xml; charset=utf-8", "Cache-Control": "no-store"}
        return Response(body, status=200, headers=headers)

    return bp


__all__ = ["api_blueprint"]
