"""keys has one error root: everything it raises to a caller is a KeysError."""

from __future__ import annotations

from tests.error_roots import defined_exceptions, outside


def test_every_exception_class_derives_from_keys_error() -> None:
    from keys.errors import KeysError

    assert len(defined_exceptions("keys")) >= 5
    assert outside(KeysError, "keys") == []


def test_each_error_keeps_the_base_its_callers_catch() -> None:
    from keys.crypto import KeyDecryptionError
    from keys.errors import InvalidKey, UnknownKey
    from keys.io import KeyImportError
    from keys.jwks import JWKSError
    from keys.keyring import NoActiveKey
    from keys.store import KeyStoreConflict

    bases = {
        InvalidKey: ValueError,
        KeyImportError: ValueError,
        JWKSError: ValueError,
        UnknownKey: KeyError,
        NoActiveKey: LookupError,
        KeyDecryptionError: Exception,
        KeyStoreConflict: Exception,
    }
    assert all(issubclass(cls, base) for cls, base in bases.items())
    assert KeyStoreConflict("no key 'k1'").message == "no key 'k1'"


def test_refusals_of_keys_are_keys_errors() -> None:
    """What a caller hands the package wrongly is refused under the root, with a message."""
    import pytest

    from keys.crypto import MasterKey
    from keys.errors import InvalidKey, KeysError, UnknownKey
    from keys.generate import new_private_key

    with pytest.raises(InvalidKey, match="IDP_MASTER_KEY must be") as caught:
        MasterKey.from_text("not a key")
    assert isinstance(caught.value, KeysError) and "not a key" not in caught.value.message
    with pytest.raises(InvalidKey, match="unsupported algorithm"):
        new_private_key("HS256")
    assert UnknownKey("k1").message == "k1"
