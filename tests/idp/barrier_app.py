"""The app of ``tests/idp/test_group_commit.py``'s kill test, for gunicorn: the group
commit's writer stops at a barrier just before its commit, after writing its pid to the
file named by ``GROUP_COMMIT_BARRIER`` (the test then kills that worker)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from flask import Flask

from idp.factory import create_app as _create_app
from idp.stores import group_commit


def _barrier(_session: Any) -> None:
    Path(os.environ["GROUP_COMMIT_BARRIER"]).write_text(str(os.getpid()))
    time.sleep(600)


def create_app() -> Flask:
    app = _create_app()
    group_commit.before_commit = _barrier
    return app
