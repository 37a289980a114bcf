"""Response headers every page and API answer carries (OWASP secure headers).

- ``X-Content-Type-Options: nosniff``: a browser never runs a JSON or text answer as
  script or style (MIME confusion);
- ``Referrer-Policy: no-referrer``: addresses carrying secrets (reset links, codes,
  ``SAMLRequest``) never leak to another site through ``Referer``;
- HTML: ``base-uri 'none'; object-src 'none'`` (no ``<base>`` hijack, no plug-ins), and
  ``frame-ancestors 'none'`` with ``X-Frame-Options: DENY`` unless the page chose its
  own framing (SAML logout pages are framed by the portal itself): clickjacking. This
  is the one place framing is forbidden; pages only ever loosen it;
- ``Strict-Transport-Security`` when the service is served over https.

A blueprint's own headers, set before, are kept and completed, never replaced.
"""

from __future__ import annotations

from flask import Flask, Response, current_app

BASE_POLICY = "base-uri 'none'; object-src 'none'"
HSTS = "max-age=31536000; includeSubDomains"
#: what every answer carries, whatever its type
EVERY_ANSWER = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"))


def plain(https: bool) -> tuple[tuple[str, str], ...]:
    """The headers of a non-HTML answer, for the WSGI layers that answer in front of
    Flask (:mod:`idp.web.documents`, :mod:`idp.oidc.lean_token`): what :func:`secure`
    adds to it."""
    return (*EVERY_ANSWER, *((("Strict-Transport-Security", HSTS),) if https else ()))


def secure(response: Response) -> Response:
    """Add the headers above to ``response`` (an ``after_request`` hook)."""
    headers = response.headers
    for name, value in EVERY_ANSWER:
        headers.setdefault(name, value)
    if response.mimetype == "text/html":
        directives = [p.strip() for p in headers.get("Content-Security-Policy", "").split(";")]
        directives = [d for d in directives if d]
        if not any(d.startswith("base-uri") for d in directives):
            directives.insert(0, BASE_POLICY)
        if not any(d.startswith("frame-ancestors") for d in directives):
            directives.append("frame-ancestors 'none'")
        if "frame-ancestors 'none'" in directives:
            headers.setdefault("X-Frame-Options", "DENY")
        headers["Content-Security-Policy"] = "; ".join(directives)
    if str(current_app.config.get("BASE_URL", "")).startswith("https://"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    app.after_request(secure)
