"""Helpers for the SAML tests: the stored test keys, a fixed clock, and a way to
craft *validly signed* jetons with unusual content (to reach checks 3 to 8 and
the structural refusals that only a correctly signed document can reach)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from keys.model import KeyState, KeyUse, SigningKey, thumbprint
from token_suite import _xmldsig, saml
from token_suite.replay import InMemoryReplayCache
from token_suite.trust import Trust
from token_suite.vector import ACR_TOTP, Habilitation, IdentityVector

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "saml"
NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
ISSUER = "urn:interops:73282932000074:idp:test"
AUDIENCE = "https://sp.example/metadata"
RECIPIENT = "https://sp.example/acs"
NS = {"samlp": saml.SAMLP_NS, "saml": saml.SAML_NS, "ds": _xmldsig.DS_NS}

VECTOR = IdentityVector(
    subject="D0000001",
    siret="73282932000074",
    family_name="Dupont",
    given_name="Jeanne",
    email="jeanne.dupont@example.fr",
    pagm=("PAGM_DSN_DECL", "PAGM_DSN_CONSULT"),
    habilitations=(
        Habilitation("DSN", "73282932000074", "DECLARANT"),
        Habilitation("DSN", "73282932000074", "CONSULTANT"),
    ),
    acr=ACR_TOTP,
    auth_time=NOW - timedelta(minutes=1),
    session_index="_session0001",
)


def load_key(name: str) -> SigningKey:
    """A key stored beside the vectors (``idp`` is trusted, ``attacker`` is not)."""
    private_key: Any = serialization.load_pem_private_key(
        (VECTORS / f"{name}_key.pem").read_bytes(), None
    )
    certificate = x509.load_pem_x509_certificate((VECTORS / f"{name}_cert.pem").read_bytes())
    return SigningKey(
        kid=thumbprint(private_key.public_key()),
        use=KeyUse.SAML,
        alg="RS256",
        state=KeyState.ACTIVE,
        private_key=private_key,
        created_at=NOW,
        certificate=certificate,
    )


IDP = load_key("idp")
ATTACKER = load_key("attacker")
TRUST = Trust(issuer=ISSUER, saml_certificates=(IDP.certificate,))  # type: ignore[arg-type]


def fresh_cache() -> InMemoryReplayCache:
    return InMemoryReplayCache(clock=lambda: NOW)


def issue(**options: Any) -> bytes:
    arguments: dict[str, Any] = {
        "signer": IDP,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "recipient": RECIPIENT,
        "now": NOW,
        "in_response_to": "_request0001",
    }
    arguments.update(options)
    vector = arguments.pop("vector", VECTOR)
    return saml.issue(vector, **arguments)


def verify(document: bytes | str, **options: Any) -> IdentityVector:
    arguments: dict[str, Any] = {
        "trust": TRUST,
        "audience": AUDIENCE,
        "now": NOW,
        "replay": fresh_cache(),
    }
    arguments.update(options)
    return saml.verify(document, **arguments)


def resign(
    element: etree._Element,
    key: SigningKey = IDP,
    *,
    edit: Callable[[str], str] = lambda t: t,
    position: int = 1,
) -> None:
    """Replace ``element``'s signature by a fresh one (template text passed through ``edit``)."""
    old = element.find(_xmldsig.SIGNATURE_TAG)
    if old is not None:
        element.remove(old)
    material = _xmldsig.material(key)
    template = etree.fromstring(edit(_xmldsig.signature_template(element.get("ID"), material)))
    element.insert(position, template)
    _xmldsig.sign(element, template, material)


def crafted(
    mutate: Callable[[etree._Element], None] = lambda a: None,
    *,
    edit: Callable[[str], str] = lambda t: t,
    **options: Any,
) -> bytes:
    """An issued Response (unsigned) whose Assertion was changed by ``mutate``, then re-signed."""
    root = etree.fromstring(issue(sign_response=False, **options))
    assertion = root.find("saml:Assertion", NS)
    mutate(assertion)
    resign(assertion, edit=edit)
    return bytes(etree.tostring(root))


def tree(document: bytes) -> etree._Element:
    return etree.fromstring(document)


def serialize(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root))
