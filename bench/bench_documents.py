"""JWKS and discovery: ours against node oidc-provider's, in the same run.

Run: ``python bench/bench_documents.py [--workers 2] [--connections 16] [--rounds 2]
[--round-seconds 5] [--database-url URL --redis-url URL [--fresh-database]]``.

Our service runs under ``idp serve --workers N`` (the production server), node
oidc-provider 9 in one process with ``NODE_ENV=production`` (``bench/node``); wrk (one
thread, 16 connections) GETs each document, the four targets' rounds interleaved, every
answer checked a success; the documents are compared byte-free (each serves its own
keys). Prints each target's median, the audit check, then the ratio line LAST:
``ratio ours/node: jwks X.XXx, discovery X.XXx``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness


def bench(options: argparse.Namespace, instance: Path) -> list[str]:
    port = harness.free_port(options.port_base)
    node_port = harness.free_port(port + 1)
    config = harness.settings(options, instance, port)
    harness.prepared_app(options, config)
    script = harness.lua_script(instance, "get", 'wrk.method = "GET"\n')
    ours, peer = config["BASE_URL"], f"http://127.0.0.1:{node_port}"
    targets = [
        harness.Target("ours jwks", f"{ours}/.well-known/jwks.json", script),
        harness.Target("node jwks", f"{peer}/jwks", script),
        harness.Target("ours discovery", f"{ours}/.well-known/openid-configuration", script),
        harness.Target("node discovery", f"{peer}/.well-known/openid-configuration", script),
    ]
    with (
        harness.ours(options, config, instance),
        harness.node(node_port, "bench-documents", "unused-secret-of-the-bench", instance),
    ):
        figures = harness.interleaved(options, targets)
    audit = harness.check_audit(config)
    jwks = figures["ours jwks"].rps / figures["node jwks"].rps
    discovery = figures["ours discovery"].rps / figures["node discovery"].rps
    head = (
        f"documents ({harness.database_name(config)}; idp serve --workers {options.workers}; "
        f"node oidc-provider 1 process; wrk {options.connections} conn, median of "
        f"{options.rounds} x {options.round_seconds:g}s interleaved)"
    )
    return [
        head,
        *(f.line(name) for name, f in figures.items()),
        audit,
        f"ratio ours/node: jwks {jwks:.2f}x, discovery {discovery:.2f}x",
    ]


if __name__ == "__main__":
    sys.exit(harness.run_main(__doc__.splitlines()[0], bench))
