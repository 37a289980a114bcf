"""The fuzzers' saved corpus, replayed by plain pytest (no atheris needed), and the
oracle and mutators of tests/fuzz/fuzz_support.py, tested themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fuzz import fuzz_support
from tests.fuzz.fuzz_support import CORPUS, Finding, check_jwt, check_saml
from token_suite import jwt

JWT_INPUTS = sorted((CORPUS / "jwt").iterdir())
SAML_INPUTS = sorted((CORPUS / "saml").iterdir())


def test_the_corpus_holds_the_seeds_and_what_the_fuzzers_found() -> None:
    assert len([p for p in JWT_INPUTS if p.name.startswith("seed-")]) >= 10
    assert len([p for p in SAML_INPUTS if p.name.startswith("seed-")]) >= 5
    assert len(fuzz_support.JWT_SIGNED) == len([p for p in JWT_INPUTS if p.name.startswith("seed")])


@pytest.mark.parametrize("path", JWT_INPUTS, ids=lambda p: p.name)
def test_jwt_corpus_input_meets_the_oracle(path: Path) -> None:
    check_jwt(path.read_bytes())


@pytest.mark.parametrize("path", SAML_INPUTS, ids=lambda p: p.name)
def test_saml_corpus_input_meets_the_oracle(path: Path) -> None:
    check_saml(path.read_bytes())


def test_genuine_seeds_are_accepted_with_their_signed_content() -> None:
    vector = check_jwt((CORPUS / "jwt" / "seed-00").read_bytes())
    assert vector is not None and vector.subject == "D0000001"
    saml_vector = check_saml((CORPUS / "saml" / "seed-00").read_bytes())
    assert saml_vector is not None
    assert str(saml_vector.claims["id"]) in fuzz_support.SAML_SIGNED
    expired = check_jwt((CORPUS / "jwt" / "seed-03").read_bytes())
    assert expired is None


def test_the_oracle_flags_content_no_trusted_key_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fuzz_support, "JWT_SIGNED", {})
    with pytest.raises(Finding, match="no trusted key signed"):
        check_jwt((CORPUS / "jwt" / "seed-00").read_bytes())
    monkeypatch.setattr(fuzz_support, "SAML_SIGNED", {})
    with pytest.raises(Finding, match="no trusted key signed"):
        check_saml((CORPUS / "saml" / "seed-00").read_bytes())


def test_the_oracle_flags_the_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("a defect")

    monkeypatch.setattr(jwt, "_check_window", broken)
    with pytest.raises(Finding, match="boundary"):
        check_jwt((CORPUS / "jwt" / "seed-00").read_bytes())


@pytest.mark.parametrize("kind", ["jwt", "saml"])
def test_a_short_fuzzing_run_without_atheris(kind: str) -> None:
    """The mutators feed the oracle for a few hundred rounds (atheris does millions)."""
    mutate = fuzz_support.mutate_jwt if kind == "jwt" else fuzz_support.mutate_saml
    check = check_jwt if kind == "jwt" else check_saml
    limit = fuzz_support.MAX_JWT if kind == "jwt" else fuzz_support.MAX_SAML
    seeds = sorted((CORPUS / kind).glob("seed-*"))
    for round_number in range(300):
        data = seeds[round_number % len(seeds)].read_bytes()
        for step in range(3):
            data = mutate(data, limit, round_number * 3 + step, fuzz_support.python_byte_mutate)
            assert len(data) <= limit
            check(data)


def test_the_signed_content_files_are_sorted_json() -> None:
    for kind in ("jwt", "saml"):
        text = (CORPUS / f"{kind}-signed.json").read_text("utf-8")
        assert text == json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n"
