"""Import and export of signing keys: PKCS#8 PEM (optionally encrypted) and PKCS#12.

An imported key comes back as a :class:`~keys.model.SigningKey` (kid computed,
certificate kept, or generated for SAML keys) ready for :meth:`Keyring.add`.
Only RSA of 2048 bits or more and EC P-256 are accepted.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from keys.errors import KeysError
from keys.generate import self_signed_certificate
from keys.model import ALGORITHMS, KeyState, KeyUse, PrivateKey, SigningKey, thumbprint

MIN_RSA_BITS = 2048
PKCS12_KDF_ROUNDS = 100_000
_CERTIFICATE_MARKER = b"-----BEGIN CERTIFICATE-----"

Passphrase = bytes | str


class KeyImportError(KeysError, ValueError):
    """A key file that cannot be imported; the message says why and what to do."""


def export_pem(
    key: SigningKey, *, passphrase: Passphrase | None = None, include_certificate: bool = False
) -> bytes:
    """The private key as PKCS#8 PEM, encrypted when a passphrase is given.

    With ``include_certificate`` the PEM certificate follows the key.
    """
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if passphrase is None
        else serialization.BestAvailableEncryption(_secret(passphrase))
    )
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    if include_certificate and key.certificate is not None:
        pem += key.certificate.public_bytes(serialization.Encoding.PEM)
    return pem


def import_pem(
    data: bytes,
    *,
    use: KeyUse,
    now: datetime,
    passphrase: Passphrase | None = None,
    certificate_pem: bytes | None = None,
    alg: str | None = None,
    state: KeyState = KeyState.NEXT,
) -> SigningKey:
    """Read a PEM private key (PKCS#8 or traditional, encrypted or not).

    A certificate for the key may follow it in ``data`` or come in
    ``certificate_pem``; SAML keys without one get a self-signed certificate.
    """
    password = None if passphrase is None else _secret(passphrase)
    try:
        private_key = serialization.load_pem_private_key(data, password=password)
    except TypeError as error:  # passphrase given but not needed, or needed but missing
        raise KeyImportError(f"{error}: check the passphrase option") from None
    except ValueError:
        raise KeyImportError("wrong passphrase, or not a PEM private key") from None
    certificates = _certificates(data + b"\n" + (certificate_pem or b""))
    return _signing_key(private_key, certificates, use=use, now=now, alg=alg, state=state)


def export_pkcs12(
    key: SigningKey, *, passphrase: Passphrase, friendly_name: str | None = None
) -> bytes:
    """Key and certificate as PKCS#12 (PBES2 AES-256-CBC, HMAC-SHA256) under a passphrase."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(_secret(passphrase))
    )
    name = (friendly_name or key.kid).encode("utf-8")
    return pkcs12.serialize_key_and_certificates(
        name, key.private_key, key.certificate, None, encryption
    )


def import_pkcs12(
    data: bytes,
    *,
    passphrase: Passphrase,
    use: KeyUse,
    now: datetime,
    alg: str | None = None,
    state: KeyState = KeyState.NEXT,
) -> SigningKey:
    """Read a PKCS#12 file (key and, optionally, its certificate and chain)."""
    password = _secret(passphrase)
    try:
        private_key, certificate, chain = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        raise KeyImportError("wrong passphrase, or not a PKCS#12 file") from None
    if private_key is None:
        raise KeyImportError("the PKCS#12 file holds no private key")
    certificates = ([certificate] if certificate is not None else []) + list(chain)
    return _signing_key(private_key, certificates, use=use, now=now, alg=alg, state=state)


def _secret(passphrase: Passphrase) -> bytes:
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    if not secret:
        raise KeyImportError("the passphrase must not be empty")
    return secret


def _certificates(data: bytes) -> list[x509.Certificate]:
    if _CERTIFICATE_MARKER not in data:
        return []
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise KeyImportError("a PEM certificate in the file cannot be read") from None


def _signing_key(
    private_key: object,
    certificates: list[x509.Certificate],
    *,
    use: KeyUse,
    now: datetime,
    alg: str | None,
    state: KeyState,
) -> SigningKey:
    key = _supported(private_key)
    alg = alg or ("ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256")
    if alg not in ALGORITHMS[use] or (alg == "ES256") != isinstance(
        key, ec.EllipticCurvePrivateKey
    ):
        raise KeyImportError(f"algorithm {alg} does not fit this key for {use.value} use")
    certificate = _matching(certificates, key)
    if certificate is None and use is KeyUse.SAML:
        certificate = self_signed_certificate(key, common_name="Interops IdP signing key", now=now)
    return SigningKey(
        kid=thumbprint(key.public_key()),
        use=use,
        alg=alg,
        state=state,
        private_key=key,
        created_at=now,
        certificate=certificate,
        activated_at=now if state is KeyState.ACTIVE else None,
    )


def _supported(key: object) -> PrivateKey:
    """Refuse weak or unsupported keys: RSA under 2048 bits, EC other than P-256, EdDSA, DSA."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise KeyImportError(f"RSA key of {key.key_size} bits: 2048 bits or more required")
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise KeyImportError(f"EC curve {key.curve.name} unsupported: use P-256")
        return key
    kind = type(key).__name__.removesuffix("PrivateKey")
    raise KeyImportError(f"unsupported key type {kind}: use RSA (2048 bits or more) or EC P-256")


def _matching(certificates: list[x509.Certificate], key: PrivateKey) -> x509.Certificate | None:
    if not certificates:
        return None
    public_key = key.public_key()
    for certificate in certificates:
        if certificate.public_key() == public_key:
            return certificate
    raise KeyImportError("the certificate given is for another key")
