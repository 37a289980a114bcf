"""The boundary of every public ``verify`` (private module).

Partners call ``saml.verify`` and ``jwt.verify`` on whatever the network sends and,
as docs/partners.md tells them, catch :class:`~token_suite.errors.InteropsError`.
Every refusal the verifiers know is one of those; any other exception is a defect
of the verifier. :func:`unexpected` turns it into
:class:`~token_suite.errors.InvalidSecurity` (``wsse:InvalidSecurity``), so that a
future bug refuses the token instead of escaping as a server error, and logs it
with the SHA-256 of the input and where it was raised (file, line, function), never
the input nor the exception's message (which may quote the input).

This is the documented boundary where a broad ``except Exception`` belongs (the
developers' guide): each ``verify`` has ``except InteropsError: raise`` then
``except Exception as exc: raise unexpected(exc, what, data) from None``.
"""

from __future__ import annotations

import hashlib
import logging
import traceback

from token_suite.errors import InvalidSecurity

__all__ = ["LOGGER", "input_digest", "unexpected"]

LOGGER = logging.getLogger("token_suite")


def input_digest(data: str | bytes) -> str:
    """SHA-256 (hex) of the input as received (``str`` as UTF-8, lone surrogates kept)."""
    raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(raw).hexdigest()


def unexpected(error: BaseException, what: str, data: object) -> InvalidSecurity:
    """The :class:`InvalidSecurity` to raise (``from None``) for ``error``, once logged.

    Logged at ERROR on the ``token_suite`` logger: ``what`` (the function), the
    exception's type, the input's SHA-256 and where it was raised (file, line, function).
    The input and the exception's message are left out: they may carry the token.
    """
    digest = input_digest(data) if isinstance(data, str | bytes) else "not-text"
    where = "".join(
        f"  {frame.f_code.co_filename}:{line} in {frame.f_code.co_name}\n"
        for frame, line in traceback.walk_tb(error.__traceback__)
    )
    LOGGER.error(
        "%s: unexpected %s on input sha256=%s; refused as wsse:InvalidSecurity\n%s",
        what,
        type(error).__name__,
        digest,
        where,
    )
    return InvalidSecurity(f"{what} failed unexpectedly (input sha256={digest})")
