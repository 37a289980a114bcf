"""Types of the C framing module (token_suite/_speedups.c); references in token_suite._jws
and token_suite.jwt (``py_*``)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from token_suite.vector import IdentityVector

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
def configure(
    vector_type: type[IdentityVector],
    habilitation_type: type[Any],
    default_acr: str,
    to_datetime: Callable[[float], datetime],
    max_timestamp: float,
    /,
) -> None: ...
def vector(payload: dict[str, Any], /) -> IdentityVector | None: ...
