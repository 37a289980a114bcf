"""token_suite has one error root: everything it raises to a caller is an InteropsError."""

from __future__ import annotations

import pytest

from tests.error_roots import defined_exceptions, outside
from token_suite.errors import InteropsError
from token_suite.metadata import MetadataError, parse_sp_metadata


def test_every_exception_class_derives_from_interops_error() -> None:
    assert len(defined_exceptions("token_suite")) >= 10  # the walk finds the tree itself
    assert outside(InteropsError, "token_suite") == []


def test_metadata_errors_carry_a_wire_code_and_stay_value_errors() -> None:
    """A caller catching InteropsError refuses bad metadata like a bad token; callers
    written against ``except ValueError`` keep working; the message reads alone."""
    with pytest.raises(InteropsError) as caught:
        parse_sp_metadata(b"<not-metadata/>")
    assert isinstance(caught.value, MetadataError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == "wsse:InvalidSecurityToken"
    assert caught.value.http_status == 400
    assert str(caught.value) == "not SAML 2.0 metadata (no EntityDescriptor)"
