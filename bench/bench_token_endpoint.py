"""The token endpoint against node oidc-provider's, in the same run.

Run: ``python bench/bench_token_endpoint.py [--workers 2] [--connections 16]
[--rounds 2] [--round-seconds 5] [--database-url URL --redis-url URL
[--fresh-database]]``. Needs ``wrk`` and ``bench/node`` installed (``npm ci``).

Both sides issue the same thing: a ``client_credentials`` access token, an ES256 JWT
(``at+jwt``), to a confidential client authenticated by ``client_secret_basic``.

1. A temporary instance folder; SQLite in it, or the given PostgreSQL (with Redis). A
   partner with one service and the client; the per-client token limit raised far above
   what the bench sends (``IDP_TOKEN_RATE_LIMIT``), the limiter still running.
2. Our service under ``idp serve --workers N`` (the production server); node
   oidc-provider 9 in one process, ``NODE_ENV=production``, the same grant, client
   authentication and token format (``bench/node/server.js``). One token asked of each
   and checked (HTTP 200, ES256, ``at+jwt``; ours verified against our JWKS).
3. wrk (one thread, 16 connections, a Lua script with the POST body and the Basic
   credentials): a warm-up of each, then the rounds, ours and node's interleaved; any
   answer that is not a success (429, 500...) or a socket error fails the bench.
4. ``idp audit verify`` after the load: every token issued is in a chain that verifies.

Prints each side's median req/s, p50, p99 and CPU per request (user + system of its
processes over the round, which a busy neighbour moves less than the rates), the audit
check, then LAST the ratio line:
``ratio ours/node: X.XXx req/s (p99 ours A ms, node B ms)``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness

SERVICE = "BENCH"
PAGM = "BENCH_DECLARANT"
LUA = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic %s"
"""


def client(app: object) -> tuple[str, str]:
    """One service and a partner with a client_credentials, client_secret_basic client."""
    from sqlalchemy import select

    from idp.stores.db import database
    from partners.services import ClientSettings, PartnerSettings, add_partner
    from rcd_store import services
    from rcd_store.models import Service

    suffix = os.urandom(4).hex()
    session = database(app).sessions()  # type: ignore[arg-type]
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
        settings = ClientSettings(
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
                client=settings,
                api_audience=f"urn:interops:bench:{suffix}:api",
            ),
            actor="bench",
        )
        session.commit()
    finally:
        session.close()
    assert registered.client_secret is not None
    return settings.client_id, registered.client_secret


def basic(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: form-urlencoded, then base64."""
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return base64.b64encode(pair.encode()).decode()


def token_once(url: str, credentials: str) -> str:
    """One client_credentials token: HTTP 200, ES256, at+jwt."""
    request = urllib.request.Request(
        url,
        data=b"grant_type=client_credentials",
        headers={
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            token = str(json.loads(answer.read())["access_token"])
    except urllib.error.HTTPError as exc:
        raise harness.BenchError(f"{url} refuse client_credentials : {exc.code}") from None
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    if header.get("alg") != "ES256" or header.get("typ", "").lower() != "at+jwt":
        raise harness.BenchError(f"jeton inattendu de {url} : en-tête {header}")
    return token


def verify_ours(base_url: str, token: str) -> None:
    from token_suite import jwt as interops_jwt
    from token_suite.trust import Trust

    with urllib.request.urlopen(f"{base_url}/.well-known/jwks.json", timeout=10) as answer:
        trust = Trust.from_jwks(json.loads(answer.read()), issuer=base_url)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    interops_jwt.verify(token, trust=trust, audience=payload["aud"], typ="at+jwt")


def bench(options: argparse.Namespace, instance: Path) -> list[str]:
    port = harness.free_port(options.port_base)
    node_port = harness.free_port(port + 1)
    config = harness.settings(options, instance, port)
    client_id, secret = client(harness.prepared_app(options, config))
    node_id, node_secret = "bench-node", base64.urlsafe_b64encode(os.urandom(24)).decode()
    with (
        harness.ours(options, config, instance) as our_server,
        harness.node(node_port, node_id, node_secret, instance) as node_server,
    ):
        ours = harness.Target(
            "ours",
            f"{config['BASE_URL']}/oauth/token",
            harness.lua_script(instance, "ours", LUA % basic(client_id, secret)),
            group=our_server.pid,
        )
        peer = harness.Target(
            "node",
            f"http://127.0.0.1:{node_port}/token",
            harness.lua_script(instance, "node", LUA % basic(node_id, node_secret)),
            group=node_server.pid,
        )
        verify_ours(config["BASE_URL"], token_once(ours.url, basic(client_id, secret)))
        token_once(peer.url, basic(node_id, node_secret))
        figures = harness.interleaved(options, [ours, peer])
    audit = harness.check_audit(config)
    mine, theirs = figures["ours"], figures["node"]
    head = (
        f"token endpoint client_credentials ES256 ({harness.database_name(config)}; "
        f"idp serve --workers {options.workers}; node oidc-provider 1 process; wrk "
        f"{options.connections} conn, median of {options.rounds} x {options.round_seconds:g}s "
        f"interleaved)"
    )
    return [
        head,
        mine.line("ours"),
        theirs.line("node"),
        audit,
        (
            f"ratio ours/node: {mine.rps / theirs.rps:.2f}x req/s "
            f"(p99 ours {mine.p99_ms:.1f} ms, node {theirs.p99_ms:.1f} ms)"
        ),
    ]


if __name__ == "__main__":
    sys.exit(harness.run_main(__doc__.splitlines()[0], bench))
