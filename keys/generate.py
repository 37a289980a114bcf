"""Key generation and self-signed certificates (pyca/cryptography only)."""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from keys.errors import InvalidKey
from keys.model import ALGORITHMS, KeyState, KeyUse, PrivateKey, SigningKey, thumbprint

#: RSA sizes accepted; 2048 is the default, 3072 configurable.
RSA_SIZES = (2048, 3072, 4096)
CERTIFICATE_LIFETIME = timedelta(days=3 * 365)


def new_private_key(alg: str, *, rsa_bits: int = 2048) -> PrivateKey:
    """A fresh private key for a JOSE algorithm name (ES256 -> P-256, RS/PS -> RSA)."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg in ("RS256", "PS256"):
        if rsa_bits not in RSA_SIZES:
            raise InvalidKey(f"RSA size must be one of {RSA_SIZES}")
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    raise InvalidKey(f"unsupported algorithm {alg!r}")


def self_signed_certificate(
    private_key: PrivateKey, *, common_name: str, now: datetime
) -> x509.Certificate:
    """A self-signed X.509 certificate for SAML metadata (SHA-256 signature)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CERTIFICATE_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    return builder.sign(private_key, hashes.SHA256())


def generate_key(
    use: KeyUse,
    *,
    now: datetime,
    alg: str | None = None,
    rsa_bits: int = 2048,
    state: KeyState = KeyState.NEXT,
    common_name: str = "Interops IdP signing key",
) -> SigningKey:
    """Generate a key for ``use`` (SAML: RS256 by default; JWT: ES256 by default).

    SAML keys always get a self-signed certificate; the ``kid`` is the RFC 7638
    thumbprint of the public key.
    """
    alg = alg or ALGORITHMS[use][0]
    if alg not in ALGORITHMS[use]:
        raise InvalidKey(f"algorithm {alg} not allowed for {use.value} keys")
    private_key = new_private_key(alg, rsa_bits=rsa_bits)
    certificate = (
        self_signed_certificate(private_key, common_name=common_name, now=now)
        if use is KeyUse.SAML
        else None
    )
    return SigningKey(
        kid=thumbprint(private_key.public_key()),
        use=use,
        alg=alg,
        state=state,
        private_key=private_key,
        created_at=now,
        certificate=certificate,
        activated_at=now if state is KeyState.ACTIVE else None,
    )
