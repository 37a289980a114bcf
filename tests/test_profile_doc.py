"""docs/profile.md and ``token_suite.errors`` say the same thing: the table of checks lists
the eight checks in order, each with the wire code and HTTP status of the error classes that
stand for it, and every error code of the package is explained on the page (issue 14: the
profile rules the code cites, written in the repo; a disagreement fails here)."""

from __future__ import annotations

import re
from pathlib import Path

from token_suite import errors

PROFILE = Path(__file__).resolve().parent.parent / "docs" / "profile.md"
CHECK = re.compile(r"Check (\d): ")


def check_rows(text: str) -> dict[int, str]:
    """The rows ``| n | ... |`` of the table under "Contrôles de vérification", by number."""
    section = text.split("## Contrôles de vérification", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if re.match(r"\| \d \|", line)]
    return {int(row.split("|")[1]): row for row in rows}


def classes_by_check() -> dict[int, list[type[errors.InteropsError]]]:
    """Error classes whose docstring says which check they stand for (``Check N: ...``)."""
    found: dict[int, list[type[errors.InteropsError]]] = {}
    for cls in errors.ALL_ERRORS:
        match = CHECK.match(cls.__doc__ or "")
        if match:
            found.setdefault(int(match.group(1)), []).append(cls)
    return found


def test_the_table_lists_the_eight_checks_in_order() -> None:
    rows = check_rows(PROFILE.read_text(encoding="utf-8"))
    assert list(rows) == list(range(1, 9))


def test_each_check_row_carries_its_classes_code_and_status() -> None:
    rows = check_rows(PROFILE.read_text(encoding="utf-8"))
    by_check = classes_by_check()
    assert sorted(by_check) == list(range(1, 9))
    for number, classes in by_check.items():
        for cls in classes:
            assert f"`{cls.code}`" in rows[number], (number, cls.__name__)
            assert f"{cls.http_status}" in rows[number], (number, cls.__name__)


def test_every_error_code_is_explained() -> None:
    text = PROFILE.read_text(encoding="utf-8")
    for cls in (*errors.ALL_ERRORS, errors.TrustUnavailable):
        assert f"`{cls.code}`" in text, cls.__name__
        assert str(cls.http_status) in text, cls.__name__


def test_a_row_that_disagrees_is_seen() -> None:
    """The parsing finds what it checks: a wrong code or status in a row is not there."""
    text = PROFILE.read_text(encoding="utf-8")
    swapped = text.replace("| `vi:InvalidPagm` | 403 |", "| `vi:InvalidPagm` | 401 |")
    assert swapped != text
    assert "403" not in check_rows(swapped)[7]
    assert "`vi:Replay`" not in check_rows(text)[7]
