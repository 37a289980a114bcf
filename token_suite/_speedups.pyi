"""Types of the C framing module (token_suite/_speedups.c): byte framing only, no claim rule;
references in token_suite._jws (``py_*``)."""

from collections.abc import Callable
from typing import Any

def split(token: bytes, /) -> tuple[bytes, bytes, bytes, bytes]: ...
def b64encode(data: bytes, /) -> bytes: ...
def der_to_raw(der: bytes, /) -> bytes | None: ...
def raw_to_der(raw: bytes, /) -> bytes: ...
def es256_compact(
    sign: Callable[[bytes, Any], bytes],
    algorithm: Any,
    der_to_raw: Callable[[bytes], bytes],
    prefix: bytes,
    payload: bytes,
    /,
) -> str: ...
def es256_check(
    verify: Callable[[bytes, bytes, Any], None],
    algorithm: Any,
    invalid: type[BaseException],
    signing_input: bytes,
    signature: bytes,
    /,
) -> bool: ...
