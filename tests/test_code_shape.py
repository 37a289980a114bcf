"""The product code keeps the shape of issue 14 ("Must hold"; docs/architecture.md, "Règles du code"
1): no module over 520 lines, no package with more than 13 modules, no function over 60 lines,
and the median function under 12 lines.

Product code is every package a distribution ships (``idp``, ``token_suite``, ``keys``,
``rcd_store``, ``partners``, ``widget``); Alembic migration scripts (any ``migrations``
folder) are history, not design, and are left out. A package's modules are the ``.py`` files
directly in its folder other than its ``__init__.py``; a function's length runs from its
``def`` line to its last line (``end_lineno - lineno + 1``), methods and nested functions
each counted on their own.
"""

from __future__ import annotations

import ast
import statistics
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("idp", "token_suite", "keys", "rcd_store", "partners", "widget")
MAX_MODULE_LINES = 520
MAX_PACKAGE_MODULES = 13
MAX_FUNCTION_LINES = 60
MEDIAN_FUNCTION_BELOW = 12


def product_modules(root: Path = ROOT) -> list[Path]:
    """Every product ``.py`` file, migration scripts aside, in a stable order."""
    found = []
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).parts
            if "migrations" not in parts and "__pycache__" not in parts:
                found.append(path)
    return sorted(found)


def functions(path: Path, root: Path = ROOT) -> Iterator[tuple[str, int]]:
    """``(where, length)`` of every function and method defined in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            where = f"{path.relative_to(root)}:{node.lineno} {node.name}"
            yield where, node.end_lineno - node.lineno + 1


def long_modules(modules: list[Path], root: Path = ROOT) -> list[str]:
    """The modules over :data:`MAX_MODULE_LINES` lines, with their length."""
    lengths = {m: len(m.read_text(encoding="utf-8").splitlines()) for m in modules}
    return [f"{m.relative_to(root)}: {n} lines" for m, n in lengths.items() if n > MAX_MODULE_LINES]


def crowded_packages(modules: list[Path], root: Path = ROOT) -> list[str]:
    """The packages (folders with an ``__init__.py``) over :data:`MAX_PACKAGE_MODULES`."""
    counts: dict[Path, int] = {}
    for module in modules:
        if (module.parent / "__init__.py").exists() and module.name != "__init__.py":
            counts[module.parent] = counts.get(module.parent, 0) + 1
    return [
        f"{folder.relative_to(root)}: {n} modules"
        for folder, n in sorted(counts.items())
        if n > MAX_PACKAGE_MODULES
    ]


def test_product_code_is_found() -> None:
    modules = product_modules()
    assert {m.relative_to(ROOT).parts[0] for m in modules} == set(PACKAGES)
    assert ROOT / "token_suite" / "jwt.py" in modules
    assert not [m for m in modules if "migrations" in m.parts]


def test_no_module_over_the_line_budget() -> None:
    found = long_modules(product_modules())
    assert not found, "\n".join(found)


def test_no_package_over_the_module_budget() -> None:
    found = crowded_packages(product_modules())
    assert not found, "\n".join(found)


def test_no_function_over_the_line_budget() -> None:
    too_long = [
        f"{where}: {n} lines"
        for module in product_modules()
        for where, n in functions(module)
        if n > MAX_FUNCTION_LINES
    ]
    assert not too_long, "\n".join(too_long)


def test_median_function_is_short() -> None:
    lengths = [n for module in product_modules() for _, n in functions(module)]
    assert len(lengths) > 100
    assert statistics.median(lengths) < MEDIAN_FUNCTION_BELOW


def test_the_measures_catch_what_they_measure(tmp_path: Path) -> None:
    """The helpers see a long module, a crowded package and a long function (so that an
    empty list above means the budget holds, not that nothing was measured)."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for index in range(MAX_PACKAGE_MODULES + 1):
        (package / f"m{index}.py").write_text("x = 1\n")
    body = "".join("    x = 1\n" for _ in range(MAX_FUNCTION_LINES))
    big = package / "m0.py"
    big.write_text("def f():\n" + body + "\n" * MAX_MODULE_LINES)
    modules = sorted(package.glob("*.py"))
    lines = 1 + MAX_FUNCTION_LINES + MAX_MODULE_LINES
    assert long_modules(modules, tmp_path) == [f"pkg/m0.py: {lines} lines"]
    assert long_modules([m for m in modules if m != big], tmp_path) == []
    assert crowded_packages(modules, tmp_path) == [f"pkg: {MAX_PACKAGE_MODULES + 1} modules"]
    assert crowded_packages([m for m in modules if m != big], tmp_path) == []
    assert list(functions(big, tmp_path)) == [("pkg/m0.py:1 f", MAX_FUNCTION_LINES + 1)]
