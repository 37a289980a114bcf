"""The store-only selection of the PostgreSQL+Redis run (``.ci/run``).

The SQLite run is the whole suite. The PostgreSQL+Redis run exists for the tests that reach a
store, so with ``IDP_TEST_DATABASE_URL`` and ``IDP_TEST_STORE_ONLY=1`` set it keeps only them:
a test is kept when any of these holds, and dropped (reported as deselected) otherwise:

- its fixture closure holds a store fixture of ``tests/conftest.py`` (``database_url``,
  ``redis_url``, ``pg_engine``), which every ``app``, ``session``, ``idp``... fixture needs;
- it is marked ``store``, ``postgres`` or ``redis``;
- the file of the test, of any fixture it uses, or of any ``tests`` module those import
  (followed transitively), names a way to a store of its own: a database or Redis URL, an
  engine or an app being made, the CLI (in process or as the ``idp`` command), gunicorn,
  an instance folder (the default SQLite database).

The last rule is textual and coarse on purpose: a whole file is kept when one of its helpers
could build an app, so the selection errs on the side of running a test on both stores.
Items that are not plain test functions are kept.
"""

from __future__ import annotations

import ast
import os
import re
from functools import cache
from pathlib import Path

import pytest

STORE_FIXTURES = frozenset({"database_url", "redis_url", "pg_engine"})
STORE_MARKS = ("store", "postgres", "redis")
#: a way to a store that no store fixture shows
STORE_WORDS = re.compile(
    r"DATABASE_URL|REDIS_URL|PG_URL|\bredis\b|sqlite|psycopg|postgres"
    r"|create_app|make_engine|create_engine|sessionmaker|\bdatabase\(|app_config"
    r"|INSTANCE_PATH|instance_path|idp\.cli|cli\.main|idp\.stores|rcd_store\.db|gunicorn"
    r"|which\(\"idp\"|bin/idp|\[\"idp\",|\"-m\", \"idp\""  # the idp command, in a subprocess
)
TESTS = Path(__file__).resolve().parent


def store_only() -> bool:
    """True in the PostgreSQL+Redis run when ``.ci/run`` asks for the store tests only."""
    return bool(os.environ.get("IDP_TEST_DATABASE_URL")) and (
        os.environ.get("IDP_TEST_STORE_ONLY") == "1"
    )


def _imported_test_modules(path: Path) -> set[Path]:
    """The files of the ``tests`` modules that ``path`` imports (absolute or relative)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.relative_to(TESTS.parent).with_suffix("").parts[:-1]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        if name != "tests" and not name.startswith("tests."):
            continue
        target = TESTS.parent.joinpath(*name.split("."))
        for candidate in (target.with_suffix(".py"), target / "__init__.py"):
            if candidate.is_file():
                found.add(candidate)
    return found


@cache
def names_a_store(path: Path) -> bool:
    """Whether ``path``, or a ``tests`` module it imports (transitively), names a store."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        if STORE_WORDS.search(current.read_text(encoding="utf-8")):
            return True
        todo.extend(_imported_test_modules(current))
    return False


def _source_file(obj: object) -> Path | None:
    code = getattr(obj, "__code__", None)
    if code is None:
        return None
    path = Path(code.co_filename).resolve()
    return path if path.is_relative_to(TESTS) and path.is_file() else None


def reaches_a_store(item: pytest.Item) -> bool:
    if not isinstance(item, pytest.Function):
        return True
    if STORE_FIXTURES & set(item.fixturenames):
        return True
    if any(item.get_closest_marker(mark) for mark in STORE_MARKS):
        return True
    files = {_source_file(item.function)}
    for definitions in item._fixtureinfo.name2fixturedefs.values():
        files.update(_source_file(definition.func) for definition in definitions)
    return any(names_a_store(path) for path in files if path is not None)


def select_store_tests(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop, as deselected, the tests that cannot reach a store (see the module docstring)."""
    if not store_only():
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (kept if reaches_a_store(item) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
