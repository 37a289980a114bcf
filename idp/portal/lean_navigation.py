"""SSO navigation's lean path: ``POST /navigation/<code>`` answered in front of Flask when
it is the ordinary success, and only then (issue 18).

A navigation signs two RSA signatures (docs/profile.md, "Jeton SAML 2.0"); Flask's
request context, Werkzeug's form parsing and the ORM around them cost as much again.
This WSGI layer, inside the body limit and the proxy fix, answers the navigation with
the functions the Flask route (:func:`idp.portal.navigation.navigate`) calls, in the
same order:

1. The shape: ``POST /navigation/<code>``, no query string, a form body declared by
   ``Content-Length`` (at most :data:`MAX_BODY` bytes) holding one ``csrf_token`` and at
   most one ``partner``, nothing else.
2. The CSRF token against its cookie (:func:`idp.web.csrf.accepted`); the session the
   cookie names (:func:`idp.sessions.sso.find_session`), live and touched within the
   minute; the navigation rule (:func:`idp.portal.navigation.judge`: the partner from
   the process cache, the declarant and their rights in force read fresh, never
   cached); the partner already a participant of the session; the page for the
   request's language already rendered ahead.
3. The token signed and audited by :func:`idp.portal.navigation.issue` (the group
   commit has committed its trace before it returns), in the page rendered ahead, with
   the headers the route's answer gets from :func:`idp.portal.navigation.finish` and
   the app's after-request hooks (computed once through them, :meth:`headers`).

Anything else (no session, an expired or idle one, one to touch, a CSRF failure, an
inactive declarant, a right withdrawn, an unknown or ambiguous service, a first visit to
a partner, a page not rendered yet, any other error before the token left) goes, body
restored, to the Flask route, which answers it as before: nothing is refused here, and no
rule or error message is written twice. A store that does not answer is answered here by
the app's own error handler (503 and what to do, :func:`idp.web.errors.answered_by_the_app`),
so that the request does not wait for the store a second time in the route.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Connection, bindparam
from werkzeug.datastructures import MultiDict
from werkzeug.http import parse_cookie

from idp.i18n import locale_of
from idp.portal import navigation
from idp.sessions import sso as sessions
from idp.sessions.store import SsoRecord, reader
from idp.stores.db import database
from idp.stores.models import SsoSession
from idp.tokens import holder
from idp.web import csrf
from idp.web.body_limit import small_form
from idp.web.errors import STORE_UNAVAILABLE, answered_by_the_app
from rcd_store.models import Declarant

PREFIX = "/navigation/"
#: a navigation's form (a CSRF token and a partner's name) fits well within this
MAX_BODY = 1024
ACCEPTED = frozenset({csrf.FIELD, "partner"})
#: the service codes this path answers (others, and any odd path, go to Flask)
CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
StartResponse = Callable[..., Any]
log = logging.getLogger(__name__)


def form_of(environ: dict[str, Any]) -> MultiDict[str, str] | None:
    """The request's form when it has the shape this path answers (module docstring,
    1); ``None`` otherwise. The body read is put back in ``environ`` either way."""
    return small_form(environ, MAX_BODY, fields=ACCEPTED, required=csrf.FIELD)


class LeanNavigation:
    """The WSGI layer: an ordinary navigation answered here, anything else to Flask."""

    def __init__(self, app: Flask, wrapped: Any) -> None:
        self._app = app
        self._wrapped = wrapped
        self._headers: list[tuple[str, str]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        code = path[len(PREFIX) :]
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or not path.startswith(PREFIX)
            or environ.get("QUERY_STRING")
            or not CODE.fullmatch(code)
        ):
            return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
        form = form_of(environ)
        try:
            page = None if form is None else self._page(environ, code, form)
        except STORE_UNAVAILABLE as error:
            # answered as the route answers a store down, without a second wait for it
            return answered_by_the_app(self._app, environ, start_response, error)
        if page is None:
            return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
        body = page.encode("utf-8")
        start_response("200 OK", [*self.headers(), ("Content-Length", str(len(body)))])
        return [body]

    def _page(self, environ: dict[str, Any], code: str, form: MultiDict[str, str]) -> str | None:
        """The auto-post page with a fresh token (module docstring, 2 and 3), or None
        for the Flask route to answer."""
        cookies = parse_cookie(environ.get("HTTP_COOKIE", ""))
        with self._app.app_context():
            locale = locale_of(None, cookies.get("lang"))  # the app's when no cookie says
            if not csrf.accepted(cookies.get(csrf.COOKIE, ""), form.get(csrf.FIELD, "")):
                return None
            try:
                # the reads, one statement, on a Core connection without a transaction
                # (PostgreSQL: no BEGIN, no ROLLBACK round trip), back to the pool
                # before the group commit writes
                with self._reading() as connection:
                    granted = self._granted(connection, cookies, code, form.get("partner"))
                parts = (
                    None if granted is None else navigation.rendered(granted.destination, locale)
                )
                if granted is None or parts is None:
                    return None
                issued = navigation.issue(granted)
            except STORE_UNAVAILABLE:
                raise
            except Exception:  # the route answers it (500), and logs it
                log.warning("navigation handed to the Flask route", exc_info=True)
                return None
        return navigation.fill(parts, navigation.form_field(issued)[1])

    def _reading(self) -> Connection:
        """A connection of the pool for the one statement that reads the session and the
        rule (:class:`SessionAndRule`): in autocommit on PostgreSQL, where a transaction
        costs a BEGIN and a ROLLBACK round trip around it (SQLite's driver opens none
        for a SELECT)."""
        connection = database(self._app).engine.connect()
        if connection.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    @staticmethod
    def _granted(
        connection: Connection, cookies: MultiDict[str, str], code: str, partner: str | None
    ) -> navigation.Granted | None:
        destination = navigation.destination_of(code, partner)
        if not isinstance(destination, navigation.Destination):
            return None
        read = SessionAndRule(connection, destination.service.id)
        row = sessions.find_session(read, cookies.get(sessions.COOKIE))
        now = datetime.now(UTC)
        if row is None or sessions.has_expired(row, now) or sessions.wants_touch(row, now):
            return None
        granted = navigation.verdict(row, destination, *read.rule(row))
        if not isinstance(granted, navigation.Granted) or granted.new_participant:
            return None
        return granted

    def headers(self) -> list[tuple[str, str]]:
        """The headers of the route's answer but its length: :func:`navigation.finish`
        and the app's after-request hooks applied to an HTML answer of the route, once."""
        if self._headers is None:
            with self._app.test_request_context(f"{PREFIX}X", method="POST"):
                answer = self._app.process_response(navigation.finish(self._app.make_response("")))
            self._headers = [(k, v) for k, v in answer.headers if k != "Content-Length"]
        return self._headers


_SESSION = [SsoSession.__table__.c[f.name] for f in fields(SsoRecord)]
#: the session row and the navigation's rule (one service) in one statement (issue 18)
_SESSION_RULE = holder.rule_statement(
    holder.ONE,
    *_SESSION,
    start=SsoSession,
    on=Declarant.id == SsoSession.declarant_id,
    where=SsoSession.id_hash == bindparam("id_hash"),
)


class SessionAndRule:
    """The session the cookie names and the rule on the service ``service_id``, read
    fresh (never cached): in one statement when the sessions live in the database
    (:data:`_SESSION_RULE`), else the session from Redis then the rule. A
    :class:`idp.sessions.store.SessionReader`, for :func:`idp.sessions.sso.find_session`."""

    def __init__(self, connection: Connection, service_id: int) -> None:
        self._connection = connection
        self._service = service_id
        self._rows: list[Any] | None = None
        self._redis = current_app.extensions.get("idp.redis")

    def get(self, id_hash: str) -> SsoRecord | None:
        if self._redis is not None:
            return reader(self._connection).get(id_hash)
        params = holder.rule_params(id_hash=id_hash, service=self._service)
        self._rows = list(self._connection.execute(_SESSION_RULE, params).all())
        if not self._rows:
            return None
        record = SsoRecord(*self._rows[0][: len(_SESSION)])
        record.amr, record.participants = list(record.amr or []), list(record.participants or [])
        return record

    def rule(self, row: SsoRecord) -> tuple[holder.Holder | None, list[holder.Held]]:
        """The declarant of ``row`` and their rights in force on the service."""
        if self._rows is None:  # the sessions in Redis: the rule alone
            params = holder.rule_params(declarant=row.declarant_id, service=self._service)
            return holder.rule_of(self._connection.execute(_RULE_ONE, params).all())
        return holder.rule_of(self._rows, skip=len(_SESSION))


#: the rule on one service, for sessions that do not live in the database
_RULE_ONE = holder.rule_statement(holder.ONE)


def init_app(app: Flask) -> LeanNavigation:
    """Put the lean path in front of Flask (call it before the body limit and the proxy
    fix wrap the app, so that both apply to it)."""
    layer = LeanNavigation(app, app.wsgi_app)
    app.wsgi_app = layer  # type: ignore[method-assign]
    return layer
