"""A real gunicorn process serving ``app:create_app()`` for tests of what only a server shows
(memory of a worker, workers killed by gunicorn's timeout, stores cut under load)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_port_in(ports: range) -> int:
    """A free port of ``ports`` (a suite confined to its own range), in random order."""
    for port in random.sample(list(ports), len(ports)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


@dataclass
class Server:
    """A running gunicorn master, its base URL and its error log."""

    process: subprocess.Popen[bytes]
    base_url: str
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def workers(self) -> list[int]:
        """The pids of the master's live workers."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]


def peak_rss_kib(pid: int) -> int:
    """The most resident memory a process has had (``VmHWM``), in KiB: a body read in
    full and freed at once leaves no trace in the current size, but here it does."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def _wait_ready(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"gunicorn stopped:\n{server.log_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise AssertionError(f"gunicorn not ready:\n{server.log_text()[-3000:]}")


@contextmanager
def gunicorn(
    config: Mapping[str, Any], tmp_path: Path, *, workers: int = 1, timeout: int = 30
) -> Iterator[Server]:
    """gunicorn with ``workers`` sync workers and the app configured by ``config`` (as
    ``IDP_*`` variables); stopped (SIGTERM, then SIGKILL) when the block ends."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({f"IDP_{k}": str(v) for k, v in config.items() if v is not None})
    env["IDP_BASE_URL"] = f"http://127.0.0.1:{port}"
    log = tmp_path / f"gunicorn-{port}.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        f"--workers={workers}",
        f"--bind=127.0.0.1:{port}",
        f"--timeout={timeout}",
        "--graceful-timeout=5",
        "--log-level=info",
        f"--error-logfile={log}",
        "app:create_app()",
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = Server(process, f"http://127.0.0.1:{port}", port, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
