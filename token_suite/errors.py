"""One error tree for every Interops verification failure.

Each class carries its Interops code, the HTTP status of the profile, the
OAuth 2 error it maps to, and renders itself as a SOAP 1.1 fault. Library
errors (lxml, xmlsec, PyJWT) are translated into these at the boundary.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from typing import ClassVar
from xml.sax.saxutils import escape


class InteropsError(Exception):
    """Base of every token error; ``code`` is the stable Interops code."""

    code: ClassVar[str] = "wsse:InvalidSecurityToken"
    http_status: ClassVar[int] = 400
    oauth_error: ClassVar[str] = "invalid_token"

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason or self.code)
        self.reason = reason or self.code

    def __str__(self) -> str:
        return f"{self.code}: {self.reason}"

    def soap_fault(self) -> str:
        """The SOAP 1.1 fault body for this error (Interops-A)."""
        prefix = self.code.split(":", 1)[0] if ":" in self.code else "vi"
        ns = _FAULT_NAMESPACES[prefix]
        return (
            '<soap:Fault xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns:{prefix}="{ns}">'
            f"<faultcode>{escape(self.code)}</faultcode>"
            f"<faultstring>{escape(self.reason)}</faultstring></soap:Fault>"
        )

    def www_authenticate(self) -> str:
        """A ``WWW-Authenticate: Bearer`` value (RFC 6750) naming the error."""
        reason = self.reason.replace("\\", "\\\\").replace('"', '\\"')
        return f'Bearer error="{self.oauth_error}", error_description="{self.code}: {reason}"'


_FAULT_NAMESPACES = {
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "vi": "urn:interops:vi",
}


class InvalidSecurityToken(InteropsError):
    """Check 1: not well-formed, DTD/entities, oversized, unknown structure."""

    code = "wsse:InvalidSecurityToken"
    http_status = 400
    oauth_error = "invalid_token"


class SecurityTokenUnavailable(InteropsError):
    """Check 1: no token at all."""

    code = "wsse:SecurityTokenUnavailable"
    http_status = 401
    oauth_error = "invalid_token"


class FailedCheck(InteropsError):
    """Check 2: signature missing, wrong algorithm, wrapping, untrusted key."""

    code = "wsse:FailedCheck"
    http_status = 401
    oauth_error = "invalid_token"


class InvalidVI(InteropsError):
    """Check 3: outside its validity window."""

    code = "vi:InvalidVI"
    http_status = 401
    oauth_error = "invalid_token"


class InvalidService(InteropsError):
    """Check 4: audience is not the verifier's service."""

    code = "vi:InvalidService"
    http_status = 401
    oauth_error = "invalid_token"


class InvalidIssuer(InteropsError):
    """Check 5: issuer is not a trusted operator."""

    code = "vi:InvalidIssuer"
    http_status = 401
    oauth_error = "invalid_token"


class InvalidAuthLevel(InteropsError):
    """Check 6: authentication context below the service's level."""

    code = "vi:InvalidAuthLevel"
    http_status = 401
    oauth_error = "insufficient_user_authentication"


class InvalidPagm(InteropsError):
    """Check 7: PAGM missing or unknown for the service."""

    code = "vi:InvalidPagm"
    http_status = 403
    oauth_error = "insufficient_scope"


class Replay(InteropsError):
    """Check 8: token ID already seen within its lifetime."""

    code = "vi:Replay"
    http_status = 401
    oauth_error = "invalid_token"


class TrustUnavailable(FailedCheck):
    """Check 2 cannot run: no valid key of the operator is known (its documents could not
    be fetched and nothing usable is cached). The token is refused; the partner answers
    503 (try again later), not a verdict on the token."""

    code = "wsse:FailedCheck"
    http_status = 503
    oauth_error = "temporarily_unavailable"


class InvalidSecurity(InteropsError):
    """Any other failure while processing the token: a defect of the verifier itself,
    never a verdict on the token. ``verify`` turns every unexpected exception into this
    one at its boundary (:func:`unexpected`: logged with the input's SHA-256, never the
    input), so that callers catching :class:`InteropsError` refuse the token instead of
    failing with a server error."""

    code = "wsse:InvalidSecurity"
    http_status = 401
    oauth_error = "invalid_token"


class DroitsInsuffisants(InteropsError):
    """Valid token whose PAGM does not allow the operation (application level)."""

    code = "DroitsInsuffisants"
    http_status = 403
    oauth_error = "insufficient_scope"


ALL_ERRORS: tuple[type[InteropsError], ...] = (
    InvalidSecurityToken,
    SecurityTokenUnavailable,
    FailedCheck,
    InvalidVI,
    InvalidService,
    InvalidIssuer,
    InvalidAuthLevel,
    InvalidPagm,
    Replay,
    InvalidSecurity,
    DroitsInsuffisants,
)

BY_CODE: dict[str, type[InteropsError]] = {cls.code: cls for cls in ALL_ERRORS}


# ------------------------------------------------------------- the verify boundary
# Partners call ``saml.verify`` and ``jwt.verify`` on whatever the network sends and catch
# InteropsError (docs/partners.md). Any other exception is a defect of the verifier:
# :func:`unexpected` turns it into InvalidSecurity, logged with the input's SHA-256 and
# where it was raised (file, line, function), never the input nor the exception's message
# (which may quote the input). The documented place for a broad ``except Exception``: each
# ``verify`` has ``except InteropsError: raise`` then
# ``except Exception as exc: raise unexpected(exc, what, data) from None``.

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
