"""What the hot-path tests count: SQL statements and Redis commands an app sends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def store_calls(app: Any) -> Iterator[list[str]]:
    """Every SQL statement sent by ``app``'s engine and every Redis command, while open."""
    from idp.stores.db import database

    seen: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = database(app).engine
    event.listen(engine, "before_cursor_execute", on_statement)
    redis = app.extensions.get("idp.redis")
    original = redis.execute_command if redis is not None else None
    if redis is not None:

        def counted(*args: Any, **kwargs: Any) -> Any:
            seen.append(f"redis {args[0]}")
            return original(*args, **kwargs)  # type: ignore[misc]

        redis.execute_command = counted
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        if redis is not None:
            del redis.execute_command
