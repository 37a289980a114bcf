"""What the HTTP benches share: an instance, our service under ``idp serve --workers N``,
node oidc-provider (``bench/node``), wrk rounds checked answer by answer, the audit check.

Every bench built on it runs on this machine only (127.0.0.1), on the embedded SQLite
by default or on PostgreSQL + Redis (``--database-url``, ``--redis-url``, or the
``IDP_BENCH_DATABASE_URL`` / ``IDP_BENCH_REDIS_URL`` variables); its rounds of the
compared targets are interleaved (A, B, A, B...) so that a noisy neighbour hurts both;
any answer that is not a success (a status other than 2xx/3xx, such as 429 or 500, or a
socket error or timeout) fails the bench before a figure is printed; the audit trail is
verified (``idp audit verify``) after the load. Run by hand: CI does not run benches.
"""

from __future__ import annotations

import argparse
import base64
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "bench" / "node"
IDP = Path(sys.executable).with_name("idp")
READY_TIMEOUT = 60.0

#: wrk's report as one JSON line (the Lua ``done`` hook), shared by every script
DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": %d, "non2xx": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


class BenchError(RuntimeError):
    """The bench cannot run or its run is not valid; the message says why."""


@dataclass(frozen=True)
class Round:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int = 0
    #: CPU (user + system) of the target's processes per request, when its group is known
    cpu_ms: float | None = None


@dataclass(frozen=True)
class Figures:
    """The median of a target's rounds."""

    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float | None = None

    @classmethod
    def of(cls, rounds: list[Round]) -> Figures:
        cpu = [r.cpu_ms for r in rounds if r.cpu_ms is not None]
        return cls(
            statistics.median(r.rps for r in rounds),
            statistics.median(r.p50_ms for r in rounds),
            statistics.median(r.p99_ms for r in rounds),
            statistics.median(cpu) if cpu else None,
        )

    def line(self, name: str) -> str:
        cpu = f", CPU {self.cpu_ms:.3f} ms/req" if self.cpu_ms is not None else ""
        return (
            f"{name}: {self.rps:.0f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms{cpu}"
        )


def arguments(description: str, *, rounds: int = 2, seconds: float = 5.0) -> argparse.Namespace:
    """The options every bench takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", default=None, help="idp serve --server (default: its own)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=rounds, help="rounds per target")
    parser.add_argument("--round-seconds", type=float, default=seconds)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--database-url", default=os.environ.get("IDP_BENCH_DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("IDP_BENCH_REDIS_URL"))
    parser.add_argument(
        "--fresh-database",
        action="store_true",
        help="empty the PostgreSQL database first (DROP SCHEMA public CASCADE)",
    )
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("BENCH_PORT", "19600")))
    parser.add_argument("--keep", action="store_true", help="keep the instance folder")
    return parser.parse_args()


def run_main(description: str, bench: Callable[[argparse.Namespace, Path], list[str]]) -> int:
    """Parse the options, run ``bench`` in a temporary instance folder, print its lines
    (the ratio line last) or the reason it failed (exit status 1)."""
    options = arguments(description)
    if shutil.which("wrk") is None:
        print("wrk absent : apt-get install wrk", file=sys.stderr)
        return 2
    instance = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    try:
        lines = bench(options, instance)
    except BenchError as exc:
        print(f"échec du banc d'essai : {exc}", file=sys.stderr)
        return 1
    finally:
        if not options.keep:
            shutil.rmtree(instance, ignore_errors=True)
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------------ setup


def free_port(base: int) -> int:
    """A free loopback port from ``base`` on (the bench's own range)."""
    for port in range(base, base + 100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise BenchError(f"aucun port libre entre {base} et {base + 99}")


def settings(options: argparse.Namespace, instance: Path, port: int) -> dict[str, str]:
    """The configuration (``IDP_*`` without the prefix) shared by the bench and the workers:
    the per-client token limit raised far above what the bench sends, never switched off."""
    from keys.crypto import MasterKey

    config = {
        "INSTANCE_PATH": str(instance),
        "MASTER_KEY": os.environ.get("IDP_MASTER_KEY") or MasterKey.generate().to_text(),
        "SECRET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "BASE_URL": f"http://127.0.0.1:{port}",
        "JWT_ALG": "ES256",
        "TOKEN_RATE_LIMIT": "100000000",
        "OUTBOX_SENDER": "file",  # no mail leaves a bench (PostgreSQL's default is SMTP)
    }
    if options.database_url:  # otherwise the embedded SQLite of the instance folder
        config["DATABASE_URL"] = options.database_url
    if options.redis_url:
        config["REDIS_URL"] = options.redis_url
    return config


def database_name(config: dict[str, str]) -> str:
    name = config.get("DATABASE_URL", "sqlite").split(":", 1)[0].split("+", 1)[0]
    return f"{name} + redis" if config.get("REDIS_URL") else name


def fresh_database(url: str) -> None:
    """Drop every table of the PostgreSQL database at ``url`` (asked for by option only)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def prepared_app(options: argparse.Namespace, config: dict[str, str]) -> object:
    """The app of this process on the bench's database: migrated, with its keys."""
    from idp.factory import create_app
    from idp.stores.db import database
    from idp.tokens.signing import ensure_keys
    from keys.crypto import KeyDecryptionError

    if options.fresh_database and options.database_url:
        fresh_database(options.database_url)
    app = create_app(dict(config))
    database(app).upgrade()
    try:
        ensure_keys(app)
    except KeyDecryptionError:
        raise BenchError(
            "les clés de cette base sont scellées sous une autre clé maîtresse : "
            "donnez IDP_MASTER_KEY, ou --fresh-database"
        ) from None
    with app.app_context():
        from idp.cli.common import upgrade_database

        upgrade_database(app)  # the audit chain key
    if options.redis_url:
        app.extensions["idp.redis"].flushdb()
    return app


def environment(config: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({f"IDP_{k}": v for k, v in config.items()})
    return env


# ----------------------------------------------------------------------- servers


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path, ready: Callable[[], bool], what: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` in its own process group, wait until ``ready()``, and stop the
    group (SIGTERM, SIGKILL after 10 s) whatever happens."""
    with log.open("wb") as out:
        server = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready():
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchError(
                    f"{what} ne répond pas :\n{log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.2)
        yield server
    finally:
        _stop(server)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


Server = AbstractContextManager[subprocess.Popen[bytes]]


def ours(options: argparse.Namespace, config: dict[str, str], instance: Path) -> Server:
    """Our service under ``idp serve --workers N`` (the production command)."""
    port = config["BASE_URL"].rsplit(":", 1)[1]
    command = [str(IDP), "serve", "--workers", str(options.workers), "--port", port]
    if options.server:
        command += ["--server", options.server]
    ready = f"{config['BASE_URL']}/.well-known/openid-configuration"
    return process(
        command, environment(config), instance / "idp.log", lambda: answers(ready), "idp serve"
    )


def node(port: int, client_id: str, secret: str, instance: Path) -> Server:
    """node oidc-provider 9 (``bench/node/server.js``), one process, NODE_ENV=production."""
    if not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
        raise BenchError("oidc-provider absent : cd bench/node && npm ci")
    env = {**os.environ, "NODE_ENV": "production"}
    command = ["node", str(NODE_DIR / "server.js"), str(port), client_id, secret]
    ready = f"http://127.0.0.1:{port}/.well-known/openid-configuration"
    return process(
        command, env, instance / "node.log", lambda: answers(ready), "node oidc-provider"
    )


# ------------------------------------------------------------------------- load


def lua_script(instance: Path, name: str, body: str) -> Path:
    """A wrk script: ``body`` (request set-up) and the shared JSON report."""
    path = instance / f"{name}.lua"
    path.write_text(body + DONE)
    return path


def run_wrk(url: str, script: Path, *, seconds: float, connections: int) -> Round:
    """One wrk run; any non-success answer or socket error is a :class:`BenchError`."""
    command = ["wrk", "--threads", "1", "--connections", str(connections)]
    command += ["--duration", f"{seconds:g}s", "--timeout", "10s", "--script", str(script), url]
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=seconds + 60
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk a échoué ({done.returncode}) : {done.stderr or done.stdout}")
    stats = json.loads(line.removeprefix("BENCH "))
    if stats["errors"] or stats["non2xx"] or not stats["requests"]:
        raise BenchError(f"réponses en erreur pendant la charge de {url} : {stats}")
    return Round(
        stats["requests"] / (stats["duration_us"] / 1e6),
        stats["p50_us"] / 1000,
        stats["p99_us"] / 1000,
        stats["requests"],
    )


TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu(group: int) -> float:
    """CPU seconds (user + system) of the live processes of process group ``group``."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == group:  # pgrp; then utime, stime at 11, 12
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    script: Path
    #: the process group serving it (:func:`process` starts each server in its own):
    #: its CPU per request is measured over each round
    group: int | None = None

    def round(self, *, seconds: float, connections: int) -> Round:
        before = group_cpu(self.group) if self.group else 0.0
        found = run_wrk(self.url, self.script, seconds=seconds, connections=connections)
        if not self.group:
            return found
        spent = group_cpu(self.group) - before
        return replace(found, cpu_ms=1000 * spent / found.requests)


def interleaved(options: argparse.Namespace, targets: list[Target]) -> dict[str, Figures]:
    """A warm-up of each target, then ``--rounds`` rounds of each, interleaved."""
    load = {"seconds": options.round_seconds, "connections": options.connections}
    for target in targets:
        run_wrk(target.url, target.script, seconds=options.warmup, connections=options.connections)
    rounds: dict[str, list[Round]] = {t.name: [] for t in targets}
    for _ in range(options.rounds):
        for target in targets:
            rounds[target.name].append(target.round(**load))
    return {name: Figures.of(found) for name, found in rounds.items()}


def check_audit(config: dict[str, str]) -> str:
    """``idp audit verify`` on the bench's database; a broken chain fails the bench."""
    done = subprocess.run(
        [str(IDP), "audit", "verify", "--json"],
        env=environment(config),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        report = {}
    if done.returncode != 0 or not report.get("ok"):
        raise BenchError(f"le journal d'audit ne se vérifie pas : {done.stdout} {done.stderr}")
    return f"audit trail verified: {report['events']} events"


def with_reference(
    options: argparse.Namespace, target: Target, reference: Callable[[], float]
) -> tuple[Figures, float]:
    """A warm-up, then ``--rounds`` rounds of ``target`` with ``reference()`` measured
    before each and after the last (the service idle): the target's medians and the
    reference's median."""
    load = {"seconds": options.round_seconds, "connections": options.connections}
    run_wrk(target.url, target.script, seconds=options.warmup, connections=options.connections)
    rounds, references = [], [reference()]
    for _ in range(options.rounds):
        rounds.append(run_wrk(target.url, target.script, **load))
        references.append(reference())
    return Figures.of(rounds), statistics.median(references)


# ---------------------------------------------------------------- a browser's login

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Browser:
    """A logged-in browser: its cookies (as one ``Cookie`` header) and CSRF form token."""

    cookie: str
    csrf: str


def demo_directory(app: object) -> tuple[Any, Any]:
    """The demo directory and the demo partner site registered (SAML, navigation to its
    ACS); returns the first demo login and the site."""
    from idp.demo import directory as demo

    logins = demo.load(app)  # type: ignore[arg-type]
    site = demo.partner_site(app, base_url="http://127.0.0.1:9")  # type: ignore[arg-type]
    demo.register_partner_site(app, site)  # type: ignore[arg-type]
    return logins[0], site


def login_form(login: Any, csrf: str) -> str:
    """The login form's body for a demo login (SIRET and names), with the CSRF token."""
    from idp.demo.directory import DEMO_PASSWORD

    fields = {
        "csrf_token": csrf,
        "siret": login.siret,
        "nom": login.last_name,
        "prenom": login.first_name,
        "mot_de_passe": DEMO_PASSWORD,
    }
    return urllib.parse.urlencode(fields)


def browser(base_url: str, login: Any | None = None) -> Browser:
    """A browser's CSRF cookie and token (GET /connexion), logged in when ``login`` is
    given (POST /connexion, then the dashboard)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base_url}/connexion", timeout=30) as page:
        found = _CSRF.search(page.read().decode())
    if found is None:
        raise BenchError("pas de jeton anti-CSRF sur /connexion")
    csrf = found.group(1)
    if login is not None:
        body = login_form(login, csrf).encode()
        with opener.open(f"{base_url}/connexion", data=body, timeout=30) as page:
            if not page.geturl().endswith("/tableau-de-bord") and page.status != 200:
                raise BenchError(f"connexion refusée : {page.status} {page.geturl()}")
    cookies = {c.name: c.value for c in jar}
    if login is not None and "idp_session" not in cookies:
        raise BenchError("connexion refusée : pas de cookie de session")
    return Browser("; ".join(f"{k}={v}" for k, v in cookies.items()), csrf)


def post_once(url: str, body: str, cookie: str) -> tuple[int, str]:
    """One form POST (no redirect followed): the status and the body."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
            return None

    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
    )
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as answer:
            return answer.status, answer.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def form_post_lua(body: str, cookie: str) -> str:
    """The request set-up of a wrk script posting ``body`` with ``cookie``."""
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'wrk.headers["Cookie"] = {json.dumps(cookie)}\n'
    )


def bench_declarants(app: Any, count: int, siret: str) -> list[Any]:
    """``count`` active declarants of the establishment ``siret`` (an existing demo one),
    with the demo password hashed at the service's parameters: a load of logins spread
    over accounts as real logins are (one account's lockout counts attempts in flight)."""
    from idp.auth.passwords import passwords
    from idp.demo.directory import DEMO_PASSWORD, DemoLogin
    from idp.stores.db import database
    from rcd_store import services

    letters = "abcdefghijklmnopqrstuvwxyz"
    made = []
    session = database(app).sessions()
    try:
        for number in range(count):
            first = "Banc" + letters[number // 26] + letters[number % 26]
            person = services.add_declarant(
                session,
                siret=siret,
                last_name="Essai",
                first_name=first,
                email=None,
                password=DEMO_PASSWORD,
                passwords=passwords(app),
                actor="bench",
            )
            made.append(DemoLogin(person.id, siret, "Essai", first, ""))
        session.commit()
    finally:
        session.close()
    return made


def rotating_post_lua(bodies: list[str], cookie: str) -> str:
    """A wrk script posting each of ``bodies`` in turn, with ``cookie``."""
    listed = ",\n".join(f"  {json.dumps(body)}" for body in bodies)
    return (
        form_post_lua(bodies[0], cookie) + f"bodies = {{\n{listed}\n}}\n"
        "turn = 0\n"
        "request = function()\n"
        "  turn = turn % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[turn])\n"
        "end\n"
    )
