"""Per-process caches under generation counters (issue 18): the token endpoint reads no
table per request, and a change made by another process (the CLI) is seen within one
second: a client whose secret changed, or that lost the grant, is refused by then."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update

from idp.stores.generations import POLL_SECONDS, generations
from idp.stores.models import CacheGeneration
from partners.models import OAuthClient
from tests.idp.oauth_support import basic, setup_world
from tests.idp.process_support import process_env

ROOT = Path(__file__).resolve().parents[2]


def _counter(session: Any, name: str) -> int:
    found = session.scalar(select(CacheGeneration.value).where(CacheGeneration.name == name))
    return int(found or 0)


def _token(app: Any, client_id: str, secret: str) -> Any:
    return app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, secret),
    )


def test_a_change_bumps_its_generation_in_its_own_transaction(app: Any, session: Any) -> None:
    world = setup_world(app, session, extra_grants=("client_credentials",))
    before = _counter(session, "partners")
    assert before >= 1  # registering the partner moved it
    client = session.scalars(select(OAuthClient)).one()
    client.scopes = ["openid"]
    session.rollback()  # a change rolled back moves nothing
    assert _counter(session, "partners") == before
    session.execute(
        update(OAuthClient).where(OAuthClient.client_id == world.client_id).values(scopes=[])
    )
    session.commit()  # bulk statements too
    assert _counter(session, "partners") == before + 1


def test_the_token_endpoint_reads_no_table_once_warm(app: Any, session: Any) -> None:
    world = setup_world(app, session, extra_grants=("client_credentials",))
    assert _token(app, world.client_id, world.secret or "").status_code == 200
    from idp.stores.db import database

    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = database(app).engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for _ in range(3):
            assert _token(app, world.client_id, world.secret or "").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert [s for s in reads if "cache_generation" not in s] == []
    assert len([s for s in reads if "cache_generation" in s]) <= 1  # one poll per 0.5 s


def _cli(app_config: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from idp.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=process_env(app_config),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _refused_within(app: Any, client_id: str, secret: str, seconds: float) -> float:
    """Seconds until the token endpoint refuses ``client_id``/``secret`` (asserts it does
    within ``seconds``)."""
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        if _token(app, client_id, secret).status_code != 200:
            return elapsed
        assert elapsed < seconds, "still served from a stale cache"
        time.sleep(0.02)


def test_a_secret_changed_or_a_grant_removed_by_the_cli_is_refused_within_a_second(
    app: Any, session: Any, app_config: dict[str, Any]
) -> None:
    world = setup_world(app, session, extra_grants=("client_credentials",))
    old = world.secret or ""
    assert _token(app, world.client_id, old).status_code == 200  # cached now
    generations(app).refresh()
    grants = ["--grant", "authorization_code", "--grant", "client_credentials"]
    common = ["--client-id", world.client_id, "--redirect-uri", "https://rp.example/callback"]
    changed = _cli(
        app_config, "partner", "edit", "URSSAF", *common, *grants, "--new-secret", "--json"
    )
    assert changed.returncode == 0, changed.stderr
    assert _refused_within(app, world.client_id, old, 1.0) <= 2 * POLL_SECONDS + 0.1
    import json

    new = json.loads(changed.stdout)["client_secret"]
    assert _token(app, world.client_id, new).status_code == 200
    removed = _cli(
        app_config, "partner", "edit", "URSSAF", *common, "--grant", "authorization_code"
    )
    assert removed.returncode == 0, removed.stderr
    _refused_within(app, world.client_id, new, 1.0)
    refused = _token(app, world.client_id, new)
    assert refused.json["error"] == "unauthorized_client"
