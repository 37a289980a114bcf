import os
import stat

import pytest

from app import create_app
from idp.config import ConfigError, load


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

    from idp.db import database

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
    from idp.replay import RedisReplayCache, replay_cache

    app = create_app({**app_config, "REDIS_URL": REDIS_URL})
    assert isinstance(replay_cache(app), RedisReplayCache)
    body = app.test_client().get("/healthz").json
    assert body["checks"] == {"database": "ok", "redis": "ok"}
    dead = create_app({**app_config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    response = dead.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["checks"]["redis"].startswith("erreur")
    from idp.db import database

    for created in (app, dead):
        database(created).engine.dispose()
        created.extensions["idp.redis"].close()


def test_database_replay_cache_by_default(app_config) -> None:
    from idp.db import database
    from idp.replay import SqlReplayCache, replay_cache

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
    from idp.db import database

    for flask_app in (direct, proxied):
        database(flask_app).engine.dispose()
