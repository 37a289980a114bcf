"""Login (the form post to a new SSO session) against the argon2id hash rate of this
machine at the service's parameters, in the same run.

Run: ``python bench/bench_login.py [--workers 2] [--connections 16] [--rounds 2]
[--round-seconds 5] [--database-url URL --redis-url URL [--fresh-database]]``.

1. The demo directory (declarants hashed at the configured argon2id parameters,
   ``IDP_ARGON2_TIME_COST`` and ``IDP_ARGON2_MEMORY_KIB``).
2. Our service under ``idp serve --workers N``; one browser's CSRF cookie and token. One
   login is checked first (303 to the dashboard with a session cookie).
3. wrk (one thread, 16 connections) POSTs ``/connexion`` with the SIRET, names and
   password of 48 declarants in turn (the lockout counts one account's attempts in
   flight: a real load is spread over accounts; the address limit is raised, every bench
   login coming from 127.0.0.1): each answer a new session (303), audited; any
   non-success answer (a 429 included) fails the bench.
4. The reference: argon2id verifications per second on every core at the same
   parameters (one process per core), measured before and after each round.
5. The CPU the service's processes spent per login during the rounds (their
   ``/proc`` times, the logins counted in the audit trail between rounds) against the
   CPU of one argon2id verification in this process: a figure a busy neighbour moves
   less than the rates, since it counts no time spent waiting for a core.
6. ``idp audit verify`` after the load.

``IDP_PASSWORD_HASH_CONCURRENCY`` in the bench's environment is passed to the service
(argon2id threads per worker; default: ``idp serve``'s share of the cores).

Prints the login figures, the reference, the CPU figures, the audit check, the load
average of the machine before and after, then LAST the ratio line:
``ratio login/argon2id hash rate: XX.X% (p99 N ms)``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness, references

#: accounts the logins rotate over (more than wrk's connections: one login in flight each)
ACCOUNTS = 48


def logins(app: object) -> int:
    """Successful logins in the audit trail."""
    from sqlalchemy import func, select

    from idp.stores.db import database
    from rcd_store.models import AuditEvent

    with database(app).sessions() as session:  # type: ignore[arg-type]
        found = select(func.count()).where(AuditEvent.kind == "login.succeeded")
        return int(session.scalar(found) or 0)


class CpuPerLogin:
    """Called before each reference measure (the service idle between rounds): the
    service's CPU and logins since the end of the previous reference measure."""

    def __init__(self, app: object, group: int, reference: Callable[[], float]) -> None:
        self.app, self.group, self.reference = app, group, reference
        self.mark: tuple[float, int] | None = None
        self.rounds: list[float] = []

    def __call__(self) -> float:
        cpu, done = harness.group_cpu(self.group), logins(self.app)
        if self.mark is not None and done > self.mark[1]:
            self.rounds.append((cpu - self.mark[0]) / (done - self.mark[1]))
        rate = self.reference()
        self.mark = (harness.group_cpu(self.group), logins(self.app))
        return rate


def argon2id_cpu(time_cost: int, memory_kib: int, count: int = 6) -> float:
    """CPU seconds of one argon2id verification at these parameters, in this process."""
    from rcd_store.passwords import HashParameters, PasswordService

    service = PasswordService(HashParameters(time_cost=time_cost, memory_kib=memory_kib))
    stored = service.hash("une phrase de passe du banc d'essai")
    started = time.process_time()
    for _ in range(count):
        service.verify(stored, "une phrase de passe du banc d'essai")
    return (time.process_time() - started) / count


def bench(options: argparse.Namespace, instance: Path) -> list[str]:
    from idp.auth.passwords import default_concurrency
    from idp.config import DEFAULTS

    port = harness.free_port(options.port_base)
    config = harness.settings(options, instance, port)
    config["IP_FAILURE_LIMIT"] = "100000"  # every bench login comes from 127.0.0.1
    threads = os.environ.get("IDP_PASSWORD_HASH_CONCURRENCY")
    if threads:
        config["PASSWORD_HASH_CONCURRENCY"] = threads
    load_before = os.getloadavg()
    app = harness.prepared_app(options, config)
    login, _site = harness.demo_directory(app)
    accounts = harness.bench_declarants(app, ACCOUNTS, login.siret)
    url = f"{config['BASE_URL']}/connexion"
    time_cost = int(config.get("ARGON2_TIME_COST", DEFAULTS["ARGON2_TIME_COST"]))
    memory_kib = int(config.get("ARGON2_MEMORY_KIB", DEFAULTS["ARGON2_MEMORY_KIB"]))
    with harness.ours(options, config, instance) as server:
        browser = harness.browser(config["BASE_URL"])
        form = harness.login_form(login, browser.csrf)
        status, page = harness.post_once(url, form, browser.cookie)
        if status != 303:
            raise harness.BenchError(f"connexion refusée : {status} {page[:300]!r}")
        bodies = [harness.login_form(account, browser.csrf) for account in accounts]
        script = harness.lua_script(
            instance, "login", harness.rotating_post_lua(bodies, browser.cookie)
        )
        cpu = CpuPerLogin(
            app,
            server.pid,  # the server leads its own process group (its workers)
            lambda: references.argon2id_rate(time_cost, memory_kib, seconds=3.0),
        )
        figures, rate = harness.with_reference(options, harness.Target("login", url, script), cpu)
    hash_cpu = argon2id_cpu(time_cost, memory_kib)
    login_cpu = statistics.median(cpu.rounds)
    audit = harness.check_audit(config)
    head = (
        f"login, SIRET + names + password ({harness.database_name(config)}; idp serve "
        f"--workers {options.workers}; argon2id t={time_cost} m={memory_kib} KiB p=1, "
        f"{threads or default_concurrency(options.workers)} thread(s) per worker; wrk "
        f"{options.connections} conn, median of {options.rounds} x {options.round_seconds:g}s)"
    )
    return [
        head,
        figures.line("login"),
        f"argon2id hashes on all cores: {rate:.1f}/s (median of {options.rounds + 1})",
        (
            f"CPU per login in the service: {1000 * login_cpu:.1f} ms (rounds: "
            f"{', '.join(f'{1000 * x:.1f}' for x in cpu.rounds)}); one argon2id "
            f"verification: {1000 * hash_cpu:.1f} ms; ratio {100 * hash_cpu / login_cpu:.1f}%"
        ),
        audit,
        "load average before, after: "
        + "; ".join(", ".join(f"{x:.1f}" for x in load) for load in (load_before, os.getloadavg())),
        (
            f"ratio login/argon2id hash rate: {100 * figures.rps / rate:.1f}% "
            f"(p99 {figures.p99_ms:.1f} ms)"
        ),
    ]


if __name__ == "__main__":
    sys.exit(harness.run_main(__doc__.splitlines()[0], bench))
