"""The one check for every redirect to a target the user chose (``next``, ``RelayState``).

Stops open redirects: only a path on this site is followed, anything else goes to a
default page. Browsers are lenient with ``Location``: they drop tabs and newlines
anywhere, strip leading spaces and control characters, read ``\\`` as ``/``, and so
turn ``/\\t/evil.example`` or ``/\\evil.example`` into ``//evil.example`` (another
host). So a target is kept only when it is printable ASCII without a backslash or a
space, starts with one ``/`` not followed by ``/``, names no scheme or host, has no
empty or dot segment in its path (``/..//host``), and its path's percent-decoded forms (decoded until stable) pass the same tests: an encoded ``//``,
``\\`` or control character is refused too, whatever a later hop would make of it.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

DASHBOARD = "/tableau-de-bord"
MAX_LENGTH = 2000
_DECODE_ROUNDS = 3


def _plain_local(value: str) -> bool:
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return False
    if any(not "\x21" <= c <= "\x7e" or c == "\\" for c in value):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


def is_local_path(value: str | None) -> bool:
    """True only for a path on this site (see the module's rules), never for a URL,
    ``//host``, ``/\\host``, a control character or an encoded form of those."""
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
        return False
    if not _plain_local(value):
        return False
    path = re.split(r"[?#]", value, maxsplit=1)[0]
    for _round in range(_DECODE_ROUNDS):
        if not _plain_path(path):
            return False
        decoded = unquote(path)
        if decoded == path:
            return True
        if not _plain_local(decoded):
            return False
        path = decoded
    return False  # still encoded after several rounds: nothing legitimate looks so


def _plain_path(path: str) -> bool:
    """No empty or dot segment (``/..//host`` normalises to ``//host``)."""
    segments = path.split("/")[1:]
    return not any(s in ("", ".", "..") for s in segments[:-1]) and segments[-1] not in (".", "..")


def local_target(value: str | None, default: str = DASHBOARD) -> str:
    """``value`` when :func:`is_local_path` accepts it, else ``default``: the target of
    every redirect to a user-given ``next`` or ``RelayState``."""
    return value if value is not None and is_local_path(value) else default
