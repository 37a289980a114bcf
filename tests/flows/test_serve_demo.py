"""The README's first command: ``idp serve --demo`` on a fresh folder answers /healthz fast."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _idp() -> str:
    found = shutil.which("idp", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("the idp console script is not installed beside this Python")
    return found


def test_serve_demo_answers_healthz_within_10s(tmp_path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["IDP_INSTANCE_PATH"] = str(tmp_path / "instance")
    started = time.monotonic()
    proc = subprocess.Popen(
        [_idp(), "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        status = None
        while time.monotonic() - started < 10:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200, "no 200 from /healthz within 10 s"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert "Mot de passe de tous les comptes" in output
    assert "73282932000074" in output
    # idempotent: a second start on the same folder loads nothing twice
    second = subprocess.run(
        [_idp(), "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert second.returncode == 0, second.stderr
