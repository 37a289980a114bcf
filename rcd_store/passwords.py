"""Password hashing (argon2id) and policy (NIST SP 800-63B).

Hashing uses argon2-cffi with at least OWASP's parameters (19 MiB, t=2, p=1);
a hash made with weaker or different parameters is rehashed at the next
successful login. The policy asks 12 to 128 characters, no composition rules,
and refuses the shipped list of common passwords.
"""

from __future__ import annotations

import gzip
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rcd_store.errors import DirectoryError, InvalidValue

MIN_LENGTH = 12
MAX_LENGTH = 128
OWASP_MEMORY_KIB = 19 * 1024
OWASP_TIME_COST = 2


class PasswordPolicyError(DirectoryError, ValueError):
    """A password refused by the policy; the message says why, in French."""


@dataclass(frozen=True)
class HashParameters:
    time_cost: int = OWASP_TIME_COST
    memory_kib: int = OWASP_MEMORY_KIB
    parallelism: int = 1

    def __post_init__(self) -> None:
        if self.time_cost < OWASP_TIME_COST or self.memory_kib < OWASP_MEMORY_KIB:
            raise InvalidValue("argon2id parameters below OWASP's minimum (19 MiB, t=2)")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower case)."""
    data = resources.files("rcd_store").joinpath("data/common-passwords.txt.gz").read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("#"))


def normalise(password: str) -> str:
    """NFKC, as SP 800-63B recommends before hashing."""
    return unicodedata.normalize("NFKC", password)


def check_policy(password: str, *, context: tuple[str, ...] = ()) -> None:
    """Raise :class:`PasswordPolicyError` unless ``password`` is acceptable.

    ``context`` holds words specific to the user (names, email) that must not
    be the password.
    """
    password = normalise(password)
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"mot de passe trop court ({MIN_LENGTH} caractères au moins)")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"mot de passe trop long ({MAX_LENGTH} caractères au plus)")
    lowered = password.casefold()
    if lowered in common_passwords() or len(set(lowered)) < 3:
        raise PasswordPolicyError("mot de passe trop courant : choisissez-en un autre")
    if any(word and word.casefold() == lowered for word in context):
        raise PasswordPolicyError("le mot de passe ne doit pas reprendre votre nom ou courriel")


class PasswordService:
    """Hash and verify passwords with argon2id."""

    def __init__(self, params: HashParameters | None = None) -> None:
        self.params = params or HashParameters()
        self._hasher = PasswordHasher(
            time_cost=self.params.time_cost,
            memory_cost=self.params.memory_kib,
            parallelism=self.params.parallelism,
            type=Type.ID,
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(normalise(password))

    def verify(self, stored_hash: str, password: str) -> bool:
        """True when ``password`` matches; False on mismatch or an unusable hash."""
        try:
            return self._hasher.verify(stored_hash, normalise(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
