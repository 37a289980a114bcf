"""Who calls the API: an OAuth 2 access token of ours (``Authorization: Bearer``),
recorded, unrevoked, unexpired, aimed at this API (``aud`` = ``<issuer>/api``) and
carrying the scope the endpoint asks for.

401 (``WWW-Authenticate: Bearer``) without a valid token; 403 ``insufficient_scope``
when the scope is missing (stops a token granted for login, or for another API, from
reading or changing the directory)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request

from idp.api.problems import ApiProblem
from idp.oidc.clients import issuer
from idp.stores import db
from idp.tokens.own import live_access_token
from idp.web.credentials import presented
from partners.models import OAuthClient
from partners.services import client_by_id
from token_suite.errors import InteropsError

#: the administration API (a company's administrator through its own tool)
ADMIN_SCOPE = "rcd.admin"
#: the partners' read API of the directory (client credentials)
READ_SCOPE = "rcd.read"
MAX_TOKEN = 8192


@dataclass(frozen=True)
class Caller:
    """The token's subject (a declarant, or the client itself for client credentials),
    its client and its scopes."""

    subject: str
    client: OAuthClient
    scopes: frozenset[str]


def api_audience() -> str:
    """The audience of access tokens for this API."""
    return f"{issuer()}/api"


def _refused(error: str, detail: str) -> ApiProblem:
    return ApiProblem(401, detail, {"WWW-Authenticate": f'Bearer realm="api", error="{error}"'})


def caller(scope: str) -> Caller:
    """The verified caller of this request holding ``scope``, or an :class:`ApiProblem`."""
    token = presented(request.headers.get("Authorization"), "Bearer")
    if token is None:
        raise ApiProblem(
            401, "jeton d'accès absent (Authorization: Bearer)", {"WWW-Authenticate": "Bearer"}
        )
    if len(token) > MAX_TOKEN:
        raise _refused("invalid_token", "jeton d'accès invalide")
    session = db.session()
    try:
        vector, row = live_access_token(session, token)
    except InteropsError:
        raise _refused("invalid_token", "jeton d'accès invalide, expiré ou révoqué") from None
    client = client_by_id(session, row.client_id)
    if client is None or vector.claims.get("aud") != api_audience():
        raise _refused("invalid_token", "jeton destiné à une autre API")
    scopes = frozenset(str(vector.claims.get("scope", "")).split())
    if scope not in scopes:
        raise ApiProblem(
            403,
            f"portée « {scope} » requise",
            {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
    return Caller(vector.subject, client, scopes)
