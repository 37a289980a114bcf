"""A test's own HTTP server on 127.0.0.1: a partner's receiver or metadata publisher."""

from __future__ import annotations

import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *_args: Any) -> None:
        pass


class LoopbackServer:
    """Serves :meth:`handler` on a port of ``ports``, picked at random so that pytest-xdist
    workers sharing the range seldom take a port another has just freed; :meth:`down`
    then :meth:`up` comes back on the same port."""

    def __init__(self, ports: range) -> None:
        self.ports = ports
        self.port = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def up(self) -> None:
        ThreadingHTTPServer.allow_reuse_address = True
        candidates = [self.port] if self.port else random.sample(self.ports, len(self.ports))
        for port in candidates:
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", port), self.handler())
            except OSError:
                continue
            self.port = port
            break
        else:
            raise RuntimeError(f"no free port in {self.ports}")
        # polled every 50 ms (0.5 s by default): :meth:`down` waits for the loop to notice
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def wsgi_server_in(app: Any, ports: range) -> Any:
    """A threaded werkzeug server for ``app`` on a random free port of ``ports`` (not
    started: ``serve_forever`` it in a thread)."""
    from werkzeug.serving import make_server

    for port in random.sample(ports, len(ports)):
        try:
            return make_server("127.0.0.1", port, app, threaded=True)
        except OSError:
            continue
    raise AssertionError(f"no free port in {ports}")
