"""atheris harness for ``token_suite.saml.verify`` (tests/fuzz/README.md says how to run it).

Coverage-guided over ``token_suite`` and ``keys`` (instrumented at import), from the
genuine seeds of tests/fuzz/corpus/saml, with the XML-aware mutator of
:mod:`tests.fuzz.fuzz_support`; the oracle is :func:`~tests.fuzz.fuzz_support.check_saml`.
Run it with a memory cap (``-rss_limit_mb``, ``-malloc_limit_mb``): an entity or
depth bomb that got through would show as an out-of-memory finding.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["token_suite", "keys"]):
    from tests.fuzz import fuzz_support


def test_one_input(data: bytes) -> None:
    fuzz_support.check_saml(data[: fuzz_support.MAX_SAML])


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    return fuzz_support.mutate_saml(data, max_size, seed, atheris.Mutate)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
