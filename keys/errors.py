"""The one error root of ``keys``: a caller catches :class:`KeysError` and knows why.

Each class keeps the built-in base its callers already catch (``ValueError`` for bad
input, ``LookupError``/``KeyError`` for a missing key), so both ways of catching work.
"""

from __future__ import annotations


class KeysError(Exception):
    """Base of every error ``keys`` raises to a caller; ``message`` says why (never a
    secret: no key material, no passphrase, no master key)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidKey(KeysError, ValueError):
    """A key, algorithm or master key that cannot be used as given (refused, nothing
    stored): wrong size or type, an algorithm foreign to the key or its use, a ``kid``
    that is not the key's thumbprint, a certificate for another key."""


class UnknownKey(KeysError, KeyError):
    """No stored key has this ``kid`` (``message`` is the kid)."""
