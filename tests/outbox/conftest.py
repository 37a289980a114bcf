"""``make_app(**settings)``: an app on the test's database with more settings; its
background sender stopped and its engine disposed when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from idp.factory import create_app
from idp.outbox.delivery import background
from idp.stores.db import database


@pytest.fixture
def make_app(app_config: dict[str, Any]) -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def make(**settings: Any) -> Any:
        app = create_app(app_config | settings)
        app.config["TESTING"] = True
        made.append(app)
        return app

    yield make
    for app in made:
        sender = background(app)
        if sender is not None:
            sender.stop()
        database(app).engine.dispose()
        redis_client = app.extensions.get("idp.redis")
        if redis_client is not None:
            redis_client.close()
