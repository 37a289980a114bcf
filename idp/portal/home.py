"""Home page and health check."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from functools import partial
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template
from sqlalchemy import text
from sqlalchemy.engine import Engine

from idp.stores import db, redis_client
from idp.web.answers import no_store

bp = Blueprint("home", __name__)

#: Seconds the health check waits for the stores: it answers within 2 s whatever is down.
HEALTH_BUDGET = 1.0


@bp.get("/")
def index() -> str:
    return render_template("home.html")


def _probe_database(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _probe_redis(client: Any) -> None:
    client.ping()


def _run_probes(probes: dict[str, Callable[[], None]], budget: float) -> dict[str, str]:
    """Run every probe at once; a probe still running after ``budget`` seconds is
    reported as not answering (it ends by itself: each store call has its timeout)."""
    executor = ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="healthz")
    futures = {name: executor.submit(probe) for name, probe in probes.items()}
    wait(futures.values(), timeout=budget)
    executor.shutdown(wait=False)
    checks: dict[str, str] = {}
    for name, future in futures.items():
        if not future.done():
            checks[name] = f"erreur : pas de réponse en {budget:g} s"
        elif (error := future.exception()) is not None:
            checks[name] = f"erreur : {type(error).__name__}"
        else:
            checks[name] = "ok"
    return checks


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database and, if configured, Redis answer; 503 otherwise, within
    ``HEALTH_BUDGET`` seconds even when a store does not answer at all."""
    probes: dict[str, Callable[[], None]] = {
        "database": partial(_probe_database, db.database().engine)
    }
    client = current_app.extensions.get(redis_client.EXTENSION)
    if client is not None:
        probes["redis"] = partial(_probe_redis, client)
    checks = _run_probes(probes, HEALTH_BUDGET)
    healthy = all(value == "ok" for value in checks.values())
    response = no_store(jsonify(status="ok" if healthy else "erreur", checks=checks))
    return response, 200 if healthy else 503
