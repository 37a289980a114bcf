"""The raw capacities the SSO benches are compared to, on every core of this machine.

Each runs one process per core (``os.cpu_count()``), each doing the raw operation for
the same number of seconds; the rate is the sum. Measured in the bench's own run,
between its load rounds (the service idle), so that the ratio compares like with like
on a shared, noisy machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

#: what a navigation signs: one RSA-2048 PKCS#1 v1.5 SHA-256 signature of a SignedInfo
SIGNED_INFO = b"<ds:SignedInfo>" + b"x" * 600 + b"</ds:SignedInfo>"


def _rsa_signatures(seconds: float) -> int:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    scheme, digest = padding.PKCS1v15(), hashes.SHA256()
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(20):
            key.sign(SIGNED_INFO, scheme, digest)
        count += 20
    return count


def _argon2_hashes(seconds: float, time_cost: int, memory_kib: int) -> int:
    from rcd_store.passwords import HashParameters, PasswordService

    service = PasswordService(HashParameters(time_cost=time_cost, memory_kib=memory_kib))
    stored = service.hash("une phrase de passe du banc d'essai")
    count, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        service.verify(stored, "une phrase de passe du banc d'essai")
        count += 1
    return count


def _all_cores(work: Callable[..., int], seconds: float, *args: object) -> float:
    cores = os.cpu_count() or 1
    with ProcessPoolExecutor(max_workers=cores) as pool:
        counts = list(pool.map(work, [seconds] * cores, *([a] * cores for a in args)))
    return sum(counts) / seconds


def rsa2048_rate(seconds: float = 2.0) -> float:
    """RSA-2048 signatures per second on all cores (``cryptography``)."""
    return _all_cores(_rsa_signatures, seconds)


def argon2id_rate(time_cost: int, memory_kib: int, seconds: float = 2.0) -> float:
    """argon2id verifications per second on all cores, at the service's parameters."""
    return _all_cores(_argon2_hashes, seconds, time_cost, memory_kib)
