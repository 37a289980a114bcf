"""The one reader of the ``Authorization`` header: a scheme's credentials (``Bearer``,
``DSNLogin``) and HTTP Basic as OAuth clients send it (RFC 6749 2.3.1)."""

from __future__ import annotations

from base64 import b64decode
from binascii import Error as Base64Error
from urllib.parse import unquote_plus


def presented(authorization: str | None, scheme: str) -> str | None:
    """What follows ``scheme`` (compared without case) in an ``Authorization`` header,
    stripped; None when the header is absent, of another scheme, or empty."""
    name, _sp, value = (authorization or "").partition(" ")
    if name.lower() != scheme.lower() or not value.strip():
        return None
    return value.strip()


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """The user id and password of ``Authorization: Basic``, form-urlencoded before
    base64 as RFC 6749 2.3.1 wants (``+`` is a space, ``%XX`` an octet of UTF-8); None
    when absent or malformed (not strict base64, not UTF-8, no colon)."""
    value = presented(authorization, "Basic")
    if value is None:
        return None
    try:
        decoded = b64decode(value, validate=True).decode("utf-8")
    except (Base64Error, UnicodeDecodeError):
        return None
    raw_id, colon, raw_secret = decoded.partition(":")
    if not colon:
        return None
    return unquote_plus(raw_id), unquote_plus(raw_secret)
