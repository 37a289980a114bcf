"""The store-only selection of the PostgreSQL+Redis run (tests/store_selection.py) keeps
every test that can reach a store, and drops only tests that cannot."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import store_selection
from tests.store_selection import TESTS, names_a_store, store_only

ROOT = TESTS.parent


def _collected(*args: str, **env: str) -> set[str]:
    """The node ids pytest collects with ``args`` under ``env``, in a fresh pytest away from
    this run's stores and workers."""
    import os

    own = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("IDP_TEST_", "PYTEST_XDIST", "PYTEST_CURRENT"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=own | env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {line for line in result.stdout.splitlines() if "::" in line}


def test_only_the_postgresql_run_that_asks_for_it_selects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDP_TEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("IDP_TEST_STORE_ONLY", "1")
    assert not store_only()  # SQLite: the whole suite, whatever the variable says
    monkeypatch.setenv("IDP_TEST_DATABASE_URL", "postgresql+psycopg://x@127.0.0.1/y")
    assert store_only()
    monkeypatch.delenv("IDP_TEST_STORE_ONLY")
    assert not store_only()


def test_files_that_make_their_own_store_are_kept() -> None:
    # its own app on a copy of the SQLite template, no store fixture
    assert names_a_store(TESTS / "flows" / "test_login_browser.py")
    # reads IDP_TEST_DATABASE_URL itself
    assert names_a_store(TESTS / "rcd_store" / "test_db_timeouts.py")
    # only through a helper it imports (tests/idp/sso_saml_support.py makes apps)
    assert names_a_store(TESTS / "idp" / "test_sso_saml.py")
    assert not store_selection.STORE_WORDS.search(
        (TESTS / "idp" / "test_sso_saml.py").read_text(encoding="utf-8")
    )


def test_pure_files_are_not_kept_for_their_text() -> None:
    assert not names_a_store(TESTS / "token_suite" / "test_jwt.py")
    assert not names_a_store(TESTS / "keys" / "test_store.py")  # an in-memory key store


def test_the_postgresql_run_drops_pure_tests_and_keeps_store_tests() -> None:
    files = [
        "tests/keys/test_store.py",  # pure: dropped
        "tests/rcd_store/test_identifiers.py",  # pure: dropped
        "tests/rcd_store/test_services.py",  # the session fixture: kept
        "tests/flows/test_login_browser.py",  # its own app: kept
        "tests/idp/test_i18n_catalogue.py",  # mixed: the app fixture's tests kept
    ]
    everything = _collected(*files)
    kept = _collected(
        *files,
        IDP_TEST_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/never",
        IDP_TEST_STORE_ONLY="1",
    )
    assert kept < everything
    dropped = everything - kept
    assert {i.split("::")[0] for i in dropped} >= {
        "tests/keys/test_store.py",
        "tests/rcd_store/test_identifiers.py",
    }
    for path in ("tests/rcd_store/test_services.py", "tests/flows/test_login_browser.py"):
        assert {i for i in everything if i.startswith(path)} <= kept, path
    assert (
        "tests/idp/test_i18n_catalogue.py::test_error_pages_are_french_unless_english_is_chosen"
        in kept
    )
    assert not [i for i in kept if i.startswith(("tests/keys/", "tests/rcd_store/test_identif"))]
