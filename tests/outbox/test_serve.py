"""``idp serve`` runs the background sender (the outbox delivered without any other
command) and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.outbox.smtp_support import free_port
from tests.outbox.test_crash import _idp
from tests.outbox.test_files import queue


def test_idp_serve_delivers_in_the_background_and_stops_cleanly(
    tmp_path: Path, make_app: Any
) -> None:
    port = free_port()
    instance = tmp_path / "served"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env |= {"IDP_INSTANCE_PATH": str(instance), "IDP_OUTBOX_INTERVAL": "0.2"}
    server = subprocess.Popen(
        [_idp(), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # a loaded machine starts slowly
        while not _answers(port):
            assert server.poll() is None, "idp serve stopped"
            assert time.monotonic() < deadline, "idp serve never answered"
            time.sleep(0.2)
        app = make_app(DATABASE_URL=None, INSTANCE_PATH=str(instance), MASTER_KEY=None)
        session = app.extensions["idp.db"].sessions()
        try:
            row = queue(app, session)
        finally:
            session.close()
        delivered = instance / "outbox" / f"{row.id}-test.eml"
        while not delivered.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert delivered.exists(), "the background sender of idp serve sent nothing"
    finally:
        server.terminate()  # SIGTERM
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False
