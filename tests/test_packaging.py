"""The identity provider's own distribution: what ``pip install .`` puts in site-packages.

Only our packages go there: no top-level module ``app`` (a partner's own ``app.py``
must not collide with ours; ours is the checkout's entry for ``gunicorn``), and the
files the service reads at run time (migrations, templates, translations) are inside.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"idp", "keys", "partners", "rcd_store", "token_suite", "widget"}


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = out.glob("interops_idp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_only_our_packages_are_installed(wheel_files: list[str]) -> None:
    top = {
        name.split("/")[0] for name in wheel_files if not name.split("/")[0].endswith(".dist-info")
    }
    assert top <= PACKAGES, top - PACKAGES
    assert "app.py" not in wheel_files


def test_what_the_service_reads_at_run_time_is_inside(wheel_files: list[str]) -> None:
    for needed in (
        "idp/migrations/env.py",
        "idp/migrations/script.py.mako",
        "idp/translations/en.json",
        "idp/templates/login.html",
        "idp/demo/templates/home.html",
    ):
        assert needed in wheel_files, needed
    assert any(name.startswith("idp/migrations/versions/0001_") for name in wheel_files)
