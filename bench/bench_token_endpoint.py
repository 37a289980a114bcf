"""The token endpoint under load: client_credentials, ES256, gunicorn, driven by wrk.

Run: ``python bench/bench_token_endpoint.py [--workers 2] [--connections 4]
[--rounds 5] [--round-seconds 2] [--warmup 2]``. Prints one line. Needs ``wrk``
(Debian: ``apt-get install wrk``). Run by hand: CI does not run benches.

What it does, all on this machine and only on 127.0.0.1:

1. A temporary instance folder; the database is SQLite in it, or
   ``IDP_BENCH_DATABASE_URL`` (PostgreSQL: an empty database, or one whose signing
   keys are sealed under ``IDP_MASTER_KEY``, which the bench then reuses). Migrated,
   ES256 JWT keys, a partner with one service and a confidential client
   (``client_credentials``, ``client_secret_basic``). The per-client rate limit is
   switched off (``IDP_TOKEN_RATE_LIMIT=0``): the figure is the endpoint's cost.
2. ``gunicorn 'app:create_app()'`` on a free loopback port (``--workers`` sync
   workers), its log in the instance folder; ready when discovery answers. One
   token is asked for and checked (HTTP 200, ``at+jwt``, ES256, verifies against
   the JWKS) before any load.
3. ``wrk`` (one thread, ``--connections``, a Lua script setting the POST body
   and the Basic credentials): a warm-up run, then ``--rounds`` rounds; each
   round's requests per second and p50/p99 latency, any non-2xx answer or socket
   error makes the bench fail.
4. The reference (docs/architecture.md, "Règles du code" 4): the raw ES256
   signature rate of the IdP's own active key on one core (``cryptography``, the
   signing input of a real token), measured in this process between rounds while
   the server is idle.
5. The server is stopped (SIGTERM to the gunicorn master it started, SIGKILL after
   10 s) whatever happens.

The line: median requests per second, median p50 and p99 latency, the raw
signature rate, and their ratio (requests per second per raw signature per second;
two workers on two cores, with wrk sharing them, stay well under 2).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
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
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVICE = "BENCH"
PAGM = "BENCH_DECLARANT"
READY_TIMEOUT = 60.0

LUA = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %(basic)s"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"errors": %%d, "non2xx": %%d}\\n',
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


# ------------------------------------------------------------------------ setup


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings(instance: Path, port: int) -> dict[str, str]:
    """The configuration shared by this process and the gunicorn workers."""
    from keys.crypto import MasterKey

    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": os.environ.get("IDP_BENCH_DATABASE_URL")
        or f"sqlite:///{instance / 'idp.sqlite3'}",
        "MASTER_KEY": os.environ.get("IDP_MASTER_KEY") or MasterKey.generate().to_text(),
        "SECRET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "BASE_URL": f"http://127.0.0.1:{port}",
        "JWT_ALG": "ES256",
        "TOKEN_RATE_LIMIT": "0",
    }


def prepare(config: dict[str, str]) -> tuple[str, str]:
    """Migrate, ES256 keys, one service, one partner with a client_credentials client.

    Returns ``(client_id, client_secret)``.
    """
    from sqlalchemy import select

    from idp.factory import create_app
    from idp.stores.db import database
    from idp.tokens.signing import ensure_keys, keyring
    from keys.crypto import KeyDecryptionError
    from keys.model import KeyUse
    from partners.services import ClientSettings, PartnerSettings, add_partner
    from rcd_store import services
    from rcd_store.models import Service

    app = create_app(dict(config))
    db = database(app)
    db.upgrade()
    try:
        ensure_keys(app)
        alg = keyring(app).active(KeyUse.JWT).alg
    except KeyDecryptionError:
        raise BenchError(
            "les clés de cette base sont scellées sous une autre clé maîtresse : "
            "donnez IDP_MASTER_KEY, ou une base vide dans IDP_BENCH_DATABASE_URL"
        ) from None
    if alg != "ES256":
        raise BenchError("la clé JWT active de cette base n'est pas ES256")
    suffix = os.urandom(4).hex()
    session = db.sessions()
    try:
        if session.scalars(select(Service.id).where(Service.code == SERVICE)).first() is None:
            services.add_service(
                session,
                code=SERVICE,
                name="Service du banc d'essai",
                partner="Banc",
                pagm={"DECLARANT": PAGM},
                actor="bench",
            )
        client = ClientSettings(
            client_id=f"bench-{suffix}",
            grants=["client_credentials"],
            token_auth="client_secret_basic",
            scopes=[],
        )
        registered = add_partner(
            session,
            PartnerSettings(
                name=f"Banc d'essai {suffix}",
                services=[SERVICE],
                client=client,
                api_audience=f"urn:interops:bench:{suffix}:api",
            ),
            actor="bench",
        )
        session.commit()
    finally:
        session.close()
    db.engine.dispose()
    assert registered.client_secret is not None
    return client.client_id, registered.client_secret


# ----------------------------------------------------------------------- server


def start_server(
    config: dict[str, str], port: int, workers: int, log: Path
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update({f"IDP_{k}": v for k, v in config.items()})
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--error-logfile",
        str(log),
        "app:create_app()",
    ]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the gunicorn master started here (it stops its workers), then SIGKILL."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def wait_ready(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"gunicorn s'est arrêté :\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base_url}/.well-known/openid-configuration", timeout=2):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise BenchError("gunicorn n'a pas répondu à temps")


def token_once(base_url: str, basic: str) -> str:
    """One client_credentials token, checked: HTTP 200, at+jwt, ES256, verifies."""
    from token_suite import jwt as interops_jwt
    from token_suite.trust import Trust

    request = urllib.request.Request(
        f"{base_url}/oauth/token",
        data=b"grant_type=client_credentials",
        headers={
            "Authorization": f"Basic {basic}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            body = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise BenchError(
            f"le point de jeton refuse client_credentials : {exc.code} {exc.read()[:300]!r}"
        ) from None
    token = str(body["access_token"])
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    if header.get("alg") != "ES256" or header.get("typ", "").lower() != "at+jwt":
        raise BenchError(f"jeton inattendu : en-tête {header}")
    with urllib.request.urlopen(f"{base_url}/.well-known/jwks.json", timeout=10) as answer:
        trust = Trust.from_jwks(json.loads(answer.read()), issuer=base_url)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    interops_jwt.verify(token, trust=trust, audience=payload["aud"], typ="at+jwt")
    return token


# ------------------------------------------------------------------------- load


def run_wrk(url: str, script: Path, *, seconds: float, connections: int) -> Round:
    command = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "--script",
        str(script),
        url,
    ]
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=seconds + 60
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk a échoué ({done.returncode}) : {done.stderr or done.stdout}")
    stats = json.loads(line.removeprefix("BENCH "))
    if stats["errors"] or stats["non2xx"] or not stats["requests"]:
        raise BenchError(f"réponses en erreur pendant la charge : {stats}")
    return Round(
        stats["requests"] / (stats["duration_us"] / 1e6),
        stats["p50_us"] / 1000,
        stats["p99_us"] / 1000,
    )


def raw_sign_rate(config: dict[str, str], token: str, seconds: float = 0.5) -> float:
    """Raw ES256 signatures per second of the IdP's active key, one core, same input."""
    from idp.factory import create_app
    from idp.stores.db import database
    from idp.tokens.signing import keyring
    from keys.model import KeyUse

    app = create_app(dict(config))
    key = keyring(app).active(KeyUse.JWT)
    database(app).engine.dispose()
    private = key.private_key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    data = token.rsplit(".", 1)[0].encode("ascii")
    algorithm = ec.ECDSA(hashes.SHA256())
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            private.sign(data, algorithm)
        count += 50
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-seconds", type=float, default=2.0)
    parser.add_argument("--keep", action="store_true", help="keep the instance folder")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk absent : apt-get install wrk", file=sys.stderr)
        return 2
    instance = Path(tempfile.mkdtemp(prefix="idp-bench-"))
    try:
        return bench(options, instance)
    except BenchError as exc:
        print(f"échec du banc d'essai : {exc}", file=sys.stderr)
        return 1
    finally:
        if not options.keep:
            shutil.rmtree(instance, ignore_errors=True)


def bench(options: argparse.Namespace, instance: Path) -> int:
    port = free_port()
    config = settings(instance, port)
    client_id, secret = prepare(config)
    basic = base64.b64encode(
        f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}".encode()
    ).decode()
    script = instance / "token.lua"
    script.write_text(LUA % {"basic": basic})
    log = instance / "gunicorn.log"
    base_url = config["BASE_URL"]
    server = start_server(config, port, options.workers, log)
    try:
        wait_ready(base_url, server, log)
        token = token_once(base_url, basic)
        url = f"{base_url}/oauth/token"
        run_wrk(url, script, seconds=options.warmup, connections=options.connections)
        rounds, raw = [], [raw_sign_rate(config, token)]
        for _ in range(options.rounds):
            rounds.append(
                run_wrk(url, script, seconds=options.round_seconds, connections=options.connections)
            )
            raw.append(raw_sign_rate(config, token))
    finally:
        stop_server(server)
    print(summary(rounds, statistics.median(raw), options, config))
    return 0


def summary(
    rounds: list[Round], raw: float, options: argparse.Namespace, config: dict[str, str]
) -> str:
    rps = statistics.median(r.rps for r in rounds)
    p50 = statistics.median(r.p50_ms for r in rounds)
    p99 = statistics.median(r.p99_ms for r in rounds)
    database = config["DATABASE_URL"].split(":", 1)[0].split("+", 1)[0]
    return (
        f"token endpoint client_credentials ES256 (gunicorn {options.workers} workers, "
        f"{database}, wrk {options.connections} conn, median of {len(rounds)} x "
        f"{options.round_seconds:g}s): {rps:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
        f"raw ES256 sign {raw:.0f}/s on one core; ratio {rps / raw:.3f}"
    )


if __name__ == "__main__":
    sys.exit(main())
