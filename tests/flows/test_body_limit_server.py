"""Issue 13 item 4 against gunicorn: a chunked body with no Content-Length is refused with
413 once past the limit, without the worker reading (and growing by) the whole body."""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any

import pytest

from tests.flows.server_support import gunicorn, peak_rss_kib

MB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)


def _send_chunked(port: int, path: str, total: int, content_type: str) -> tuple[int, bytes]:
    """POST ``total`` bytes to ``path`` in chunks; stop sending as soon as the server
    answers (or closes). Returns the status and the body of the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: {content_type}\r\nAccept: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode())
    answer = b""
    sent = 0
    try:
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            sock.sendall(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
            sent += len(CHUNK)
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    assert answer, f"no answer after {sent} bytes sent"
    status = int(answer.split(b" ", 2)[1])
    return status, answer.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/authentifier/1.0/", "application/xml"),
        ("/oauth/token", "application/x-www-form-urlencoded"),
        ("/connexion", "application/x-www-form-urlencoded"),
    ],
)
def test_chunked_50_mb_body_is_refused_without_growing_the_worker(
    app_config: dict[str, Any], tmp_path, path: str, content_type: str
) -> None:
    with gunicorn(app_config, tmp_path) as server:
        (worker,) = server.workers()
        warm, _ = _send_chunked(server.port, path, len(CHUNK), content_type)  # lazy imports
        assert warm != 413
        before = peak_rss_kib(worker)
        started = time.monotonic()
        status, body = _send_chunked(server.port, path, 50 * MB, content_type)
        elapsed = time.monotonic() - started
        grown = peak_rss_kib(worker) - before
        assert status == 413, body[:500]
        print(f"{path}: peak grew by {grown} KiB")
        assert grown < 5 * 1024, f"worker grew by {grown} KiB"
        assert elapsed < 10
        assert "volumineu" in json.loads(body)["error_description"]
        assert server.workers() == [worker]  # the worker lives on
