"""SAML jeton throughput against raw RSA-2048 signing, in one process.

    python bench/bench_saml.py [--rounds 5] [--seconds 1.0]

Prints one line: jetons issued/s and verified/s per core, the raw RSA-2048
PKCS#1 v1.5 SHA-256 signature rate of the same key (pyca/cryptography), and
the ratios. Issuance is counted per RSA signature made (a signed Response with
a signed Assertion makes two). Verification is compared with a plain verifier
of the same document: lxml parse, then python-xmlsec verification of the
Response's and the Assertion's signatures with the certificate's key loaded
once, and nothing else checked. Median of the rounds, after a warm-up.
Targets: issuance ratio >= 0.75, verification ratio >= 0.70.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import xmlsec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from keys.generate import generate_key
from keys.model import KeyUse
from token_suite import saml
from token_suite.replay import InMemoryReplayCache
from token_suite.trust import Trust
from token_suite.vector import ACR_TOTP, Habilitation, IdentityVector

NOW = datetime.now(UTC)
VECTOR = IdentityVector(
    subject="D0000001",
    siret="73282932000074",
    family_name="Dupont",
    given_name="Jeanne",
    pagm=("PAGM_DSN_DECL", "PAGM_DSN_CONSULT"),
    habilitations=(Habilitation("DSN", "73282932000074"),),
    acr=ACR_TOTP,
)


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``work`` over about ``seconds``."""
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            work()
        count += 20
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    options = parser.parse_args()

    key = generate_key(KeyUse.SAML, now=NOW - timedelta(minutes=1))
    private_key = key.private_key
    assert isinstance(private_key, rsa.RSAPrivateKey) and key.certificate is not None
    trust = Trust(issuer="urn:idp", saml_certificates=(key.certificate,))
    common = {
        "signer": key,
        "issuer": "urn:idp",
        "audience": "urn:sp",
        "recipient": "https://sp/acs",
    }
    document = saml.issue(VECTOR, now=NOW, **common)  # type: ignore[arg-type]
    digest = b"\x00" * 64

    def raw() -> bytes:
        return private_key.sign(digest, padding.PKCS1v15(), hashes.SHA256())

    def issue() -> bytes:
        return saml.issue(VECTOR, now=NOW, **common)  # type: ignore[arg-type]

    class NoReplay(InMemoryReplayCache):
        def seen(self, token_id: str, *, expires_at: datetime) -> bool:
            return False  # the benchmark verifies one document many times

    no_replay = NoReplay()

    def verify() -> object:
        return saml.verify(document, trust=trust, audience="urn:sp", now=NOW, replay=no_replay)

    plain = plain_verifier(document, key.certificate)
    assert verify().subject == VECTOR.subject and plain() == 2
    for work in (raw, issue, verify, plain):  # warm-up: caches, allocator, CPU clocks
        rate(work, options.seconds / 2)
    raws, issued, verified, plains = [], [], [], []
    for _ in range(options.rounds):
        raws.append(rate(raw, options.seconds))
        issued.append(rate(issue, options.seconds))
        verified.append(rate(verify, options.seconds))
        plains.append(rate(plain, options.seconds))
    raw_rate, plain_rate = statistics.median(raws), statistics.median(plains)
    issue_rate, verify_rate = statistics.median(issued), statistics.median(verified)
    signatures_per_jeton = 2
    ratio = issue_rate * signatures_per_jeton / raw_rate
    print(
        f"saml: issued {issue_rate:.0f}/s ({signatures_per_jeton} RSA signatures each), "
        f"raw RSA-2048 sign {raw_rate:.0f}/s per core, issuance ratio {ratio:.2f} "
        f"(target >= 0.75); verified {verify_rate:.0f}/s, plain lxml+xmlsec "
        f"{plain_rate:.0f}/s, verification ratio {verify_rate / plain_rate:.2f} (target >= 0.70)"
    )


def plain_verifier(document: bytes, certificate: object) -> Callable[[], int]:
    """The reference: parse, then xmlsec-verify the Response's and the Assertion's
    signatures with the certificate's key (loaded once); returns the count verified."""
    pem = certificate.public_bytes(serialization.Encoding.PEM)  # type: ignore[attr-defined]
    key = xmlsec.Key.from_memory(pem, xmlsec.constants.KeyDataFormatCertPem)
    signature_tag = "{http://www.w3.org/2000/09/xmldsig#}Signature"
    assertion_tag = "{urn:oasis:names:tc:SAML:2.0:assertion}Assertion"

    def plain() -> int:
        root = etree.fromstring(document)
        count = 0
        for element in (root, root.find(assertion_tag)):
            ctx = xmlsec.SignatureContext()
            ctx.key = key
            ctx.register_id(element, "ID")
            ctx.verify(element.find(signature_tag))
            count += 1
        return count

    return plain


if __name__ == "__main__":
    main()
