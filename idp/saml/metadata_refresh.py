"""Partners' SAML metadata refreshed from their URL (:mod:`partners.metadata_refresh`):
one round (``idp partner refresh-metadata``, tests) or, with
``IDP_SAML_METADATA_BACKGROUND`` (on for ``idp serve``), a daemon thread looking every
``IDP_SAML_METADATA_INTERVAL`` seconds for what is due, beside the outbox sender and the
events pusher. Any number of refreshers may run at once: each row is claimed by one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from idp.background import Periodic
from idp.stores.db import database
from partners.metadata_refresh import Outcome, RefreshPolicy, refresh_due, refresh_partner
from partners.saml_metadata import FetchPolicy

log = logging.getLogger(__name__)

EXTENSION = "idp.saml.metadata_refresh"


def policy(config: Mapping[str, Any]) -> RefreshPolicy:
    """The refresh policy the configuration sets."""
    return RefreshPolicy(
        fetch=FetchPolicy(
            timeout=float(config["SAML_METADATA_TIMEOUT"]) or 10.0,
            max_bytes=int(config["SAML_METADATA_MAX_BYTES"]),
            allow_http=bool(config["SAML_METADATA_ALLOW_HTTP"]),
        ),
        refresh_seconds=float(config["SAML_METADATA_REFRESH_SECONDS"]),
        retry_seconds=float(config["SAML_METADATA_RETRY_SECONDS"]),
    )


def refresh_round(app: Flask, *, actor: str | None = None) -> list[Outcome]:
    """Refresh every partner whose metadata is due."""
    return refresh_due(database(app).sessions, policy(app.config), actor=actor)


def refresh_now(app: Flask, name: str, *, actor: str | None = None) -> Outcome:
    """Refresh partner ``name``'s metadata now, whatever its schedule."""
    return refresh_partner(database(app).sessions, name, policy(app.config), actor=actor)


class MetadataRefresher(Periodic):
    """Refreshes what is due until :meth:`stop` (called at exit too); a failing round
    (database down) is logged and the next tick tries again."""

    def __init__(self, app: Flask) -> None:
        super().__init__(
            app,
            interval=float(app.config["SAML_METADATA_INTERVAL"]) or 60.0,
            name="idp-saml-metadata",
            failure="rafraîchissement des métadonnées SAML en échec",
            log=log,
        )

    def round(self) -> None:
        refresh_round(self.app, actor="system")


def init_app(app: Flask) -> None:
    """Refresh partners' metadata in the background when asked."""
    if app.config["SAML_METADATA_BACKGROUND"]:
        app.extensions[EXTENSION] = MetadataRefresher(app).start()


def refresher(app: Flask) -> MetadataRefresher | None:
    return app.extensions.get(EXTENSION)
