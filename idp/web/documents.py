"""Public documents served as prepared bytes: JWKS, discovery, SAML metadata.

Each document is built once per version (the signing keys it publishes, see
:func:`publish`) in an app context, then served by a WSGI layer in front of Flask: no
request context, no session, no cookie, no database on the way; a strong ``ETag`` (the
SHA-256 of the bytes), ``Cache-Control: public, max-age=300`` and ``304 Not Modified``
to a matching ``If-None-Match``. What is public is only ever what the builder returns,
and the builder runs under the same app as the routes it replaces (which stay, so that
``url_for`` and ``HEAD`` keep working).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from idp.web import security_headers
from idp.web.errors import STORE_UNAVAILABLE

EXTENSION = "idp.web.documents"
MAX_AGE = 300
CACHE_CONTROL = ("Cache-Control", f"public, max-age={MAX_AGE}")
#: what hands a request to the app's own route: nothing to publish yet, or a store down
FALL_BACK: tuple[type[Exception], ...] = (LookupError, *STORE_UNAVAILABLE)
NOT_MODIFIED = "304 Not Modified"

Builder = Callable[[], bytes]
Version = Callable[[], Hashable]
StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Prepared:
    """One built document: its bytes, its entity tag and every header of its answers."""

    version: Hashable
    body: bytes
    etag: str
    headers: tuple[tuple[str, str], ...]

    def matches(self, if_none_match: str) -> bool:
        """``If-None-Match`` names this entity (weak comparison, RFC 9110 13.1.2), or ``*``."""
        if if_none_match.strip() == "*":
            return True
        tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
        return self.etag in tags


@dataclass
class Document:
    """A path's builder and version, and what was last built from them."""

    mimetype: str
    build: Builder
    version: Version
    prepared: Prepared | None = None


def entity_tag(body: bytes) -> str:
    """A strong entity tag of ``body`` (the same bytes always get the same tag, in every
    worker: a client's cached copy stays valid across workers and restarts)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


class DocumentServer:
    """The WSGI layer: GET and HEAD of a published path answered from prepared bytes;
    anything else goes to the wrapped application untouched."""

    def __init__(self, app: Flask, wrapped: Any, documents: dict[str, Document]) -> None:
        self._app = app
        self._wrapped = wrapped
        self._lock = threading.Lock()
        self._https = str(app.config.get("BASE_URL", "")).startswith("https://")
        self.documents = documents

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        document = self.documents.get(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD")
        if document is None or method not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
        try:
            prepared = self.prepared(document)
        except FALL_BACK:
            # nothing to publish yet (no key), or a store down: the Flask route answers,
            # with its error handlers (503 and what to do)
            return self._wrapped(environ, start_response)  # type: ignore[no-any-return]
        if prepared.matches(environ.get("HTTP_IF_NONE_MATCH", "")):
            start_response(NOT_MODIFIED, [h for h in prepared.headers if h[0] != "Content-Length"])
            return [b""]
        start_response("200 OK", list(prepared.headers))
        return [b""] if method == "HEAD" else [prepared.body]

    def prepared(self, document: Document) -> Prepared:
        """The document as built for its current version (built now if it changed)."""
        version = document.version()
        found = document.prepared
        if found is not None and found.version == version:
            return found
        with self._lock, self._app.app_context():
            version = document.version()
            body = document.build()
        tag = entity_tag(body)
        headers = (
            ("Content-Type", document.mimetype),
            ("Content-Length", str(len(body))),
            ("ETag", tag),
            CACHE_CONTROL,
            *security_headers.plain(self._https),
        )
        document.prepared = Prepared(version, body, tag, headers)
        return document.prepared


def _documents(app: Flask) -> dict[str, Document]:
    found: dict[str, Document] = app.extensions.setdefault(EXTENSION, {})
    return found


def init_app(app: Flask) -> DocumentServer:
    """Put the document layer in front of ``app``'s WSGI stack (the outermost layer: the
    factory calls it last); documents are added by :func:`publish`, before or after."""
    server = DocumentServer(app, app.wsgi_app, _documents(app))
    app.wsgi_app = server  # type: ignore[method-assign]
    return server


def _constant() -> Hashable:
    return None


def publish(
    app: Flask, path: str, mimetype: str, build: Builder, version: Version = _constant
) -> None:
    """Serve ``path`` as the bytes ``build()`` returns (called in an app context), built
    again whenever ``version()`` changes (``version`` must be cheap: it runs on every
    request, before any cached answer, and must not touch the database on each call).
    ``build`` or ``version`` raising a ``LookupError`` (nothing to publish) or a store
    error hands the request to the app's own route."""
    _documents(app)[path] = Document(mimetype, build, version)
