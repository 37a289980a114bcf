"""pytest plugin: block the C module, so that tests/token_suite runs on the Python framing.

Run: ``python -m pytest -p tests.token_suite.no_speedups tests/token_suite``. Loaded
before any test module, it makes ``from token_suite import _speedups`` raise
``ImportError`` (a ``None`` entry in ``sys.modules``), as in a source tree nobody
compiled; tests/token_suite/test_speedups.py is then skipped.
"""

from __future__ import annotations

import sys

if "token_suite._jws" in sys.modules:  # pragma: no cover - a misuse: too late to block
    raise RuntimeError("load tests.token_suite.no_speedups with -p, before token_suite")
sys.modules["token_suite._speedups"] = None  # type: ignore[assignment]
