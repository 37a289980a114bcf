"""The JSON API (``/api/v1/...``), described by the OpenAPI 3.1 document at
``/api/openapi.json``: the administration API of a company's own tools (OAuth 2 access
tokens of its administrators, scope ``rcd.admin``, the same rules as the pages) and the
partners' read API of the directory (client credentials, scope ``rcd.read``: only what
concerns the services the partner shares). Errors are JSON problem objects (RFC 9457)
with French messages; every parameter is validated (400, never 500)."""
