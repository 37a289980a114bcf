"""Errors of the directory services; each message is French and says what to do."""

from __future__ import annotations


class DirectoryError(ValueError):
    """Bad input to a directory service: nothing was changed."""


class NotFound(DirectoryError):
    """An identifier that names nothing in the directory."""


class Duplicate(DirectoryError):
    """Something that already exists and must not be created twice."""
