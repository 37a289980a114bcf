"""Every document a comment or docstring cites is in the repository (issue 14, "Docs in the
repo"): a ``*.md`` path names a file of the checkout, and no source names a design note kept
outside it (the Interops profile, the design, contract and conventions notes, a shared
folder). The rules those notes held are in docs/profile.md and docs/architecture.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where comments and docstrings live: the product, its tests, benches and CI.
SOURCES = ("idp", "token_suite", "keys", "rcd_store", "partners", "widget", "tests", "bench")
SUFFIXES = {".py", ".pyi", ".c", ".sh", ".toml", ".cfg", ".js", ".html"}
EXTRA = ("app.py", "pyproject.toml", ".ci/run", "packaging/token-suite/pyproject.toml")

MD_PATH = re.compile(r"[\w./-]*\w\.md\b")
#: ``docs/profile.md, "Identifiants"``, ``docs/architecture.md ("Données")``: a section cited.
SECTION = re.compile(r'(docs/[\w.-]+\.md),? \(?"([^"]+)"')
OUTSIDE = re.compile(r"INTEROPS_PROFILE|\bDESIGN\b|\bCONTRACT\b|\bCONVENTIONS\b|/work/|shared/")


def source_files(root: Path = ROOT) -> list[Path]:
    """The files whose comments and docstrings are checked (this one aside)."""
    found = [root / extra for extra in EXTRA if (root / extra).is_file()]
    for top in SOURCES:
        for path in (root / top).rglob("*"):
            skipped = {"__pycache__", "node_modules", "vectors"} & set(path.parts)
            if path.suffix in SUFFIXES and path.is_file() and not skipped:
                found.append(path)
    return sorted(set(found) - {Path(__file__).resolve()})


def resolves(cited: str, citing: Path, root: Path = ROOT) -> bool:
    """True when ``cited`` names a file from the repository root or ``docs/``, or from the
    citing file's folder or one of its parents (``README.md`` beside a package)."""
    if (root / cited).is_file() or (root / "docs" / cited).is_file():
        return True
    folder = citing.parent
    while folder == root or root in folder.parents:
        if (folder / cited).is_file():
            return True
        folder = folder.parent
    return False


def bad_citations(files: list[Path], root: Path = ROOT) -> list[str]:
    """``file:line: citation`` for each citation of a document not in the repository."""
    bad = []
    for path in files:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            where = f"{path.relative_to(root)}:{number}"
            bad += [f"{where}: {m.group()}" for m in OUTSIDE.finditer(line)]
            cited = (m.group() for m in MD_PATH.finditer(line))
            bad += [f"{where}: {c}" for c in cited if not resolves(c, path, root)]
    return bad


def missing_sections(files: list[Path], root: Path = ROOT) -> list[str]:
    """``file:line: document "section"`` for each cited section that is no heading there."""
    missing = []
    for path in files:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            for document, section in SECTION.findall(line):
                cited = root / document
                text = cited.read_text(encoding="utf-8") if cited.is_file() else ""
                headings = {h.lstrip("#").strip() for h in text.splitlines() if h.startswith("#")}
                if section not in headings:
                    missing.append(f'{path.relative_to(root)}:{number}: {document} "{section}"')
    return missing


def test_sources_are_found() -> None:
    files = source_files()
    assert ROOT / "token_suite" / "jwt.py" in files
    assert ROOT / "token_suite" / "_speedups.c" in files
    assert ROOT / "tests" / "test_layering.py" in files


def test_every_cited_document_is_in_the_repo() -> None:
    bad = bad_citations(source_files())
    assert not bad, "\n".join(bad)


def test_every_cited_section_is_a_heading() -> None:
    files = source_files()
    cited = [c for f in files for c in SECTION.findall(f.read_text(encoding="utf-8"))]
    assert len(cited) >= 10
    missing = missing_sections(files)
    assert not missing, "\n".join(missing)


def test_the_check_sees_a_bad_citation(tmp_path: Path) -> None:
    """A citation of a note outside the repository, or of a missing document, is reported;
    one of a document of the checkout is not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "profile.md").write_text("# profile\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "README.md").write_text("# pkg\n")
    module = tmp_path / "pkg" / "m.py"
    module.write_text(
        '"""Checks of docs/profile.md, see README.md."""\n'
        "# INTEROPS_PROFILE.md, check 2\n"
        "x = 1  # DESIGN.md, layout; docs/missing.md\n"
        '# CONVENTIONS item 16, CONTRACT "HTTP", /work/shared/notes\n'
    )
    assert bad_citations([module], tmp_path) == [
        "pkg/m.py:2: INTEROPS_PROFILE",
        "pkg/m.py:2: INTEROPS_PROFILE.md",
        "pkg/m.py:3: DESIGN",
        "pkg/m.py:3: DESIGN.md",
        "pkg/m.py:3: docs/missing.md",
        "pkg/m.py:4: CONVENTIONS",
        "pkg/m.py:4: CONTRACT",
        "pkg/m.py:4: /work/",
        "pkg/m.py:4: shared/",
    ]
    assert missing_sections([module], tmp_path) == []
    module.write_text('# docs/profile.md, "profile"; docs/profile.md ("Identifiants")\n')
    assert missing_sections([module], tmp_path) == ['pkg/m.py:1: docs/profile.md "Identifiants"']
