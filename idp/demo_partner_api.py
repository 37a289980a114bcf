"""Interops-A at the demo partner: its API, verified with ``token_suite`` alone.

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

from datetime import datetime
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from flask import Blueprint, Response, jsonify, request
from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from token_suite import _xmldsig, saml
from token_suite import jwt as interops_jwt
from token_suite.errors import (
    DroitsInsuffisants,
    InteropsError,
    InvalidSecurityToken,
    SecurityTokenUnavailable,
)
from token_suite.vector import IdentityVector

if TYPE_CHECKING:
    from idp.demo_partner import Operator, PartnerSite

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
API_NS = "urn:interops:demo:declarations"
#: Largest SOAP request read (the envelope and its one assertion).
MAX_SOAP_BYTES = 64 * 1024
#: Largest ``Authorization`` header value considered (a JWT is far smaller).
MAX_BEARER_BYTES = 16 * 1024
SOAP_FAULT_STATUS = 500


class BearerReuse:
    """A :class:`token_suite.replay.ReplayCache` that never refuses: bearer tokens.

    An access token is presented many times until it expires (RFC 6750); refusing
    a ``jti`` already seen would make it single-use. The validity window (check 3)
    bounds its reuse instead.
    """

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        return False


BEARER_REUSE = BearerReuse()


# ------------------------------------------------------------------ extraction


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or raise.

    No header, another scheme or an empty token is
    :class:`SecurityTokenUnavailable`; a header with extra parts or oversized is
    :class:`InvalidSecurityToken`. Tokens in the query string are not read (they
    leak into logs and Referer headers).
    """
    if not authorization:
        raise SecurityTokenUnavailable("no Authorization header")
    if len(authorization) > MAX_BEARER_BYTES:
        raise InvalidSecurityToken("Authorization header too large")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SecurityTokenUnavailable("no Bearer token")
    if len(token.split()) != 1:
        raise InvalidSecurityToken("malformed Bearer token")
    return token.strip()


def _one(parent: etree._Element, tag: str, what: str) -> etree._Element | None:
    found = parent.findall(tag)
    if len(found) > 1:
        raise InvalidSecurityToken(f"more than one {what}")
    return found[0] if found else None


def soap_assertion(body: bytes) -> bytes:
    """The single ``saml:Assertion`` of the envelope's ``wsse:Security`` header.

    Stops XXE and entity bombs (hardened parser, DOCTYPE refused), oversized
    envelopes, and ambiguity (two Security headers or two assertions, where the
    verifier and the application could read different ones): the Assertion is
    serialised alone and only what :func:`token_suite.saml.verify` returns is used.
    """
    if not body.strip():
        raise SecurityTokenUnavailable("empty SOAP request")
    if len(body) > MAX_SOAP_BYTES:
        raise InvalidSecurityToken(f"SOAP request larger than {MAX_SOAP_BYTES} bytes")
    envelope = _xmldsig.parse_xml(body)
    if envelope.tag != f"{{{SOAP_NS}}}Envelope":
        raise InvalidSecurityToken("not a SOAP 1.1 Envelope")
    header = _one(envelope, f"{{{SOAP_NS}}}Header", "SOAP Header")
    security = None if header is None else _one(header, f"{{{WSSE_NS}}}Security", "Security")
    assertion = None if security is None else _one(security, f"{{{SAML_NS}}}Assertion", "Assertion")
    if assertion is None:
        raise SecurityTokenUnavailable("no SAML assertion in wsse:Security")
    return bytes(etree.tostring(assertion))


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


def rest_error(error: InteropsError) -> Response:
    """JSON error with the profile's status and an RFC 6750 ``WWW-Authenticate``."""
    response = jsonify(error=error.oauth_error, code=error.code, error_description=error.reason)
    response.status_code = error.http_status
    response.headers["WWW-Authenticate"] = error.www_authenticate()
    response.headers["Cache-Control"] = "no-store"
    return response


def _envelope(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="{SOAP_NS}">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    )


def soap_response(body: str, status: int = 200) -> Response:
    return Response(
        _envelope(body),
        status=status,
        content_type="text/xml; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )


def soap_error(error: InteropsError) -> Response:
    """A SOAP 1.1 Fault carrying the profile's code (HTTP 500, SOAP 1.1 section 6.2)."""
    return soap_response(error.soap_fault(), SOAP_FAULT_STATUS)


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
        try:
            token = bearer_token(request.headers.get("Authorization"))
            discovery, trust = operator.oidc()
            vector = interops_jwt.verify(
                token,
                trust=trust,
                issuer=discovery["issuer"],
                audience=site.api_audience,
                typ="at+jwt",
                replay=BEARER_REUSE,
            )
            require_pagm(vector, site.api_pagm)
        except InteropsError as error:
            return rest_error(error)
        response = jsonify(declarations(vector, site.service))
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.post("/api/soap")
    def soap_endpoint() -> Response:
        """Interops-A: a signed assertion in wsse:Security, then the PAGM check."""
        try:
            if (request.content_length or 0) > MAX_SOAP_BYTES:
                raise InvalidSecurityToken(f"SOAP request larger than {MAX_SOAP_BYTES} bytes")
            assertion = soap_assertion(request.stream.read(MAX_SOAP_BYTES + 1))
            trust, _ = operator.saml()
            vector = saml.verify(
                assertion, trust=trust, audience=site.api_audience, replay=BEARER_REUSE
            )
            require_pagm(vector, site.api_pagm)
        except InteropsError as error:
            return soap_error(error)
        return soap_response(soap_declarations(declarations(vector, site.service)))

    return bp


__all__ = ["BEARER_REUSE", "api_blueprint", "bearer_token", "soap_assertion"]
