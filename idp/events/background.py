"""The events of an app: the outbox of SETs and logout tokens filled from every session
of the app, the poll endpoint, and, with ``IDP_EVENTS_BACKGROUND`` (on for ``idp serve``), a daemon
thread pushing it every ``IDP_EVENTS_INTERVAL`` seconds beside the outbox sender."""

from __future__ import annotations

import logging

from flask import Flask

from idp.background import Periodic
from idp.events import emit, poll
from idp.events.push import push_round
from idp.stores.db import database

log = logging.getLogger(__name__)

EXTENSION = "idp.events.pusher"


class EventPusher(Periodic):
    """Pushes the events outbox until :meth:`stop` (called at exit too); a failing round
    (database down) is logged and the next tick tries again."""

    def __init__(self, app: Flask) -> None:
        super().__init__(
            app,
            interval=float(app.config["EVENTS_INTERVAL"]) or 2.0,
            name="idp-events",
            failure="envoi des événements de sécurité en échec",
            log=log,
        )

    def round(self) -> None:
        done = push_round(self.app)
        if done.acknowledged or done.refused or done.failed:
            log.info("événements de sécurité : %s", done)


def init_app(app: Flask) -> None:
    """Emit events from the app's sessions; push them in the background when asked."""
    emit.init_app(app, database(app).sessions)
    poll.init_app(app)  # POST /events/poll (RFC 8936)
    if app.config["EVENTS_BACKGROUND"]:
        app.extensions[EXTENSION] = EventPusher(app).start()


def pusher(app: Flask) -> EventPusher | None:
    return app.extensions.get(EXTENSION)
