"""token_suite: an SP's metadata signed by the partner (``messages.sp_metadata(...,
metadata_signer=...)``) and checked on reading (``parse_sp_metadata(signed_by=...)``);
its ``validUntil``, ``cacheDuration`` and encryption keys read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from token_suite import messages
from token_suite.metadata import MetadataError, parse_sp_metadata

from .saml_support import ATTACKER, IDP

ENTITY = "https://sp.example/metadata"
ACS = "https://sp.example/acs"


def _signed() -> bytes:
    return messages.sp_metadata(
        entity_id=ENTITY, acs_url=ACS, signing_key=ATTACKER, metadata_signer=IDP
    )


def test_signed_metadata_is_read_with_its_signer() -> None:
    sp = parse_sp_metadata(_signed(), signed_by=[IDP.certificate])
    assert sp.entity_id == ENTITY and sp.default_acs().location == ACS
    assert len(sp.signing_certificates) == 1
    assert parse_sp_metadata(_signed()).entity_id == ENTITY  # no key asked: not checked


@pytest.mark.parametrize(
    "document",
    [
        messages.sp_metadata(entity_id=ENTITY, acs_url=ACS, signing_key=ATTACKER),  # unsigned
        messages.sp_metadata(  # signed by another key
            entity_id=ENTITY, acs_url=ACS, signing_key=ATTACKER, metadata_signer=ATTACKER
        ),
        _signed().replace(ACS.encode(), b"https://attacker.example/acs"),  # tampered
        _signed().replace(  # a second element with the signed ID (wrapping)
            b"</md:SPSSODescriptor>",
            b'</md:SPSSODescriptor><md:Extensions><md:X ID="'
            + _signed().split(b'ID="')[1].split(b'"')[0]
            + b'"/></md:Extensions>',
        ),
    ],
    ids=["unsigned", "wrong-key", "tampered", "duplicate-id"],
)
def test_refused_unless_signed_by_the_given_key(document: bytes) -> None:
    with pytest.raises(MetadataError, match="signature refused"):
        parse_sp_metadata(document, signed_by=[IDP.certificate])


def _with(attributes: str, key_use: str | None = None) -> bytes:
    document = messages.sp_metadata(entity_id=ENTITY, acs_url=ACS, signing_key=ATTACKER)
    document = document.replace(b' entityID="', f'{attributes} entityID="'.encode(), 1)
    if key_use is None:
        return document
    return document.replace(b'use="signing"', key_use.encode())


def test_validity_and_cache_duration_are_read() -> None:
    sp = parse_sp_metadata(_with(' validUntil="2030-01-02T03:04:05Z" cacheDuration="PT2H30M"'))
    assert sp.valid_until == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert sp.cache_duration == timedelta(hours=2, minutes=30)
    plain = parse_sp_metadata(_with(""))
    assert plain.valid_until is None and plain.cache_duration is None
    assert plain.encryption_certificates == ()


def test_encryption_keys_are_read_apart() -> None:
    sp = parse_sp_metadata(_with("", key_use='use="encryption"'))
    assert sp.signing_certificates == () and len(sp.encryption_certificates) == 1
    both = parse_sp_metadata(_with("", key_use=""))  # no use: signing and encryption
    assert len(both.signing_certificates) == 1 and len(both.encryption_certificates) == 1


@pytest.mark.parametrize(
    "attributes",
    [
        ' validUntil="tomorrow"',
        ' cacheDuration="6H"',
        ' cacheDuration="P"',
        ' cacheDuration="-PT1H"',
    ],
)
def test_malformed_validity_is_refused(attributes: str) -> None:
    with pytest.raises(MetadataError, match="malformed"):
        parse_sp_metadata(_with(attributes))
