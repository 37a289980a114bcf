"""token_suite.metadata: IdP metadata out, IdP and SP metadata in."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree

from token_suite import metadata
from token_suite.metadata import (
    BINDING_POST,
    BINDING_REDIRECT,
    MetadataError,
    idp_metadata,
    parse_sp_metadata,
)
from token_suite.trust import Trust, trust_from_idp_metadata

from .saml_support import ATTACKER, IDP, ISSUER, NOW, issue, verify

MD = metadata.MD
SSO = "https://idp.example/saml/sso"
SLO = "https://idp.example/saml/slo"


def _idp(**options: object) -> bytes:
    arguments: dict[str, object] = {
        "entity_id": ISSUER,
        "signing_keys": [IDP, ATTACKER],
        "sso_url": SSO,
        "slo_url": SLO,
    }
    arguments.update(options)
    return idp_metadata(**arguments)  # type: ignore[arg-type]


def test_idp_metadata_shape() -> None:
    root = etree.fromstring(_idp(valid_until=NOW + timedelta(days=7)))
    assert root.get("entityID") == ISSUER and root.get("validUntil") == "2025-03-08T10:00:00Z"
    descriptor = root.find(f"{MD}IDPSSODescriptor")
    keys = descriptor.findall(f"{MD}KeyDescriptor")
    assert [k.get("use") for k in keys] == ["signing", "signing"]
    sso = descriptor.findall(f"{MD}SingleSignOnService")
    assert [(s.get("Binding"), s.get("Location")) for s in sso] == [
        (BINDING_REDIRECT, SSO),
        (BINDING_POST, SSO),
    ]
    assert len(descriptor.findall(f"{MD}SingleLogoutService")) == 2
    assert root.find(metadata.DS + "Signature") is None


def test_idp_metadata_without_slo_and_errors() -> None:
    root = etree.fromstring(_idp(slo_url=None))
    assert root.find(f".//{MD}SingleLogoutService") is None
    with pytest.raises(ValueError, match="at least one"):
        _idp(signing_keys=[])
    with pytest.raises(ValueError, match="timezone"):
        _idp(valid_until=NOW.replace(tzinfo=None))


def test_trust_from_own_metadata_verifies_jetons() -> None:
    trust = Trust.from_metadata(_idp())
    assert trust.issuer == ISSUER and len(trust.saml_certificates) == 2
    assert verify(issue(), trust=trust).subject == "D0000001"


def test_trust_from_path_and_text(tmp_path: Path) -> None:
    path = tmp_path / "idp.xml"
    path.write_bytes(_idp())
    assert trust_from_idp_metadata(path).issuer == ISSUER
    assert trust_from_idp_metadata(str(path)).issuer == ISSUER
    assert trust_from_idp_metadata(_idp().decode()).issuer == ISSUER
    with pytest.raises(MetadataError, match="cannot read"):
        trust_from_idp_metadata(tmp_path / "missing.xml")


def test_signed_metadata_verified_when_asked() -> None:
    assert IDP.certificate is not None and ATTACKER.certificate is not None
    signed = _idp(signer=IDP)
    assert etree.fromstring(signed)[0].tag == metadata.DS + "Signature"
    trust = trust_from_idp_metadata(signed, signed_by=[IDP.certificate])
    assert trust.issuer == ISSUER
    with pytest.raises(MetadataError, match="signature refused"):
        trust_from_idp_metadata(signed, signed_by=[ATTACKER.certificate])
    with pytest.raises(MetadataError, match="signature refused"):
        trust_from_idp_metadata(_idp(), signed_by=[IDP.certificate])
    tampered = signed.replace(SSO.encode(), b"https://evil.example/sso")
    with pytest.raises(MetadataError, match="signature refused"):
        trust_from_idp_metadata(tampered, signed_by=[IDP.certificate])


def test_entities_descriptor_with_one_idp() -> None:
    inner = _idp().split(b"?>", 1)[1]
    wrapped = f'<md:EntitiesDescriptor xmlns:md="{metadata.MD_NS}">'.encode() + inner
    assert trust_from_idp_metadata(wrapped + b"</md:EntitiesDescriptor>").issuer == ISSUER
    twice = wrapped + inner + b"</md:EntitiesDescriptor>"
    with pytest.raises(MetadataError, match="found 2"):
        trust_from_idp_metadata(twice)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"<x/>", "not SAML 2.0 metadata"),
        (b"<x", "unreadable"),
        (b'<!DOCTYPE x [<!ENTITY e "e">]><x/>', "unreadable"),
        (
            f'<md:EntityDescriptor xmlns:md="{metadata.MD_NS}" entityID="e"/>'.encode(),
            "found 0",
        ),
    ],
)
def test_malformed_idp_metadata(document: bytes, reason: str) -> None:
    with pytest.raises(MetadataError, match=reason):
        trust_from_idp_metadata(document)


def test_idp_metadata_without_entity_id_or_certificate() -> None:
    no_id = _idp().replace(f'entityID="{ISSUER}"'.encode(), b"")
    with pytest.raises(MetadataError, match="without entityID"):
        trust_from_idp_metadata(no_id)
    root = etree.fromstring(_idp())
    for key in root.iter(f"{MD}KeyDescriptor"):
        key.set("use", "encryption")
    with pytest.raises(MetadataError, match="no signing certificate"):
        trust_from_idp_metadata(etree.tostring(root))
    broken = _idp().replace(b"<ds:X509Certificate>MII", b"<ds:X509Certificate>!!!", 1)
    with pytest.raises(MetadataError, match="malformed X509Certificate"):
        trust_from_idp_metadata(broken)


def test_metadata_size_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "MAX_METADATA_SIZE", 100)
    with pytest.raises(MetadataError, match="too large"):
        trust_from_idp_metadata(_idp())


# ------------------------------------------------------------------------ SP


def _sp(acs: str, extra: str = "", attributes: str = "") -> bytes:
    certificate = metadata._xmldsig.material(ATTACKER).certificate_b64
    return (
        f'<md:EntityDescriptor xmlns:md="{metadata.MD_NS}" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://sp.example/metadata">'
        f'<md:SPSSODescriptor protocolSupportEnumeration="{metadata.PROTOCOL}"{attributes}>'
        f"<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{certificate}"
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        f"{extra}{acs}</md:SPSSODescriptor></md:EntityDescriptor>"
    ).encode()


ACS = (
    f'<md:AssertionConsumerService Binding="{BINDING_POST}" Location="https://sp.example/acs"'
    ' index="1"/>'
    f'<md:AssertionConsumerService Binding="{BINDING_POST}" Location="https://sp.example/acs0"'
    ' index="0"/>'
    f'<md:AssertionConsumerService Binding="{BINDING_REDIRECT}" Location="https://sp.example/r"'
    ' index="2" isDefault="true"/>'
)
SLO_SP = f'<md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location="https://sp.example/slo"/>'


def test_parse_sp_metadata() -> None:
    sp = parse_sp_metadata(_sp(ACS, SLO_SP, ' AuthnRequestsSigned="true" WantAssertionsSigned="1"'))
    assert sp.entity_id == "https://sp.example/metadata"
    assert len(sp.assertion_consumer_services) == 3
    assert sp.default_acs().location == "https://sp.example/acs0"
    assert sp.default_acs(BINDING_REDIRECT).is_default
    assert sp.single_logout_services[0].location == "https://sp.example/slo"
    assert sp.single_logout_services[0].index is None
    assert sp.signing_certificates == (ATTACKER.certificate,)
    assert sp.authn_requests_signed and sp.want_assertions_signed
    with pytest.raises(MetadataError, match="no assertion consumer service"):
        sp.default_acs("urn:other")


def test_parse_sp_metadata_defaults() -> None:
    sp = parse_sp_metadata(_sp(ACS, attributes=' AuthnRequestsSigned="false"'))
    assert not sp.authn_requests_signed and not sp.want_assertions_signed
    assert sp.single_logout_services == ()


@pytest.mark.parametrize(
    ("acs", "attributes", "reason"),
    [
        ("", "", "no AssertionConsumerService"),
        (f'<md:AssertionConsumerService Binding="{BINDING_POST}"/>', "", "without Binding"),
        (
            f'<md:AssertionConsumerService Binding="{BINDING_POST}" Location="x" index="a"/>',
            "",
            "malformed endpoint index",
        ),
        (ACS, ' WantAssertionsSigned="yes"', "malformed boolean"),
    ],
)
def test_malformed_sp_metadata(acs: str, attributes: str, reason: str) -> None:
    with pytest.raises(MetadataError, match=reason):
        parse_sp_metadata(_sp(acs, attributes=attributes))


def test_idp_metadata_is_not_sp_metadata() -> None:
    with pytest.raises(MetadataError, match="SPSSODescriptor"):
        parse_sp_metadata(_idp())
    assert issubclass(MetadataError, ValueError)
