"""Delivering an app's outbox: one round (``idp outbox send``, tests), or a background
sender thread (``idp serve``; ``create_app`` with ``IDP_OUTBOX_BACKGROUND``).

Any number of rounds may run at once, in threads or processes: each message is
claimed by one worker only (:mod:`rcd_store.outbox`).
"""

from __future__ import annotations

import logging
import signal
import sys
from datetime import timedelta

from flask import Flask

from idp.background import Periodic
from idp.outbox.settings import build_sender, retry_policy
from idp.stores.db import database
from idp.stores.sealing import app_sealer
from rcd_store import outbox
from rcd_store.outbox import Delivery, Sender

log = logging.getLogger(__name__)

EXTENSION = "idp.outbox"


def deliver_round(
    app: Flask, sender: Sender | None = None, *, worker: str | None = None
) -> Delivery:
    """Send what is due with ``sender`` (by default the one the configuration names),
    close what expired, forget records older than ``IDP_OUTBOX_RECORD_DAYS``."""
    sender = sender or build_sender(app.config)
    session = database(app).sessions()
    try:
        done = outbox.deliver(
            session, app_sealer(app), sender, policy=retry_policy(app.config), worker=worker
        )
        outbox.purge(session, keep_records=timedelta(days=int(app.config["OUTBOX_RECORD_DAYS"])))
        return done
    finally:
        session.close()


class BackgroundSender(Periodic):
    """A daemon thread delivering the outbox every ``IDP_OUTBOX_INTERVAL`` seconds until
    :meth:`stop` (called at exit too). A failing round is logged and retried at the
    next tick: a mail server or database outage does not end the thread."""

    def __init__(self, app: Flask) -> None:
        super().__init__(
            app,
            interval=float(app.config["OUTBOX_INTERVAL"]) or 10.0,
            name="idp-outbox",
            failure="envoi de la boîte d'envoi en échec",
            log=log,
        )
        self.sender = build_sender(app.config)  # a bad configuration fails at start-up
        self.worker = outbox.new_worker_id()

    def round(self) -> None:
        done = deliver_round(self.app, self.sender, worker=self.worker)
        if done.sent or done.failed or done.gave_up or done.uncertain:
            log.info("boîte d'envoi : %s", done)


def init_app(app: Flask) -> None:
    """Start the background sender when ``IDP_OUTBOX_BACKGROUND`` is on."""
    if app.config["OUTBOX_BACKGROUND"]:
        app.extensions[EXTENSION] = BackgroundSender(app).start()


def background(app: Flask) -> BackgroundSender | None:
    return app.extensions.get(EXTENSION)


def stop_on_sigterm() -> None:
    """SIGTERM ends the process as Ctrl+C does (``SystemExit``): the server returns and
    the exit handlers stop the background sender after the message it is sending."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
