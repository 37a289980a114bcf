"""Who may use the widget, and where its results may go: the registered clients' origins.

Every answer here is computed from the partner registry (``OAuthClient.origins`` and
``redirect_uris``), never from what a request says about itself: a page on another
origin gets no CORS grant, and a code is only ever posted to a registered origin.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.oidc.clients import digest, issuer
from idp.stores.models import AuthorizationCode
from partners.models import OAuthClient
from partners.services import client_by_id


def callback_url(client_id: str) -> str:
    """The IdP page the popup's authorization response goes to for ``client_id``: the
    partner registers it among the client's redirect URIs."""
    return f"{issuer()}/widget/v1/callback/{client_id}"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> tuple[str, str, int | None]:
    """Scheme, host and port as a browser serialises an origin (case, default port)."""
    parts = urlsplit(value.strip())
    try:
        port = parts.port
    except ValueError:
        return ("", "", None)
    scheme = parts.scheme.lower()
    return (scheme, (parts.hostname or ""), None if port == _DEFAULT_PORTS.get(scheme) else port)


def same_origin(a: str, b: str) -> bool:
    """Whether two origins are the same for a browser (``https://x`` is ``https://X:443``);
    an unparsable one matches nothing."""
    first = _origin(a)
    return bool(first[1]) and first == _origin(b)


def origin_registered(client: OAuthClient, origin: str | None) -> bool:
    """Whether ``origin`` (a browser's ``Origin`` header) is one of the client's
    registered widget origins (exact scheme, host and port)."""
    return bool(origin) and any(same_origin(o, str(origin)) for o in client.origins or [])


def any_client_origin(session: Session, origin: str | None) -> bool:
    """Whether ``origin`` is a registered widget origin of any client (the script itself
    is shared by every partner)."""
    if not origin:
        return False
    return any(
        same_origin(o, origin)
        for origins in session.scalars(select(OAuthClient.origins))
        for o in origins or []
    )


def widget_client(session: Session, client_id: str) -> OAuthClient | None:
    """The client, when it may use the popup: it has widget origins, the authorization
    code grant and the widget callback among its redirect URIs; else None."""
    client = client_by_id(session, client_id) if client_id else None
    if client is None or not client.origins:
        return None
    if "authorization_code" not in (client.grant_types or []):
        return None
    return client if callback_url(client.client_id) in (client.redirect_uris or []) else None


def code_for_callback(session: Session, client: OAuthClient, code: str) -> bool:
    """Whether ``code`` is a live, unused code issued to ``client`` for the widget
    callback: a code of another client, or forged, is never forwarded to a partner."""
    row = session.get(AuthorizationCode, digest(code))
    return (
        row is not None
        and row.client_id == client.client_id
        and row.redirect_uri == callback_url(client.client_id)
        and row.used_at is None
        and row.expires_at > datetime.now(UTC)
    )
