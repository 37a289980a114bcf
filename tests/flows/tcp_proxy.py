"""A TCP proxy a test can cut, to stand between the service and PostgreSQL or Redis.

Modes:

- ``"pass"``: forwards both ways;
- ``"refuse"``: nothing listens any more (a new connection is refused) and every open
  connection is reset (a store that is down);
- ``"drop"``: connections are still accepted, but nothing is forwarded either way,
  on new connections and on those already open (a network that drops packets: the
  kernel of the proxy still acknowledges them, so TCP keepalives and
  ``tcp_user_timeout`` on the client never fire, only the client's own deadlines).

Leaving ``"drop"`` resets the connections that were open during it (their bytes were
lost, so neither side could trust them again), as a store restart would.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

MODES = ("pass", "refuse", "drop")


def _reset(sock: socket.socket) -> None:
    """Close with a RST (SO_LINGER 0): the peer's next read fails at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)  # wakes a thread blocked reading it
    except OSError:
        pass
    sock.close()


class TcpProxy:
    """``127.0.0.1:<port>`` forwarded to ``target``; ``mode`` switched by the test."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "pass"
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._listen(0)
        assert self._listener is not None
        self.port: int = self._listener.getsockname()[1]

    # ------------------------------------------------------------------ control

    def set_mode(self, mode: str) -> None:
        """Switch to ``mode`` (see the module docstring)."""
        assert mode in MODES, mode
        with self._lock:
            previous, self.mode = self.mode, mode
            if mode == "refuse" or previous == "drop":
                self._reset_all()
            if mode == "refuse" and self._listener is not None:
                self._stop_listening()
        if mode != "refuse" and self._listener is None:
            self._listen(self.port)

    def close(self) -> None:
        with self._lock:
            self.mode = "closed"
            if self._listener is not None:
                self._stop_listening()
            self._reset_all()

    def _stop_listening(self) -> None:
        assert self._listener is not None
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); refuses from now
        except OSError:
            pass
        self._listener.close()
        self._listener = None

    def _reset_all(self) -> None:
        for sock in list(self._sockets):
            _reset(sock)
        self._sockets.clear()

    # ------------------------------------------------------------------ plumbing

    def _listen(self, port: int) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed (refuse mode, or the end)
            with self._lock:
                self._sockets.add(client)
                mode = self.mode
            if mode == "drop":
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
            else:
                threading.Thread(target=self._open, args=(client,), daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _reset(client)
            return
        upstream.settimeout(None)
        with self._lock:
            self._sockets.add(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                _reset(sink)
                _reset(source)
                return
            if self.mode == "drop":
                continue  # read and lost: the other side hears nothing
            try:
                sink.sendall(data)
            except OSError:
                _reset(source)
                return

    def _swallow(self, client: socket.socket) -> None:
        while True:
            try:
                if not client.recv(65536):
                    return
            except OSError:
                return


@contextmanager
def proxy_to(host: str, port: int) -> Iterator[TcpProxy]:
    """A :class:`TcpProxy` to ``host:port`` for the duration of the block."""
    proxy = TcpProxy((host, port))
    try:
        yield proxy
    finally:
        proxy.close()
