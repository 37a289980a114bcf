"""SSO navigation (session cookie to the signed jeton's auto-post page) against the raw
RSA-2048 signing capacity of this machine, in the same run.

Run: ``python bench/bench_navigation.py [--workers 2] [--connections 16] [--rounds 2]
[--round-seconds 5] [--database-url URL --redis-url URL [--fresh-database]]``.

1. The demo directory and the demo partner (a SAML SP receiving DSN, landing URL its
   ACS); a browser logs in once through ``/connexion`` (its session and CSRF cookies).
2. Our service under ``idp serve --workers N``. One navigation is checked first (200, a
   signed ``SAMLResponse`` in the auto-post form).
3. wrk (one thread, 16 connections) POSTs ``/navigation/DSN`` with that session, each
   answer a fresh signed jeton, audited; any non-success answer fails the bench.
4. The reference: RSA-2048 PKCS#1 v1.5 signatures per second on every core
   (``cryptography``, one process per core), measured before and after each round.
5. The service's CPU (its process group, user + system) over the whole load, per
   navigation (the audit trail's ``portal.navigation`` events), in RSA-2048 signatures
   made in this process: what a navigation costs, whatever else the machine runs.
6. ``idp audit verify`` after the load.

Prints the navigation figures, the reference, the CPU per navigation, the audit check,
then LAST the ratio line:
``ratio navigation/RSA-2048 capacity: XX.X% (p99 N ms)``.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, references

SERVICE = "DSN"
_SAML_RESPONSE = re.compile(r'name="SAMLResponse" value="([^"]+)"')


def check_navigation(url: str, form: str, cookie: str) -> None:
    status, page = harness.post_once(url, form, cookie)
    found = _SAML_RESPONSE.search(page)
    if status != 200 or found is None:
        raise harness.BenchError(f"navigation refusée : {status} {page[:300]!r}")
    document = base64.b64decode(found.group(1))
    if b"SignatureValue" not in document:
        raise harness.BenchError("la navigation n'a pas posté de jeton signé")


def navigations(app: object) -> int:
    """Navigations in the audit trail."""
    from sqlalchemy import func, select

    from idp.stores.db import database
    from rcd_store.models import AuditEvent

    with database(app).sessions() as session:  # type: ignore[arg-type]
        found = select(func.count()).where(AuditEvent.kind == "portal.navigation")
        return int(session.scalar(found) or 0)


def rsa_cpu(count: int = 300) -> float:
    """CPU seconds of one RSA-2048 signature (the reference's), in this process."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    started = time.process_time()
    for _ in range(count):
        key.sign(references.SIGNED_INFO, padding.PKCS1v15(), hashes.SHA256())
    return (time.process_time() - started) / count


def bench(options: argparse.Namespace, instance: Path) -> list[str]:
    port = harness.free_port(options.port_base)
    config = harness.settings(options, instance, port)
    app = harness.prepared_app(options, config)
    login, _site = harness.demo_directory(app)
    url = f"{config['BASE_URL']}/navigation/{SERVICE}"
    with harness.ours(options, config, instance) as server:
        browser = harness.browser(config["BASE_URL"], login)
        form = f"csrf_token={browser.csrf}"
        check_navigation(url, form, browser.cookie)
        script = harness.lua_script(
            instance, "navigate", harness.form_post_lua(form, browser.cookie)
        )
        start = harness.group_cpu(server.pid), navigations(app)  # the server leads its group
        figures, rsa = harness.with_reference(
            options, harness.Target("navigation", url, script), references.rsa2048_rate
        )
        cpu, done = harness.group_cpu(server.pid) - start[0], navigations(app) - start[1]
    signature = rsa_cpu()
    audit = harness.check_audit(config)
    head = (
        f"SSO navigation, SAML jeton ({harness.database_name(config)}; idp serve --workers "
        f"{options.workers}; wrk {options.connections} conn, median of {options.rounds} x "
        f"{options.round_seconds:g}s)"
    )
    return [
        head,
        figures.line("navigation"),
        f"raw RSA-2048 signatures on all cores: {rsa:.0f}/s (median of {options.rounds + 1})",
        (
            f"CPU per navigation in the service: {1e6 * cpu / done:.0f} us = "
            f"{cpu / done / signature:.2f} RSA-2048 signatures ({done} navigations; one "
            f"signature {1e6 * signature:.0f} us)"
        ),
        audit,
        (
            f"ratio navigation/RSA-2048 capacity: {100 * figures.rps / rsa:.1f}% "
            f"(p99 {figures.p99_ms:.1f} ms)"
        ),
    ]


if __name__ == "__main__":
    sys.exit(harness.run_main(__doc__.splitlines()[0], bench))
