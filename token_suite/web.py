"""Framework helpers for partner back ends: a request's token in, the verified vector or
the profile's error answer out.

:func:`authenticate` is framework-agnostic (WSGI, ASGI or anything else): give it the
``Authorization`` header, a posted ``SAMLResponse`` form field or a SOAP request body,
and it returns the :class:`~token_suite.vector.IdentityVector` the token signs, or an
:class:`Answer` to send back as it is: JSON with the profile's status and an RFC 6750
``WWW-Authenticate`` header for REST, a SOAP 1.1 Fault for SOAP.
:func:`flask_bearer_required` wraps a Flask view with it. Neither imports a web
framework: the Flask helper finds Flask among the modules already loaded (it only
ever runs inside a Flask view), so ``token_suite`` stays free of framework imports.

Replay (check 8): an access token or an Interops-A assertion is a *bearer*
credential, presented on every call for its whole short lifetime, so the REST and
SOAP paths do not refuse a ``jti`` / assertion ``ID`` already seen by default
(:data:`BEARER_REUSE`); reuse is bounded by ``exp`` / ``NotOnOrAfter``. A posted
navigation jeton is single-use: that path keeps the replay cache.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from token_suite import _xmldsig, jwt, saml
from token_suite.errors import InteropsError, InvalidSecurityToken, SecurityTokenUnavailable
from token_suite.trust import TrustAnchor
from token_suite.vector import IdentityVector

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
#: Largest SOAP request read (the envelope and its one assertion).
MAX_SOAP_BYTES = 64 * 1024
#: Largest ``Authorization`` header value considered (a JWT is far smaller).
MAX_BEARER_BYTES = 16 * 1024
#: SOAP 1.1 answers a Fault with HTTP 500 (SOAP 1.1 section 6.2).
SOAP_FAULT_STATUS = 500

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to send as it is: status, headers, body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class BearerReuse:
    """A :class:`~token_suite.replay.ReplayCache` that never refuses: bearer tokens
    are presented many times until they expire (RFC 6750); their validity window
    (check 3) bounds their reuse instead."""

    def seen(self, token_id: str, *, expires_at: datetime) -> bool:
        return False


BEARER_REUSE = BearerReuse()


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or raise.

    No header, another scheme or an empty token is :class:`SecurityTokenUnavailable`;
    a header with extra parts or oversized is :class:`InvalidSecurityToken`. Tokens in
    the query string are never read (they leak into logs and Referer headers).
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
    """The single ``saml:Assertion`` of a SOAP envelope's ``wsse:Security`` header.

    Stops XXE and entity bombs (hardened parser, DOCTYPE refused), oversized
    envelopes, and ambiguity (two Security headers or two assertions, where the
    verifier and the application could read different ones): the Assertion is
    serialised alone, and only what :func:`token_suite.saml.verify` returns is used.
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


def rest_error(error: InteropsError) -> Answer:
    """JSON ``{"error", "code", "error_description"}`` with the profile's status, an
    RFC 6750 ``WWW-Authenticate`` and ``Cache-Control: no-store``."""
    body = {"error": error.oauth_error, "code": error.code, "error_description": error.reason}
    headers = (
        ("Content-Type", "application/json"),
        ("WWW-Authenticate", error.www_authenticate()),
        ("Cache-Control", "no-store"),
    )
    return Answer(error.http_status, headers, json.dumps(body).encode("utf-8"))


def soap_envelope(body: str) -> bytes:
    """A SOAP 1.1 envelope around ``body`` (already serialised XML)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="{SOAP_NS}">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def soap_error(error: InteropsError) -> Answer:
    """A SOAP 1.1 Fault carrying the profile's code (HTTP 500)."""
    headers = (("Content-Type", "text/xml; charset=utf-8"), ("Cache-Control", "no-store"))
    return Answer(SOAP_FAULT_STATUS, headers, soap_envelope(error.soap_fault()))


def authenticate(
    *,
    trust: TrustAnchor,
    audience: str,
    authorization: str | None = None,
    saml_response: str | None = None,
    soap_body: bytes | None = None,
    **options: Any,
) -> IdentityVector | Answer:
    """The vector a request's token signs, or the error :class:`Answer` to send.

    Exactly one source is read: ``soap_body`` (a SOAP request, answered with a Fault),
    else ``saml_response`` (a posted jeton: single-use, replay refused), else the
    ``authorization`` header (a bearer Interops-R access token, ``typ`` ``at+jwt``
    unless ``typ=`` says otherwise). ``options`` go to ``verify`` (``issuer``,
    ``min_acr``, ``known_pagm``, ``replay``, ``now``, ``skew``...).
    """
    try:
        if soap_body is not None:
            assertion = soap_assertion(soap_body)
            options.setdefault("replay", BEARER_REUSE)
            return saml.verify(assertion, trust=trust, audience=audience, **options)
        if saml_response is not None:
            return saml.verify(saml_response, trust=trust, audience=audience, **options)
        token = bearer_token(authorization)
        options.setdefault("replay", BEARER_REUSE)
        options.setdefault("typ", "at+jwt")
        return jwt.verify(token, trust=trust, audience=audience, **options)
    except InteropsError as error:
        return soap_error(error) if soap_body is not None else rest_error(error)


def flask_bearer_required(
    *, trust: TrustAnchor, audience: str, **options: Any
) -> Callable[[View], View]:
    """A Flask view decorator: the request's bearer token verified (see
    :func:`authenticate`), the vector in ``flask.g.interops_vector``, or the error
    answer returned without calling the view."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            flask = sys.modules["flask"]  # loaded: this runs inside a Flask view
            result = authenticate(
                trust=trust,
                audience=audience,
                authorization=flask.request.headers.get("Authorization"),
                **options,
            )
            if isinstance(result, Answer):
                return flask.Response(
                    result.body, status=result.status, headers=list(result.headers)
                )
            flask.g.interops_vector = result
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
