"""Running ``idp`` commands in tests, written as one would type them."""

from __future__ import annotations

import shlex
from typing import Any


def argv(command: str) -> list[str]:
    """A command line as the shell would split it."""
    return shlex.split(command)


def ok(idp: Any, command: str, **options: Any) -> Any:
    """Run ``idp COMMAND`` (the ``idp`` fixture) and require it to succeed."""
    result = idp(*argv(command), **options)
    assert result.code == 0, f"idp {command}: {result.err}"
    return result
