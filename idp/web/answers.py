"""The one ``no_store`` for every answer that must not be kept by a browser or a proxy:
pages that show or take a secret, tokens, JSON about a person, health and errors."""

from __future__ import annotations

from typing import TypeVar

from werkzeug.wrappers import Response

R = TypeVar("R", bound=Response)


def no_store(response: R, *, pragma: bool = False, frame_ancestors: str | None = None) -> R:
    """Mark ``response`` as never stored (``Cache-Control: no-store``; a stolen disk
    cache or a shared proxy gives away no token, code or page of a declarant).

    ``pragma``: also ``Pragma: no-cache`` for HTTP/1.0 caches (RFC 6749 5.1 asks it of
    token answers). ``frame_ancestors``: the page's own ``Content-Security-Policy``
    (``'none'``: never framed), for pages that replace the site-wide one."""
    response.headers["Cache-Control"] = "no-store"
    if pragma:
        response.headers["Pragma"] = "no-cache"
    if frame_ancestors is not None:
        # base-uri and object-src come from idp.web.security_headers, as on every page
        response.headers["Content-Security-Policy"] = f"frame-ancestors {frame_ancestors}"
    return response
