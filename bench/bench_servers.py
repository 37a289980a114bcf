"""Which production server: gunicorn sync, gunicorn gthread or granian, measured side by side.

Run: ``python bench/bench_servers.py [--workers 2] [--connections 16] [--rounds 2]
[--round-seconds 5] [--database-url URL --redis-url URL [--fresh-database]]``.

The three run at once (``idp serve --workers N --server S``, each on its own port, one
database), and wrk's rounds go to each in turn (interleaved): the token endpoint
(client_credentials, client_secret_basic: the database and the signature) and the JWKS
(prepared bytes: the server's own cost). Every answer checked a success; the audit trail
verified after. Prints each server's figures, then LAST the ratio line: each server's
token and JWKS req/s as a ratio of gunicorn sync's.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.bench_token_endpoint import LUA, basic, client, token_once

SERVERS = ("gunicorn", "gunicorn-gthread", "granian")


def bench(options: argparse.Namespace, instance: Path) -> list[str]:
    ports: list[int] = []
    for _ in SERVERS:
        ports.append(harness.free_port(ports[-1] + 1 if ports else options.port_base))
    config = harness.settings(options, instance, ports[0])
    credentials = basic(*client(harness.prepared_app(options, config)))
    token_script = harness.lua_script(instance, "token", LUA % credentials)
    get_script = harness.lua_script(instance, "get", 'wrk.method = "GET"\n')
    targets: list[harness.Target] = []
    with ExitStack() as stack:
        for server, port in zip(SERVERS, ports, strict=True):
            own = {**config, "BASE_URL": f"http://127.0.0.1:{port}"}
            folder = instance / server
            folder.mkdir()
            chosen = argparse.Namespace(**{**vars(options), "server": server})
            stack.enter_context(harness.ours(chosen, own, folder))
            token_once(f"{own['BASE_URL']}/oauth/token", credentials)
            targets.append(
                harness.Target(f"{server} token", f"{own['BASE_URL']}/oauth/token", token_script)
            )
            targets.append(
                harness.Target(
                    f"{server} jwks", f"{own['BASE_URL']}/.well-known/jwks.json", get_script
                )
            )
        figures = harness.interleaved(options, targets)
    audit = harness.check_audit(config)
    base_token, base_jwks = figures["gunicorn token"].rps, figures["gunicorn jwks"].rps
    ratios = ", ".join(
        f"{s} token {figures[f'{s} token'].rps / base_token:.2f}x jwks "
        f"{figures[f'{s} jwks'].rps / base_jwks:.2f}x"
        for s in SERVERS
    )
    head = (
        f"servers ({harness.database_name(config)}; {options.workers} workers each; wrk "
        f"{options.connections} conn, median of {options.rounds} x {options.round_seconds:g}s "
        f"interleaved)"
    )
    return [
        head,
        *(f.line(name) for name, f in figures.items()),
        audit,
        f"ratio to gunicorn sync: {ratios}",
    ]


if __name__ == "__main__":
    sys.exit(harness.run_main(__doc__.splitlines()[0], bench))
