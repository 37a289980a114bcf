"""The Redis client, when ``IDP_REDIS_URL`` is configured (sessions, replay cache, limits)."""

from __future__ import annotations

from typing import Any

from flask import Flask


def init_app(app: Flask) -> Any:
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    app.extensions["idp.redis"] = client
    return client
