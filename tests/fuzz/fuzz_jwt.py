"""atheris harness for ``token_suite.jwt.verify`` (tests/fuzz/README.md says how to run it).

Coverage-guided over ``token_suite`` and ``keys`` (instrumented at import), from the
genuine seeds of tests/fuzz/corpus/jwt, with the JSON-aware mutator of
:mod:`tests.fuzz.fuzz_support`; the oracle is :func:`~tests.fuzz.fuzz_support.check_jwt`.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["token_suite", "keys"]):
    from tests.fuzz import fuzz_support


def test_one_input(data: bytes) -> None:
    fuzz_support.check_jwt(data[: fuzz_support.MAX_JWT])


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    return fuzz_support.mutate_jwt(data, max_size, seed, atheris.Mutate)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
