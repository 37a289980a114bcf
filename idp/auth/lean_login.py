"""The login's lean path: ``POST /connexion`` answered in front of Flask when it is the
ordinary success, and only then (issue 18).

A login is one argon2id verification; Flask's request context, Werkzeug's form parsing,
the ORM session around the opening of the SSO session and three transactions (reserve,
settle, open) cost a quarter as much again. This WSGI layer, inside the body limit and
the proxy fix, answers the login with the functions the Flask route
(:func:`idp.auth.login.connexion_post`) calls, in the same order:

1. The shape: ``POST /connexion``, no query string, a form body declared by
   ``Content-Length`` (at most :data:`MAX_BODY` bytes), each field once and one of the
   login form's, the CSRF token among them.
2. The CSRF token against its cookie (:func:`idp.web.csrf.accepted`); whom the form names
   (:func:`idp.auth.login.identified`): exactly one active declarant, without a second
   factor. Nothing is reserved or counted until then.
3. The attempt, by :func:`idp.auth.login.authenticate` (reserved before the password is
   checked, under the lockout and the address limit). A success is settled
   (:meth:`idp.auth.throttle.Throttle.succeeded`), its SSO session opened
   (:func:`idp.sessions.sso.open_in`, ending the cookie's previous one) and audited
   (:func:`idp.auth.login.succeeded`) in ONE transaction when any of them lives in the
   database, on a Core connection (the audit event in this thread's own segment of the
   chain); with Redis holding the counters and the sessions, the event goes through the
   group commit. The cookie leaves only once that is committed, in the route's answer
   (:func:`idp.auth.login.logged_in`, the app's after-request hooks applied once:
   :meth:`LeanLogin.headers`).

Anything that does not pass 1 or 2 (a CSRF failure, an unknown or ambiguous identifier,
a second factor to ask, another field, a query string) goes, body restored, to the Flask
route, which answers it as before. An attempt made in 3 that failed (a wrong password, a
locked account or address) goes to the route too, which answers it from the attempt
handed over (:data:`idp.auth.login.HANDED_OVER`): the password is not checked twice nor
the failure counted twice, and nothing is refused or worded here. An error once the
attempt is under way is answered by the app's error handlers
(:func:`idp.web.errors.answered_by_the_app`: 503 and what to do for a store down).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from sqlalchemy import Connection
from werkzeug.datastructures import MultiDict
from werkzeug.http import parse_cookie
from werkzeug.urls import iri_to_uri

from idp.auth import login
from idp.auth.throttle import throttle
from idp.sessions import sso as sessions
from idp.sessions.store import in_database, store, writer
from idp.stores.db import database
from idp.stores.group_commit import Event, group_commit
from idp.web import csrf
from idp.web.body_limit import small_form
from idp.web.errors import answered_by_the_app
from idp.web.redirects import local_target
from rcd_store import audit
from token_suite.vector import ACR_PASSWORD

PATH = "/connexion"
#: the login form with a long password fits within this (a longer body is Flask's)
MAX_BODY = 4096
ACCEPTED = frozenset(
    {csrf.FIELD, "siret", "nom", "prenom", "courriel", "mot_de_passe", "next", "force"}
)
#: the session cookie's value in the answer computed once (:meth:`LeanLogin.headers`)
PLACEHOLDER = "idp-lean-login-cookie"
StartResponse = Callable[..., Any]


class LeanLogin:
    """The WSGI layer: an ordinary login answered here, anything else by the route."""

    def __init__(self, app: Flask, wrapped: Any) -> None:
        self._app = app
        self._wrapped = wrapped
        self._answer: tuple[list[tuple[str, str]], str] | None = None
        self._segments = threading.local()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or environ.get("PATH_INFO") != PATH
            or environ.get("QUERY_STRING")
        ):
            return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
        form = small_form(environ, MAX_BODY, fields=ACCEPTED, required=csrf.FIELD)
        if form is None:
            return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
        try:
            with self._app.app_context():
                opened = self._login(environ, form)
                headers, cookie = self.headers()
        except Exception as error:  # noqa: BLE001 - answered as the route answers it
            # never handed to the route: the attempt may be reserved, or its password checked
            return answered_by_the_app(self._app, environ, start_response, error)
        if opened is None:
            return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
        start_response(
            "303 SEE OTHER",
            [
                *headers,
                ("Location", iri_to_uri(local_target(form.get("next")))),
                ("Set-Cookie", cookie.replace(PLACEHOLDER, opened.cookie)),
            ],
        )
        return [b""]

    def _login(
        self, environ: dict[str, Any], form: MultiDict[str, str]
    ) -> sessions.OpenedSession | None:
        """The session an ordinary login opened (module docstring, 2 and 3), or None for
        the route to answer (a failed attempt handed over to it)."""
        cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
        if not csrf.accepted(cookies.get(csrf.COOKIE, ""), form.get(csrf.FIELD, "")):
            return None
        with database(self._app).sessions() as session:
            ident, password = login.identified(session, form)
            if len(ident.candidates) != 1 or ident.candidates[0].totp_secret:
                return None  # unknown, ambiguous, or a second factor follows: the route's
            where = login.client_address(environ)
            result = login.authenticate(session, ident, password, from_address=where)
        if result.declarant is None:
            environ[login.HANDED_OVER] = result
            return None
        account, address_reserved = result.account, result.address
        assert account is not None
        declarant_id = result.declarant.id

        def open_in(connection: Connection | None) -> sessions.OpenedSession:
            throttle().succeeded(account, address_reserved, within=connection)
            found = store() if connection is None else writer(connection)
            return sessions.open_in(
                found,
                declarant_id,
                acr=ACR_PASSWORD,
                amr=["pwd"],
                replaces=cookies.get(sessions.COOKIE),
            )

        event = login.succeeded(declarant_id, acr=ACR_PASSWORD, amr=["pwd"], method=ident.method)
        if not (throttle().in_database or in_database()):
            opened = open_in(None)  # Redis: settled and opened at once
            group_commit(self._app).write([event])
            return opened
        return self._in_one_transaction(open_in, event)

    def _in_one_transaction(
        self, write: Callable[[Connection], sessions.OpenedSession], event: Event
    ) -> sessions.OpenedSession:
        """``write`` and the audit ``event`` in one transaction: on a Core connection once
        this thread's segment is warm (:func:`rcd_store.audit.warm_segment`), else (its
        first event) in a session that reads or opens it."""
        base = database(self._app)
        segment = self._segment()
        warm = audit.warm_segment(base.engine, segment)
        if warm is None:
            with base.sessions() as session:
                opened = write(session.connection())
                audit.record_many(session, [event], segment=segment)
                session.commit()
            return opened
        with base.engine.begin() as connection:
            opened = write(connection)
            head = warm.append(connection, [event])
        warm.committed(head)
        return opened

    def _segment(self) -> str:
        """This thread's own segment of the audit chain (a new one after a fork)."""
        pid, segment = getattr(self._segments, "current", (None, ""))
        if pid != os.getpid():
            segment = uuid.uuid4().hex
            self._segments.current = (os.getpid(), segment)
        return str(segment)

    def headers(self) -> tuple[list[tuple[str, str]], str]:
        """The headers of the route's answer to a login but its ``Location``, and its
        session cookie with :data:`PLACEHOLDER` for a value: the answer of
        :func:`idp.auth.login.logged_in` through the app's after-request hooks, once."""
        if self._answer is None:
            with self._app.test_request_context(PATH, method="POST") as context:
                answer = self._app.process_response(login.logged_in("/", PLACEHOLDER))
                sent = answer.get_wsgi_headers(context.request.environ)
            cookies = [v for k, v in sent if k == "Set-Cookie"]
            kept = [(k, v) for k, v in sent if k not in ("Location", "Set-Cookie")]
            assert len(cookies) == 1 and PLACEHOLDER in cookies[0]
            self._answer = (kept, cookies[0])
        return self._answer


def init_app(app: Flask) -> LeanLogin:
    """Put the lean path in front of Flask (call it before the body limit and the proxy
    fix wrap the app, so that both apply to it)."""
    layer = LeanLogin(app, app.wsgi_app)
    app.wsgi_app = layer  # type: ignore[method-assign]
    return layer
