"""The token endpoint's lean path: a ``client_credentials`` request authenticated by
``client_secret_basic``, answered in front of Flask (issue 18).

Machine tokens are most of what a token endpoint serves, and Flask's request context,
Werkzeug's form parsing and Authlib's dispatch cost several times the signature the
request exists for. This WSGI layer, inside the body limit and the proxy fix (the address
and scheme are those Flask would see), answers the ordinary success, and only it:

1. The shape: ``POST /oauth/token``, no query string, a form body declared by
   ``Content-Length`` (at most :data:`MAX_BODY` bytes) holding ``grant_type=
   client_credentials`` and at most one ``scope`` and one ``resource``, nothing else.
2. Read-only checks, with the functions the Authlib path calls: https (Authlib's own
   :func:`is_secure_transport`), the address not held off
   (:func:`idp.oidc.limits.refuse_held_address`), the client from the process cache,
   ``client_secret_basic`` its method, ``client_credentials`` among its grants, its
   secret (:class:`idp.oidc.clients.Client`).
3. Then, as on the Authlib path: the client's budget is charged
   (:func:`idp.oidc.limits.charge_client`), the scope checked by the server, and the
   token made by :func:`idp.oidc.grants.machine_token`, the one rule of the grant, whose
   trace the group commit has committed before the answer leaves.

Anything that does not pass 1 or 2 (a wrong secret, an unknown client, another grant,
method or parameter, a held address, http, a malformed body) goes, body restored, to the
Flask route, which answers it with Authlib as before and counts the failure: nothing is
refused here that the route would not refuse, and no error is worded twice. Past 3's
charge, and a store that does not answer at any point, an error is rendered by the
route's own means in a request context (Authlib's JSON error, or the app's error
handlers: 503 when a store is down, after one wait for it, not two). The answer carries
the headers the route gives a token answer: ``no-store``, ``Pragma``, the security
headers of a non-HTML answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749 import OAuth2Error
from flask import Flask, Response
from werkzeug.datastructures import MultiDict

from idp.oidc import registry
from idp.oidc.clients import Client
from idp.oidc.grants import ClientCredentials, machine_token
from idp.oidc.limits import TooManyRequestsError, charge_client, refuse_held_address
from idp.oidc.server import save_token, server
from idp.web import security_headers
from idp.web.answers import no_store
from idp.web.body_limit import small_form
from idp.web.credentials import basic_credentials
from idp.web.errors import STORE_UNAVAILABLE, answered_by_the_app

PATH = "/oauth/token"
GRANT = ClientCredentials.GRANT_TYPE
METHOD = "client_secret_basic"
#: a client_credentials body with a scope and a resource fits well within this
MAX_BODY = 2048
ACCEPTED = frozenset({"grant_type", "scope", "resource"})
StartResponse = Callable[..., Any]


def form_of(environ: dict[str, Any]) -> MultiDict[str, str] | None:
    """The request's form when it has the shape this path answers (module docstring,
    1); ``None`` otherwise. The body read is put back in ``environ`` either way."""
    form = small_form(environ, MAX_BODY, fields=ACCEPTED, required="grant_type")
    return form if form is not None and form["grant_type"] == GRANT else None


def _address_of(environ: dict[str, Any]) -> str:
    """The request's scheme and host as a URL: what Authlib's transport check reads of
    ``request.url`` (werkzeug's full URL costs more and adds nothing to that check)."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{PATH}"


class LeanTokenEndpoint:
    """The WSGI layer: a plain machine token answered here, anything else to Flask."""

    def __init__(self, app: Flask, wrapped: Any) -> None:
        self._app = app
        self._wrapped = wrapped
        https = str(app.config.get("BASE_URL", "")).startswith("https://")
        self._headers = (
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
            *security_headers.plain(https),
        )

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("PATH_INFO") != PATH
            or environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
        ):
            return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
        form = form_of(environ)
        if form is None:
            return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
        with self._app.app_context():
            try:
                client = self._authenticated(environ)
            except STORE_UNAVAILABLE as error:
                # answered as the route answers a store that does not answer (503 and what
                # to do), without making the request wait for the store a second time
                return self._refused(environ, start_response, error)
            if client is None:
                return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
            try:
                body = self._token(client, form)
            except Exception as error:  # noqa: BLE001 - answered as the route answers it
                return self._refused(environ, start_response, error)
        payload = json.dumps(body).encode("utf-8")
        start_response("200 OK", [*self._headers, ("Content-Length", str(len(payload)))])
        return [payload]

    def _authenticated(self, environ: dict[str, Any]) -> Client | None:
        """The client, when every read-only check passes (module docstring, 2)."""
        credentials = basic_credentials(environ.get("HTTP_AUTHORIZATION"))
        if credentials is None or not is_secure_transport(_address_of(environ)):
            return None
        try:
            refuse_held_address(environ.get("REMOTE_ADDR") or "")
        except TooManyRequestsError:
            return None
        row = registry.client(credentials[0])
        client = Client(row) if row is not None else None
        if (
            client is None
            or METHOD not in ClientCredentials.TOKEN_ENDPOINT_AUTH_METHODS
            or not client.check_endpoint_auth_method(METHOD, "token")
            or not client.check_grant_type(GRANT)
            or not client.check_client_secret(credentials[1])
        ):
            return None
        return client

    def _token(self, client: Client, form: MultiDict[str, str]) -> dict[str, Any]:
        """What the Authlib path does once the client is authenticated (module
        docstring, 3)."""
        charge_client(client.get_client_id())
        scope = form.get("scope")
        server(self._app).validate_requested_scope(scope)
        body = machine_token(client.row, scope, form)
        save_token(body, None)
        return body

    def _refused(
        self, environ: dict[str, Any], start_response: StartResponse, error: Exception
    ) -> Iterable[bytes]:
        """``error`` answered as the route answers it: Authlib's JSON error with
        ``no-store``, or the app's error handler; the app's after-request hooks run."""
        if not isinstance(error, OAuth2Error):
            return answered_by_the_app(self._app, environ, start_response, error)
        with self._app.request_context(environ):
            answer = no_store(server(self._app).handle_error_response(None, error), pragma=True)
            response: Response = self._app.finalize_request(answer)
            return response(environ, start_response)


def init_app(app: Flask) -> LeanTokenEndpoint:
    """Put the lean path right in front of Flask (call it before the body limit and the
    proxy fix wrap the app, so that both apply to it)."""
    layer = LeanTokenEndpoint(app, app.wsgi_app)
    app.wsgi_app = layer  # type: ignore[method-assign]
    return layer
