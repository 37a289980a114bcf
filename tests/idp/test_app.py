import base64
import os
import stat
import time
from typing import Any

import pytest

from idp.config import ConfigError, load
from idp.factory import create_app


def test_config_precedence(tmp_path) -> None:
    env = {
        "IDP_BASE_URL": "https://env.example/",
        "IDP_DEMO": "true",
        "IDP_INSTANCE_PATH": str(tmp_path),
        "IDP_ARGON2_TIME_COST": "3",
    }
    config = load({"DEMO": False}, environ=env)
    assert config["BASE_URL"] == "https://env.example"  # env over default, no trailing slash
    assert config["DEMO"] is False  # override over env
    assert config["ARGON2_TIME_COST"] == 3
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path}/idp.sqlite3"
    assert config["SAML_ENTITY_ID"] == "urn:interops:73282932000074:idp:demo"
    with pytest.raises(ConfigError):
        load(None, environ={"IDP_ARGON2_TIME_COST": "deux"})


def test_embedded_database_generates_a_private_master_key(tmp_path, monkeypatch) -> None:
    for key in [k for k in os.environ if k.startswith("IDP_")]:
        monkeypatch.delenv(key)
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    key_file = tmp_path / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert app.config["MASTER_KEY"] == key_file.read_text().strip()
    again = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert again.config["MASTER_KEY"] == app.config["MASTER_KEY"]


def test_other_database_refuses_to_start_without_master_key(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("IDP_MASTER_KEY", raising=False)
    with pytest.raises(ConfigError, match="IDP_MASTER_KEY"):
        create_app(
            {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": "sqlite:///" + str(tmp_path / "x.db")}
        )


def test_healthz_and_home(app) -> None:
    client = app.test_client()
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["checks"]["database"] == "ok"
    page = client.get("/")
    assert page.status_code == 200 and 'lang="fr"' in page.text
    missing = client.get("/nulle-part")
    assert missing.status_code == 404 and "Page introuvable" in missing.text
    english = client.get("/nulle-part?lang=en")
    assert "Page not found" in english.text
    # an English browser alone keeps the French page (no half-translated pages)
    fresh = app.test_client()
    assert "Page introuvable" in fresh.get("/x", headers={"Accept-Language": "en"}).text
    assert "Page not found" in client.get("/x").text  # the choice is remembered in a cookie


def test_healthz_reports_a_dead_database(app) -> None:
    from sqlalchemy import create_engine

    from idp.stores.db import database

    db = database(app)
    db.engine.dispose()
    db.engine = create_engine("sqlite:////nonexistent/dir/x.db")  # cannot be opened
    db.sessions.configure(bind=db.engine)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["status"] == "erreur"
    assert response.json["checks"]["database"].startswith("erreur")


def test_redis_is_used_and_checked_when_configured(app_config) -> None:
    from tests.conftest import REDIS_URL

    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL not set")
    from idp.stores.replay import RedisReplayCache, replay_cache

    app = create_app({**app_config, "REDIS_URL": REDIS_URL})
    assert isinstance(replay_cache(app), RedisReplayCache)
    body = app.test_client().get("/healthz").json
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    dead = create_app({**app_config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = dead.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["checks"]["redis"].startswith("erreur")
    from idp.stores.db import database

    for created in (app, dead):
        database(created).engine.dispose()
        created.extensions["idp.redis"].close()


def test_database_replay_cache_by_default(app_config) -> None:
    from idp.stores.db import database
    from idp.stores.replay import SqlReplayCache, replay_cache

    app = create_app({**app_config, "REDIS_URL": None})
    assert isinstance(replay_cache(app), SqlReplayCache)
    database(app).engine.dispose()


def test_trusted_proxies_give_the_client_address(app_config) -> None:
    """Behind a proxy, rate limits need the real client address; untrusted headers are ignored."""
    from flask import request

    seen: list[str | None] = []
    direct = create_app(app_config)
    proxied = create_app({**app_config, "TRUSTED_PROXIES": 1})
    for flask_app in (direct, proxied):
        flask_app.before_request(lambda: seen.append(request.remote_addr))
        flask_app.test_client().get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"})
    assert seen == ["127.0.0.1", "203.0.113.7"]
    from idp.stores.db import database

    for flask_app in (direct, proxied):
        database(flask_app).engine.dispose()


# --------------------------------------------------------------- stores unreachable
# Issue 13 item 8 in-process (the server-process tests are tests/flows/test_store_outage.py
# and tests/flows/test_faults.py).


def _app_with(app_config: dict, **overrides: object) -> Any:
    flask_app = create_app({**app_config, **overrides})
    flask_app.config["TESTING"] = True
    return flask_app


def _close(flask_app: Any) -> None:
    from idp.stores.db import database

    database(flask_app).engine.dispose()
    if flask_app.extensions.get("idp.redis") is not None:
        flask_app.extensions["idp.redis"].close()


def _timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _assert_unavailable(response: Any, *, json: bool) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)[:300]
    assert response.headers["Retry-After"] == "5"
    if json:
        assert response.json["error"] == "temporarily_unavailable"
        assert "momentanément indisponible" in response.json["error_description"]
    else:
        assert "Service momentanément indisponible" in response.get_data(as_text=True)


def test_redis_refused_gives_503_with_a_clear_message(app_config) -> None:
    from tests.flows.server_support import free_port

    flask_app = _app_with(app_config, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        client = flask_app.test_client()
        client.set_cookie("idp_session", "x" * 43)
        _assert_unavailable(client.get("/tableau-de-bord"), json=False)
        token = client.post("/oauth/token", data={"grant_type": "client_credentials"})
        _assert_unavailable(token, json=True)
        from tests.idp.login_support import login_siret

        _assert_unavailable(login_siret(flask_app.test_client()), json=False)
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json["checks"]["redis"].startswith("erreur")
        assert health.json["checks"]["database"] == "ok"
    finally:
        _close(flask_app)


def test_redis_that_accepts_but_never_answers_is_bounded(app_config) -> None:
    """A Redis behind a network that drops packets: each call ends by IDP_REDIS_TIMEOUT,
    never retried after a timeout; /healthz answers within 2 s."""
    from tests.flows.server_support import free_port
    from tests.flows.tcp_proxy import proxy_to

    with proxy_to("127.0.0.1", free_port()) as proxy:
        proxy.set_mode("drop")
        flask_app = _app_with(app_config, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0")
        try:
            client = flask_app.test_client()
            client.set_cookie("idp_session", "x" * 43)
            response, elapsed = _timed(lambda: client.get("/tableau-de-bord"))
            _assert_unavailable(response, json=False)
            assert elapsed < 2.5
            token, elapsed = _timed(
                lambda: client.post("/oauth/token", data={"grant_type": "client_credentials"})
            )
            _assert_unavailable(token, json=True)
            assert elapsed < 2.5
            health, elapsed = _timed(lambda: client.get("/healthz"))
            assert health.status_code == 503 and elapsed < 2
        finally:
            _close(flask_app)


def test_unreachable_database_gives_503_not_500(app_config) -> None:
    from sqlalchemy import create_engine

    from idp.stores.db import database

    app = _app_with(app_config, REDIS_URL=None)  # SSO sessions in the database
    db = database(app)
    db.engine.dispose()
    db.engine = create_engine("sqlite:////nonexistent/dir/x.db")  # cannot be opened
    db.sessions.configure(bind=db.engine)
    client = app.test_client()
    client.set_cookie("idp_session", "x" * 43)
    _assert_unavailable(client.get("/tableau-de-bord"), json=False)
    # credentials to look up (a request without any is refused before the database)
    basic = {"Authorization": "Basic " + base64.b64encode(b"client:secret").decode()}
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=basic)
    _assert_unavailable(token, json=True)


def test_store_timeouts_are_configurable(tmp_path) -> None:
    from idp.stores.db import timeouts

    defaults = load(None, environ={})
    assert (defaults["DB_CONNECT_TIMEOUT"], defaults["DB_STATEMENT_TIMEOUT"]) == (2.0, 2.0)
    assert defaults["REDIS_TIMEOUT"] == 1.0
    config = load(None, environ={"IDP_DB_STATEMENT_TIMEOUT": "4.5", "IDP_REDIS_TIMEOUT": "0.5"})
    bounds = timeouts(config)
    assert bounds.statement == 4.5 and bounds.deadline == 5.5
    args = bounds.connect_args()
    assert args["options"] == "-c statement_timeout=4500" and args["connect_timeout"] == 2
    assert config["REDIS_TIMEOUT"] == 0.5
    for wrong in ("deux", "-1", "nan"):
        with pytest.raises(ConfigError, match="IDP_DB_CONNECT_TIMEOUT"):
            load(None, environ={"IDP_DB_CONNECT_TIMEOUT": wrong})


def test_store_failure_after_the_view_is_503_too(app_config) -> None:
    """A store error raised where Flask only offers its 500 handler (after_request) is
    still answered 503, not 500."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    flask_app = _app_with(app_config)
    flask_app.config["TESTING"] = False  # the real error path, not propagated to the test

    def late(_response: Any) -> Any:
        raise RedisTimeoutError("Timeout reading from socket")

    flask_app.after_request_funcs.setdefault(None, []).insert(0, late)
    try:
        _assert_unavailable(flask_app.test_client().get("/"), json=False)
    finally:
        _close(flask_app)
