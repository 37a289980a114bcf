"""Issue 13 item 8, the fault test: gunicorn with two workers on PostgreSQL and Redis, each
reached through a TCP proxy the test cuts, under a light mixed load (token endpoint,
dashboard of a logged-in declarant, login page, health check).

Each store in turn is refused for 10 s (a store that is down), then unreachable for 40 s
(packets dropped: connections accepted, nothing answered, open connections silent too).
Throughout: no worker killed by gunicorn's timeout, no answer other than the normal one
or 503, every answer in under 5 s, ``/healthz`` in under 2 s and 503 while a store is cut,
and full service again within 5 s of the store's return, without a restart.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, REDIS_URL
from tests.flows.server_support import Server, gunicorn
from tests.flows.tcp_proxy import TcpProxy, proxy_to
from tests.idp.oauth_a2a_support import CNAV_API, setup_a2a

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

REFUSED = 10.0  # seconds a store is refused
DROPPED = 40.0  # seconds a store drops packets
RECOVERY = 5.0  # full service within this many seconds of the store's return
ANSWER = 5.0  # every answer within this
HEALTH = 2.0  # /healthz within this
GUNICORN_TIMEOUT = 10  # a request blocked longer than this gets its worker killed
FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Sample:
    kind: str
    started: float
    elapsed: float
    status: int  # 0: no HTTP answer at all
    detail: str = ""


@dataclass
class Outage:
    store: str
    mode: str
    start: float
    end: float = 0.0


@dataclass
class Load:
    """A client thread per kind of request, each one request at a time, and the samples."""

    base_url: str
    requests: dict[str, Callable[[requests.Session], requests.Response]]
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self, kinds: list[str], pause: float) -> None:
        session = requests.Session()
        turn = 0
        while not self.stop.is_set():
            kind = kinds[turn % len(kinds)]
            turn += 1
            started = time.monotonic()
            try:
                response = self.requests[kind](session)
                status, detail = response.status_code, response.text[:200]
            except requests.RequestException as exc:
                status, detail = 0, repr(exc)
            self.samples.append(Sample(kind, started, time.monotonic() - started, status, detail))
            self.stop.wait(pause)

    @classmethod
    def start(cls, load: Load) -> list[threading.Thread]:
        plans = [(["token", "dashboard", "page"], 0.1), (["healthz"], 0.4)]
        threads = [threading.Thread(target=load.run, args=plan, daemon=True) for plan in plans]
        for thread in threads:
            thread.start()
        return threads


OK = {"token": 200, "dashboard": 200, "page": 200, "healthz": 200}


@pytest.fixture
def proxies() -> Iterator[dict[str, TcpProxy]]:
    if not (PG_URL and REDIS_URL):
        pytest.skip("IDP_TEST_DATABASE_URL and IDP_TEST_REDIS_URL needed")
    pg, rd = make_url(PG_URL), make_url(REDIS_URL)
    with (
        proxy_to(pg.host or "127.0.0.1", pg.port or 5432) as db_proxy,
        proxy_to(rd.host or "127.0.0.1", rd.port or 6379) as redis_proxy,
    ):
        yield {"database": db_proxy, "redis": redis_proxy}


def _through(proxies: dict[str, TcpProxy], app_config: dict[str, Any]) -> dict[str, Any]:
    database = make_url(app_config["DATABASE_URL"]).set(port=proxies["database"].port)
    redis = make_url(app_config["REDIS_URL"]).set(port=proxies["redis"].port)
    return {
        **app_config,
        "DATABASE_URL": database.render_as_string(hide_password=False),
        "REDIS_URL": redis.render_as_string(hide_password=False),
    }


def _login(server: Server) -> str:
    """The SSO cookie of the declarant of ``setup_a2a``, logged in through the server."""
    browser = requests.Session()
    page = browser.get(f"{server.base_url}/connexion?force=1", timeout=10).text
    token = FORM_TOKEN.search(page)
    assert token, page[:500]
    from tests import factories

    answer = browser.post(
        f"{server.base_url}/connexion",
        data={
            "csrf_token": token.group(1),
            "siret": factories.SIRET_A,
            "nom": "Dupont",
            "prenom": "Élodie",
            "mot_de_passe": factories.PASSWORD,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code in (302, 303), answer.text[:500]
    cookie = browser.cookies.get("idp_session")
    assert cookie
    return cookie


def _requests(server: Server, secret: str, cookie: str) -> dict[str, Any]:
    base = server.base_url

    def token(session: requests.Session) -> requests.Response:
        return session.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials", "resource": CNAV_API},
            auth=("cnav-app", secret),
            timeout=15,
        )

    def dashboard(session: requests.Session) -> requests.Response:
        return session.get(
            f"{base}/tableau-de-bord",
            cookies={"idp_session": cookie},
            allow_redirects=False,
            timeout=15,
        )

    def page(session: requests.Session) -> requests.Response:
        return session.get(f"{base}/connexion?force=1", timeout=15)

    def healthz(session: requests.Session) -> requests.Response:
        return session.get(f"{base}/healthz", timeout=15)

    return {"token": token, "dashboard": dashboard, "page": page, "healthz": healthz}


def _cut(proxy: TcpProxy, store: str, mode: str, seconds: float) -> Outage:
    outage = Outage(store, mode, time.monotonic())
    proxy.set_mode(mode)
    time.sleep(seconds)
    proxy.set_mode("pass")
    outage.end = time.monotonic()
    time.sleep(RECOVERY + 1.5)
    return outage


def _check(samples: list[Sample], outages: list[Outage]) -> list[str]:
    """Every breach of the rules of the module docstring, as readable lines."""
    problems: list[str] = []
    for s in samples:
        label = (
            f"{s.kind} at +{s.started - samples[0].started:.1f}s: {s.status} in {s.elapsed:.2f}s"
        )
        if s.status not in (OK[s.kind], 503):
            problems.append(f"{label} (neither {OK[s.kind]} nor 503): {s.detail}")
        limit = HEALTH if s.kind == "healthz" else ANSWER
        if s.elapsed >= limit:
            problems.append(f"{label} (slower than {limit}s)")
        for o in outages:
            cut = f"{o.store} {o.mode}"
            during = s.started >= o.start and s.started + s.elapsed < o.end
            if s.kind == "healthz" and during and s.status != 503:
                problems.append(f"{label} (healthz not 503 while {cut})")
            # a sample that meets the next cut (started before it, answered during it) is
            # that cut's, not a failure to recover from this one
            meets_a_cut = any(
                p.start <= s.started + s.elapsed and s.started < p.end for p in outages
            )
            recovering = o.end + RECOVERY <= s.started < o.end + RECOVERY + 1.5
            if recovering and not meets_a_cut and s.status != 200:
                problems.append(f"{label} (not served {RECOVERY}s after {cut} ended)")
    for o in outages:
        felt = [s for s in samples if o.start <= s.started < o.end and s.status == 503]
        if not felt:
            problems.append(f"no 503 while {o.store} {o.mode}: was the store really cut?")
    return problems


def test_stores_refused_then_dropped_under_load(
    app: Any,
    app_config: dict[str, Any],
    session: Any,
    proxies: dict[str, TcpProxy],
    tmp_path: Path,
) -> None:
    world = setup_a2a(app, session)
    config = {**_through(proxies, app_config), "TOKEN_RATE_LIMIT": 0}
    with gunicorn(config, tmp_path, workers=2, timeout=GUNICORN_TIMEOUT) as server:
        workers = sorted(server.workers())
        load = Load(
            server.base_url,
            _requests(server, world.secrets["cnav-app"], _login(server)),
        )
        for kind, call in load.requests.items():  # all served before anything is cut
            assert call(requests.Session()).status_code == OK[kind], kind
        threads = Load.start(load)
        outages: list[Outage] = []
        try:
            time.sleep(1)
            for store in ("database", "redis"):
                outages.append(_cut(proxies[store], store, "refuse", REFUSED))
                outages.append(_cut(proxies[store], store, "drop", DROPPED))
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(timeout=20)
        for o in outages:
            during = [s for s in load.samples if o.start <= s.started < o.end]
            slowest = max((s.elapsed for s in during), default=0.0)
            failed = sum(s.status == 503 for s in during)
            print(
                f"{o.store} {o.mode}: {len(during)} requests, {failed} 503, slowest {slowest:.2f}s"
            )
        problems = _check(load.samples, outages)
        assert not problems, "\n".join(problems[:40])
        assert sorted(server.workers()) == workers, server.log_text()[-3000:]
        assert "WORKER TIMEOUT" not in server.log_text()
        assert len(load.samples) > 200
