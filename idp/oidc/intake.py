"""What every request to Authlib's endpoints (authorization, token, introspection,
revocation) must satisfy before Authlib reads it, answered as the OAuth error
``invalid_request`` (400) instead of the exception Authlib would raise (a 500):

- *Transport*: Authlib refuses any request it does not see over https
  (``InsecureTransportError``, raised where the token and endpoint responses cannot
  catch it). Behind a TLS proxy that ``IDP_TRUSTED_PROXIES`` does not declare, the
  worker sees http: the answer says so, and the operator is warned in the log.
- *Quoted parameters*: Authlib writes ``redirect_uri`` and ``response_type`` into its
  error descriptions, which RFC 6749 (4.1.2.1, 5.2) restricts to printable ASCII
  without ``"`` and ``\\``; Authlib raises ``ValueError`` on any other character (a
  ``redirect_uri`` ending in ``%0A``). A value with such a character is no URI and no
  response type: refused here, before any lookup, never echoed.
"""

from __future__ import annotations

import logging

from authlib.common.security import is_secure_transport
from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import request

log = logging.getLogger(__name__)

#: the parameters Authlib quotes in its error descriptions
QUOTED_PARAMETERS = ("redirect_uri", "response_type")
INSECURE_TRANSPORT = (
    "Requete OAuth recue en http : joignez le service en https ; derriere un mandataire "
    "TLS, declarez-le avec IDP_TRUSTED_PROXIES."
)


def refusal() -> InvalidRequestError | None:
    """The ``invalid_request`` this request gets before Authlib reads it, or ``None``."""
    if not is_secure_transport(request.url):
        log.warning(
            "OAuth request over http (%s): serve https, or declare the TLS proxy in "
            "IDP_TRUSTED_PROXIES",
            request.path,
        )
        return InvalidRequestError(INSECURE_TRANSPORT)
    for name in QUOTED_PARAMETERS:
        if any(invalid_error_characters(value) for value in request.values.getlist(name)):
            return InvalidRequestError(f"Parametre {name} invalide : caractere interdit.")
    return None
