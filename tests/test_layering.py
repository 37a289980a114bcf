"""Layering: ``token_suite`` and ``keys`` are libraries without Flask or a database.

A partner back end installs them to verify tokens; they must import neither
Flask (nor Werkzeug) nor SQLAlchemy, directly or through another module.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("token_suite", "keys")
FORBIDDEN = frozenset({"flask", "sqlalchemy", "werkzeug"})

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
names = []
for package_name in {libraries!r}:
    package = importlib.import_module(package_name)
    names.append(package_name)
    for info in pkgutil.walk_packages(package.__path__, package_name + "."):
        importlib.import_module(info.name)
        names.append(info.name)
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & {forbidden!r})
print(json.dumps({{"imported": names, "forbidden": loaded}}))
"""


def _top_level(name: str) -> str:
    return name.split(".")[0]


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """Forbidden modules a source imports: import statements and import_module/__import__ calls."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _top_level(alias.name) in FORBIDDEN]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [node.module] if _top_level(node.module) in FORBIDDEN else []
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            name = node.args[0].value  # type: ignore[attr-defined]
            found += [name] if _top_level(name) in FORBIDDEN else []
    return found


def _is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return (
        called in ("import_module", "__import__")
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _sources(patterns: tuple[str, ...] = ("*.py",)) -> list[Path]:
    """The libraries' Python sources; with ``"*.c"``, their C extension modules too."""
    return sorted(
        path
        for library in LIBRARIES
        for pattern in patterns
        for path in (ROOT / library).rglob(pattern)
    )


def _import_all(libraries: tuple[str, ...], *, path: Path = ROOT) -> dict[str, list[str]]:
    """Import every module of ``libraries`` in a fresh interpreter; report what got loaded."""
    script = _IMPORT_ALL.format(libraries=libraries, forbidden=set(FORBIDDEN))
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, list[str]] = json.loads(result.stdout)
    return report


def test_importing_every_module_loads_no_web_or_database_stack() -> None:
    report = _import_all(LIBRARIES)
    assert report["forbidden"] == [], f"imported through {LIBRARIES}: {report['forbidden']}"
    expected = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in _sources(("*.py", "*.c"))
    }
    assert set(report["imported"]) == expected


def test_import_check_detects_an_indirect_import(tmp_path: Path) -> None:
    """The subprocess check itself: a module importing SQLAlchemy indirectly is caught."""
    package = tmp_path / "leaky"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "store.py").write_text("import json\nimport logging.config\nimport sqlalchemy.orm\n")
    assert _import_all(("leaky",), path=tmp_path) == {
        "imported": ["leaky", "leaky.store"],
        "forbidden": ["sqlalchemy"],
    }


@pytest.mark.parametrize("path", _sources(), ids=lambda path: str(path.relative_to(ROOT)))
def test_sources_do_not_import_web_or_database_stack(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8"), str(path)) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import flask", ["flask"]),
        ("import os, sqlalchemy.orm as orm", ["sqlalchemy.orm"]),
        ("from werkzeug.exceptions import NotFound", ["werkzeug.exceptions"]),
        ("def f():\n    from flask import g\n", ["flask"]),
        ("import importlib\nimportlib.import_module('sqlalchemy')", ["sqlalchemy"]),
        ("__import__('flask')", ["flask"]),
        ("import flask_like\nfrom . import flask\nimport_module(name)", []),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sqlalchemy\n",
            ["sqlalchemy"],
        ),
    ],
)
def test_scanner_detects_forbidden_imports(source: str, expected: list[str]) -> None:
    """The static scan itself: it must catch what it is there to catch."""
    assert forbidden_imports(source) == expected
