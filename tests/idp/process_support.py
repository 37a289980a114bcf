"""The environment of another process (the CLI, a gunicorn server) working on the test's
database, for the tests of what a change in one process does to another."""

from __future__ import annotations

import os
from typing import Any

from tests.conftest import MASTER_KEY


def process_env(app_config: dict[str, Any], **extra: str) -> dict[str, str]:
    """This environment without any ``IDP_*``, plus the test app's settings and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(
        IDP_DATABASE_URL=app_config["DATABASE_URL"],
        IDP_INSTANCE_PATH=app_config["INSTANCE_PATH"],
        IDP_MASTER_KEY=MASTER_KEY,
        IDP_SECRET_KEY="test-secret-key",
        IDP_BASE_URL=app_config["BASE_URL"],
        **extra,
    )
    if app_config.get("REDIS_URL"):
        env["IDP_REDIS_URL"] = app_config["REDIS_URL"]
    return env
