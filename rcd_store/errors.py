"""The one error root of the directory: everything ``rcd_store`` raises to a caller is
a :class:`DirectoryError`. Each message is French and says what to do; each class
says how a web caller answers (``http_status``). Classes refusing a value keep
``ValueError`` as a base too, for callers written against it.
"""

from __future__ import annotations

from typing import ClassVar


class DirectoryError(Exception):
    """Base of every directory error; raised as such, bad input to a directory service:
    nothing was changed (HTTP 400)."""

    http_status: ClassVar[int] = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(DirectoryError, ValueError):
    """A value refused before anything is written (a name, a hashing setting)."""


class NotFound(DirectoryError):
    """An identifier that names nothing in the directory."""

    http_status = 404


class Duplicate(DirectoryError):
    """Something that already exists and must not be created twice."""

    http_status = 409
