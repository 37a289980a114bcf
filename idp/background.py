"""A daemon thread doing one round of background work every few seconds: the outbox
sender, the security events pusher and the partners' metadata refresher of ``idp serve``."""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Self

from flask import Flask


class Periodic:
    """Runs :meth:`round` every ``interval`` seconds, the first one interval after the start
    (the app's database is migrated by then), until :meth:`stop` (called at exit too). A
    failing round (database or server down) is logged with ``failure`` and its traceback
    on ``log``, and the next tick tries again: an outage does not end the thread."""

    def __init__(
        self, app: Flask, *, interval: float, name: str, failure: str, log: logging.Logger
    ) -> None:
        self.app = app
        self.interval = interval
        self.failure = failure
        self.log = log
        self.rounds = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self.thread.start()
        atexit.register(self.stop)
        return self

    def round(self) -> None:
        """One round of the work (overridden)."""
        raise NotImplementedError

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.round()
            except Exception:  # logged with its traceback; the next tick tries again
                self.log.exception(self.failure)
            self.rounds += 1

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop and wait for the round it is doing, if any."""
        self.stopping.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)
