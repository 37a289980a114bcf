"""The URLs a partner registers (redirect URIs, origins, receivers, endpoints)."""

from __future__ import annotations

from urllib.parse import urlsplit

from rcd_store.errors import DirectoryError

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


def checked_url(value: str, what: str, *, allow_path: bool = True, allow_http: bool = False) -> str:
    """An absolute https URL (http only for localhost, or anywhere with ``allow_http``),
    without fragment or credentials."""
    parts = urlsplit(value.strip())
    local = parts.hostname in _LOCAL_HOSTS or (parts.hostname or "").endswith(".localhost")
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or (parts.scheme == "http" and not (local or allow_http))
    ):
        raise DirectoryError(f"{what} invalide : {value!r} (URL https absolue attendue)")
    if parts.fragment or parts.username or parts.password:
        raise DirectoryError(f"{what} invalide : {value!r} (ni fragment ni identifiants)")
    if not allow_path and (parts.path not in ("", "/") or parts.query):
        raise DirectoryError(f"{what} invalide : {value!r} (schéma://hôte[:port] attendu)")
    return value.strip() if allow_path else f"{parts.scheme}://{parts.netloc}"
