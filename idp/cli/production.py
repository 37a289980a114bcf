"""``idp serve --workers N``: the production WSGI server, chosen by measurement.

The choice (README, « Production ») was measured by the benches of ``bench/`` on a
2-core machine: see ``bench/bench_servers.py``. Every server here calls the same
factory, ``idp.factory:create_app``, in each worker; the workers share nothing but the
database (and Redis when configured), as in any production deployment.
"""

from __future__ import annotations

import sys

#: the servers ``idp serve --server`` knows; the first is the measured choice
SERVERS = ("granian", "gunicorn-gthread", "gunicorn")
DEFAULT_SERVER = SERVERS[0]
#: threads per worker of gunicorn's gthread (requests wait on the database or Redis)
THREADS = 4
#: granian's blocking threads per worker: the requests in flight in one worker, hence
#: the largest batch its group commit (idp.stores.group_commit) can share. Measured by
#: bench/bench_token_endpoint.py (2 workers, 16 connections, same run as node), ratio to
#: node oidc-provider's req/s: at load 14-22, 4 threads 0.52x/0.43x, 16 threads
#: 0.75x/0.84x; at load 9-20, runs alternated, 4 threads 0.52x/0.58x/0.54x, 16 threads
#: 0.41x/0.50x/0.59x: no gain there (docs/profile.md, "Mesures du point de jeton")
BLOCKING_THREADS = 16
FACTORY = "idp.factory:create_app"
#: seconds a worker has to stop after SIGTERM before the server kills it
KILL_TIMEOUT = 15


def server_command(server: str, *, host: str, port: int, workers: int) -> list[str]:
    """The command line that runs ``server`` with ``workers`` processes on ``host:port``
    (``ValueError`` for a server this module does not know)."""
    if server == "granian":
        return [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--factory",
            "--workers",
            str(workers),
            "--blocking-threads",
            str(BLOCKING_THREADS),
            "--host",
            host,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-ws",
            # a worker that does not stop within this is killed (granian waits forever by
            # default): a stop is bounded, the outbox's crash rules cover a message in hand
            "--workers-kill-timeout",
            str(KILL_TIMEOUT),
            FACTORY,
        ]
    if server not in ("gunicorn", "gunicorn-gthread"):
        raise ValueError(f"serveur inconnu : {server}")
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers)]
    if server == "gunicorn-gthread":
        command += ["--worker-class", "gthread", "--threads", str(THREADS)]
    command += ["--bind", f"{host}:{port}", "--log-level", "warning", f"{FACTORY}()"]
    return command
