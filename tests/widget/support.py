"""A partner whose OAuth client may use the widget: its page origins, the widget's
callback and its own redirect page among its redirect URIs."""

from __future__ import annotations

from typing import Any

from partners.services import client_by_id
from tests.idp.oauth_support import World, setup_world

CLIENT_ID = "widget-client"


def callback_of(base_url: str, client_id: str = CLIENT_ID) -> str:
    return f"{base_url}/widget/v1/callback/{client_id}"


def widget_world(
    app: Any,
    session: Any,
    *,
    base_url: str,
    origins: tuple[str, ...],
    redirect_uris: tuple[str, ...] = (),
    client_id: str = CLIENT_ID,
) -> World:
    """The declarant and partner of :func:`setup_world`; the client (confidential,
    PKCE) lists ``origins`` as widget origins and the widget callback as redirect URI."""
    world = setup_world(
        app,
        session,
        client_id=client_id,
        redirect_uris=(callback_of(base_url, client_id), *redirect_uris),
        scopes=("openid", "profile"),
    )
    client = client_by_id(session, client_id)
    assert client is not None
    client.origins = list(origins)
    session.commit()
    return world
