"""``idp serve --workers N`` runs the production server (docs/architecture.md,
« Exploitation »): N worker processes of the same factory, answering on the port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path

import pytest

from idp.cli.production import DEFAULT_SERVER, SERVERS, server_command

IDP = Path(sys.executable).with_name("idp")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, Message]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def _children(pid: int) -> list[int]:
    found = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(x) for x in found.stdout.split()]


def test_serve_workers_2_starts_the_production_server_and_answers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["IDP_INSTANCE_PATH"] = str(tmp_path / "instance")
    port = _free_port()
    command = [str(IDP), "serve", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while _get_or_none(f"{base}/healthz") != 200:
            if server.poll() is not None:
                said = server.stdout.read().decode(errors="replace") if server.stdout else ""
                raise AssertionError(f"idp serve --workers 2 stopped: {said}")
            assert time.monotonic() < deadline, "idp serve --workers 2 never answered"
            time.sleep(0.3)
        status, headers = _get(f"{base}/.well-known/jwks.json")
        assert status == 200 and str(headers.get("ETag")).startswith('"')
        status, _headers = _get(f"{base}/connexion")
        assert status == 200
        workers = [p for child in _children(server.pid) for p in [child, *_children(child)]]
        assert len(workers) >= 2  # the master's worker processes
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    assert f"({DEFAULT_SERVER}, 2 processus)" in out.decode()


def _get_or_none(url: str) -> int | None:
    try:
        return _get(url)[0]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_demo_is_refused_with_workers(idp: object) -> None:
    result = idp("serve", "--workers", "2", "--demo")  # type: ignore[operator]
    assert result.code == 1 and "--demo" in result.err


@pytest.mark.parametrize("server", SERVERS)
def test_each_server_runs_the_factory_with_n_workers(server: str) -> None:
    command = server_command(server, host="127.0.0.1", port=5055, workers=3)
    assert command[:3] == [sys.executable, "-m", server.split("-")[0]]
    assert "3" in command and any("idp.factory:create_app" in part for part in command)
    if server == "gunicorn-gthread":
        assert "gthread" in command


def test_an_unknown_server_is_refused() -> None:
    with pytest.raises(ValueError):
        server_command("waitress", host="127.0.0.1", port=5055, workers=2)
