"""ES256 Interops-R JWT issuance and verification, as ratios to raw P-256 (one core).

Run: ``python bench/bench_jwt.py [--rounds 7] [--batches 10] [--batch 100]``. Prints one line.

What is measured, per core: the CPU time of this thread (``time.thread_time``,
so time spent descheduled by a noisy neighbour counts on neither side).

- Raw references, same process, same key, same data: ``cryptography``'s
  ``private_key.sign(signing_input, ECDSA(SHA256()))`` (DER out) and
  ``public_key.verify(der, signing_input, ECDSA(SHA256()))``, with the
  ``ECDSA`` object built once, on the signing input of a real token (same size,
  so the same SHA-256 work), in a plain loop: the fastest raw call there is.
- Issued (the headline figure): ``jwt.issue(vector, signer=key, issuer=...,
  audience=..., now=...)`` per token, each token for a *different* identity
  vector object (built beforehand, as a directory lookup would, outside the
  timing): a full vector (names, email, SIRET, two PAGM, one habilitation,
  ``auth_time``) serialised, a fresh random ``jti``, JSON, base64url, the
  signature, DER to ``R||S``. The bracketed "same vector" figure issues
  one vector object again and again (e.g. one session's tokens for several
  audiences), shown beside, never instead.
- Verified: ``jwt.verify(token, trust=..., audience=...)`` on distinct
  pre-issued tokens (each ``jti`` fresh), every check of the profile, the wall
  clock, and the replay check in the default process-wide in-memory cache.

Each round interleaves short batches (raw, token, raw, token...) so that
machine noise slows both sides alike; a round's ratio is total raw time over
total token time. The figure is the median over the rounds, after a warm-up
round. Goals (issue 3; docs/architecture.md, "Règles du code" 4): both ratios >= 0.70; and
verify >= 0.80 (issue 14, with every claim rule and the vector's construction in Python).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keys.generate import generate_key
from keys.model import KeyState, KeyUse
from token_suite import _jws, jwt
from token_suite.vector import ACR_TOTP, Habilitation, IdentityVector

ISSUER = "https://idp.interops.example"
AUDIENCE = "urn:interops:partner:api"
GOAL = 0.70
VERIFY_GOAL = 0.80


def _vector(now: datetime, index: int = 0) -> IdentityVector:
    return IdentityVector(
        subject=f"RCD-{index:08X}",
        siret="73282932000074",
        family_name="Dupont",
        given_name="Élodie",
        email="elodie.dupont@example.fr",
        pagm=("DSN_DECL", "DSN_CONSULT"),
        habilitations=(Habilitation("DSN", "73282932000074", "DECLARANT"),),
        acr=ACR_TOTP,
        auth_time=now,
    )


def _timed(action: Callable[[], object], count: int) -> float:
    start = time.thread_time()
    for _ in range(count):
        action()
    return time.thread_time() - start


def _round(raw: Callable[[], object], token: Callable[[], object], *, batches: int, batch: int):
    """Interleaved batches; returns (raw ops/s, token ops/s, ratio)."""
    raw_time = token_time = 0.0
    for _ in range(batches):
        raw_time += _timed(raw, batch)
        token_time += _timed(token, batch)
    total = batches * batch
    return total / raw_time, total / token_time, raw_time / token_time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)

    now = datetime.now(UTC)
    key = generate_key(KeyUse.JWT, now=now, alg="ES256", state=KeyState.ACTIVE)
    trust = jwt.trust_from_jwks({"keys": [key.public_jwk()]}, issuer=ISSUER)
    vector = _vector(now)

    def issue() -> str:
        return jwt.issue(vector, signer=key, issuer=ISSUER, audience=AUDIENCE, now=now)

    per_round = args.batches * args.batch
    fresh: Iterator[IdentityVector] = iter(
        [_vector(now, index) for index in range((args.rounds + 1) * per_round)]
    )

    def issue_fresh() -> str:
        return jwt.issue(next(fresh), signer=key, issuer=ISSUER, audience=AUDIENCE, now=now)

    sample = issue().encode("ascii")
    signing_input = sample.rsplit(b".", 1)[0]
    ecdsa = ec.ECDSA(hashes.SHA256())
    private, public = key.private_key, key.public_key
    der = private.sign(signing_input, ecdsa)

    tokens: Iterator[str] = iter([issue() for _ in range((args.rounds + 1) * per_round)])

    def verify() -> object:
        return jwt.verify(next(tokens), trust=trust, audience=AUDIENCE)  # default replay cache

    issuing, reissuing, verifying = [], [], []
    for index in range(args.rounds + 1):  # round 0 is the warm-up
        sign_round = _round(
            lambda: private.sign(signing_input, ecdsa),
            issue_fresh,
            batches=args.batches,
            batch=args.batch,
        )
        resign_round = _round(
            lambda: private.sign(signing_input, ecdsa),
            issue,
            batches=args.batches,
            batch=args.batch,
        )
        verify_round = _round(
            lambda: public.verify(der, signing_input, ecdsa),
            verify,
            batches=args.batches,
            batch=args.batch,
        )
        if index:
            issuing.append(sign_round)
            reissuing.append(resign_round)
            verifying.append(verify_round)

    def median(rows: list[tuple[float, float, float]], column: int) -> float:
        return statistics.median(row[column] for row in rows)

    issue_ratio, verify_ratio = median(issuing, 2), median(verifying, 2)
    met = min(issue_ratio, verify_ratio) >= GOAL and verify_ratio >= VERIFY_GOAL
    verdict = "OK" if met else "BELOW GOAL"
    print(
        f"ES256 JWT per core: issued {median(issuing, 1):,.0f}/s vs raw P-256 sign "
        f"{median(issuing, 0):,.0f}/s = {issue_ratio:.2f} (a new vector each token; "
        f"same vector again: {median(reissuing, 2):.2f}); verified {median(verifying, 1):,.0f}/s "
        f"vs raw verify {median(verifying, 0):,.0f}/s = {verify_ratio:.2f} "
        f"(thread CPU time; framing: {'C' if _jws.SPEEDUPS else 'Python, C module not built'}; "
        f"replay: default in-memory cache; median of {args.rounds} rounds after warm-up; "
        f"{len(sample)}-byte token; goal {GOAL:.2f}, verify {VERIFY_GOAL:.2f}: {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
