"""The Redis client, when ``IDP_REDIS_URL`` is configured (sessions, replay cache, limits).

Every call is bounded by ``IDP_REDIS_TIMEOUT`` (connecting included), and a failed call
is retried at most once, at once, and only when the connection was refused or reset (a
pooled connection Redis closed while restarting), never after a timeout: a Redis that
does not answer costs a request one timeout, then :mod:`idp.web.errors` answers 503.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

EXTENSION = "idp.redis"


def connect(url: str, timeout: float) -> Any:
    """A client for ``url`` whose calls end within ``timeout`` seconds."""
    import redis
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


def init_app(app: Flask) -> Any:
    url = app.config.get("REDIS_URL")
    if not url:
        return None
    client = connect(url, float(app.config["REDIS_TIMEOUT"]))
    app.extensions[EXTENSION] = client
    return client
