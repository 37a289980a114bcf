"""Every request body bounded before it is read (``IDP_MAX_BODY_BYTES``, 1 MiB by default).

Stops a memory exhaustion: without a bound, a chunked body of hundreds of MB (no
``Content-Length``) is read in full by whatever parses it (a form, the token endpoint,
the machine login) and grows the worker by as much. Three layers, one limit:

- a declared ``Content-Length`` above the limit is refused (413) before the view runs,
  whether or not the view would read the body;
- a body without ``Content-Length`` (chunked) reaches the app through a stream that
  raises 413 as soon as more than the limit has been read, so at most the limit (plus
  one read step) is ever held in memory, whoever reads ``wsgi.input``;
- Flask's ``MAX_CONTENT_LENGTH`` and ``MAX_FORM_MEMORY_SIZE`` (werkzeug's
  ``max_content_length`` and ``max_form_memory_size``) apply the same bound to form
  parsing and ``request.get_data``.

The 413 is rendered by :mod:`idp.web.errors` (French, JSON for APIs, a page otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable
from io import BytesIO
from typing import IO, Any
from urllib.parse import parse_qsl

from flask import Flask, abort, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

ENVIRON_KEY = "idp.body_too_large"


class BoundedInput:
    """A read-only view of ``wsgi.input`` that raises 413 past ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._read = 0

    def _count(self, data: bytes) -> bytes:
        self._read += len(data)
        if self._read > self._limit:
            raise RequestEntityTooLarge()
        return data

    def read(self, size: int | None = -1) -> bytes:
        # never ask the server for more than one byte past the limit
        room = self._limit + 1 - self._read
        if size is None or size < 0 or size > room:
            size = room
        return self._count(self._stream.read(max(size, 0)))

    def readline(self, size: int | None = -1) -> bytes:
        room = self._limit + 1 - self._read
        if size is None or size < 0 or size > room:
            size = room
        return self._count(self._stream.readline(max(size, 0)))

    def __iter__(self) -> BoundedInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class BodyLimit:
    """WSGI middleware: marks an oversize declared body, bounds an undeclared one."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        declared = environ.get("CONTENT_LENGTH", "").strip()
        if declared:
            if not declared.isdigit() or int(declared) > self.limit:
                environ[ENVIRON_KEY] = True
        elif "wsgi.input" in environ:
            environ["wsgi.input"] = BoundedInput(environ["wsgi.input"], self.limit)
        return self.app(environ, start_response)  # type: ignore[no-any-return]


def _refuse_declared() -> None:
    if request.environ.get(ENVIRON_KEY):
        abort(413)


def init_app(app: Flask) -> None:
    """Apply ``MAX_BODY_BYTES`` to every request of ``app`` (before any view reads)."""
    limit = int(app.config["MAX_BODY_BYTES"])
    # one byte more for werkzeug: its own stream stops silently at exactly its limit (a
    # truncated form), so it must ask ours for the byte that proves the body too large
    app.config["MAX_CONTENT_LENGTH"] = limit + 1
    app.config["MAX_FORM_MEMORY_SIZE"] = min(limit, app.config["MAX_FORM_MEMORY_SIZE"] or limit)
    app.wsgi_app = BodyLimit(app.wsgi_app, limit)  # type: ignore[method-assign]
    app.before_request(_refuse_declared)


FORM = "application/x-www-form-urlencoded"


def small_form(
    environ: dict[str, Any], most: int, *, fields: frozenset[str], required: str
) -> MultiDict[str, str] | None:
    """For the WSGI layers that answer in front of Flask: the form of a url-encoded
    (ASCII) body declared by ``Content-Length`` and at most ``most`` bytes, when each of
    its fields is one of ``fields``, given once, ``required`` among them; ``None`` for any
    other body, which Flask then reads. The bytes read are put back in ``environ`` either
    way."""
    declared = environ.get("CONTENT_LENGTH", "")
    kind = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if kind != FORM or not declared.isdigit() or environ.get(ENVIRON_KEY):
        return None
    length = int(declared)
    if not 0 < length <= most:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = BytesIO(body)
    if len(body) != length:
        return None
    try:
        # strict: a field whose escapes are not UTF-8 is Werkzeug's to read, not ours
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    names = [name for name, _value in pairs]
    if len(set(names)) != len(names) or not set(names) <= fields or required not in names:
        return None
    return MultiDict(pairs)
