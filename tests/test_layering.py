"""Layering: ``token_suite`` and ``keys`` are libraries without Flask or a database.

A partner back end installs them to verify tokens; they must import neither
Flask (nor Werkzeug) nor SQLAlchemy, directly or through another module.
"""

from __future__ import annotations

import ast
import json
import re
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


# --------------------------------------------------------------- the package graph

#: Which of our packages each package may import (docs/architecture.md).
ALLOWED = {
    "keys": set(),
    "token_suite": {"keys"},
    "rcd_store": set(),
    "partners": {"rcd_store", "token_suite", "keys"},
    "widget": {"idp", "partners", "rcd_store", "token_suite", "keys"},
    "idp": {"partners", "rcd_store", "token_suite", "keys"},
}
OURS = frozenset(ALLOWED)
#: Third-party stacks a library for partners never imports.
SERVER_STACK = frozenset(
    {"flask", "werkzeug", "sqlalchemy", "alembic", "psycopg", "redis", "gunicorn", "authlib"}
    | {"argon2", "jinja2", "itsdangerous", "click"}
)
#: The demo partner stands for a partner's own site: it uses our libraries only.
DEMO_PARTNER = "idp.demo.partner"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of our packages (migration scripts aside: they are data)."""
    return {
        _module_name(path, root): path
        for package in OURS
        if (root / package).is_dir()
        for path in (root / package).rglob("*.py")
        if "versions" not in path.parts
    }


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Line numbers of imports under ``if TYPE_CHECKING:`` (no runtime edge)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            lines |= {
                n.lineno for child in node.body for n in ast.walk(child) if hasattr(n, "lineno")
            }
    return lines


def imported_names(source: str, module: str, is_package: bool) -> list[tuple[str, bool]]:
    """(dotted name, at run time) of every import: statements, ``import_module`` and
    ``__import__`` strings, and ``from package import submodule`` as the submodule."""
    tree = ast.parse(source)
    typing_only = _type_checking_only(tree)
    here = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        runtime = getattr(node, "lineno", 0) not in typing_only
        if isinstance(node, ast.Import):
            found += [(alias.name, runtime) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            found += [(f"{base}.{alias.name}", runtime) for alias in node.names]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            found.append((node.args[0].value, runtime))  # type: ignore[attr-defined]
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(runtime edges between our modules, every imported top-level name per module)."""
    modules = project_modules(root)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    tops: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imported, runtime in imported_names(
            path.read_text("utf-8"), name, path.name == "__init__.py"
        ):
            tops[name].add(imported.split(".")[0])
            target = _resolve(imported, modules)
            # a package's __init__ always runs before its modules: no design edge
            if runtime and target not in (None, name) and not name.startswith(f"{target}."):
                edges[name].add(target)
    return edges, tops


def layering_violations(root: Path = ROOT) -> list[str]:
    """Every broken rule, as a readable line (empty when the layering holds)."""
    modules = project_modules(root)
    edges, tops = import_graph(root)
    problems: list[str] = []
    for name, imported in sorted(tops.items()):
        package = name.split(".")[0]
        for top in sorted(imported & OURS - {package} - ALLOWED[package]):
            problems.append(f"{name} imports {top}")
        if package in ("token_suite", "keys"):
            problems += [f"{name} imports {top}" for top in sorted(imported & SERVER_STACK)]
        if name.startswith(DEMO_PARTNER):
            problems += [
                f"{name} imports {target}"
                for target in sorted(edges[name])
                if target.startswith("idp") and not target.startswith(DEMO_PARTNER)
            ]
    for name, path in sorted(modules.items()):
        if name.startswith("rcd_store"):
            problems += [
                f"{name} names {text!r}"
                for text in _strings(path)
                if re.match(r"(idp|partners)\b", text)
            ]
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(edges)]
    return problems


def _strings(path: Path) -> list[str]:
    return [
        node.value
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_layering_holds() -> None:
    assert layering_violations() == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"rcd_store/a.py": "import idp.x\n", "idp/x.py": ""}, "rcd_store.a imports idp"),
        ({"rcd_store/a.py": "M = 'partners.models'\n"}, "rcd_store.a names 'partners.models'"),
        ({"partners/a.py": "from idp import x\n", "idp/x.py": ""}, "partners.a imports idp"),
        (
            {"keys/a.py": "import importlib\nimportlib.import_module('redis')\n"},
            "keys.a imports redis",
        ),
        ({"token_suite/a.py": "from rcd_store import m\n"}, "token_suite.a imports rcd_store"),
        (
            {"idp/demo/partner.py": "from idp.web import csrf\n", "idp/web/csrf.py": ""},
            "idp.demo.partner imports idp.web.csrf",
        ),
        (
            {"idp/a.py": "def f():\n    from idp import b\n", "idp/b.py": "from idp import a\n"},
            "import cycle: idp.a -> idp.b",
        ),
    ],
    ids=["rcd_store->idp", "string", "partners->idp", "keys->redis", "suite->rcd", "demo", "cycle"],
)
def test_each_rule_catches_its_breach(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    """The checker itself, on deliberately bad trees: every rule fails when broken."""
    assert expected in layering_violations(_tree(tmp_path, files))


def test_typing_only_imports_make_no_cycle(tmp_path: Path) -> None:
    files = {
        "idp/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from idp import b\n",
        "idp/b.py": "from idp import a\n",
    }
    assert layering_violations(_tree(tmp_path, files)) == []
