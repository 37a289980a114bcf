"""token_suite.errors: codes, statuses, OAuth errors, SOAP faults, WWW-Authenticate."""

from __future__ import annotations

import pytest
from lxml import etree

from token_suite import errors
from token_suite.errors import ALL_ERRORS, BY_CODE, InteropsError

EXPECTED = {
    errors.InvalidSecurityToken: ("wsse:InvalidSecurityToken", 400, "invalid_token"),
    errors.SecurityTokenUnavailable: ("wsse:SecurityTokenUnavailable", 401, "invalid_token"),
    errors.FailedCheck: ("wsse:FailedCheck", 401, "invalid_token"),
    errors.InvalidVI: ("vi:InvalidVI", 401, "invalid_token"),
    errors.InvalidService: ("vi:InvalidService", 401, "invalid_token"),
    errors.InvalidIssuer: ("vi:InvalidIssuer", 401, "invalid_token"),
    errors.InvalidAuthLevel: ("vi:InvalidAuthLevel", 401, "insufficient_user_authentication"),
    errors.InvalidPagm: ("vi:InvalidPagm", 403, "insufficient_scope"),
    errors.Replay: ("vi:Replay", 401, "invalid_token"),
    errors.InvalidSecurity: ("wsse:InvalidSecurity", 401, "invalid_token"),
    errors.DroitsInsuffisants: ("DroitsInsuffisants", 403, "insufficient_scope"),
}
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def test_every_class_is_listed_once() -> None:
    assert set(ALL_ERRORS) == set(EXPECTED)
    assert len(BY_CODE) == len(ALL_ERRORS)
    assert all(issubclass(cls, InteropsError) for cls in ALL_ERRORS)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_code_status_and_oauth_error(cls: type[InteropsError]) -> None:
    error = cls("why")
    assert (error.code, error.http_status, error.oauth_error) == EXPECTED[cls]
    assert BY_CODE[error.code] is cls
    assert error.reason == "why"
    assert str(error) == f"{error.code}: why"


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_reason_defaults_to_the_code(cls: type[InteropsError]) -> None:
    error = cls()
    assert error.reason == error.code
    assert error.args == (error.code,)


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda cls: cls.__name__)
def test_soap_fault_is_well_formed_and_escapes_the_reason(cls: type[InteropsError]) -> None:
    reason = 'a <b> & "c" \' ]]> </faultstring>'
    fault = etree.fromstring(cls(reason).soap_fault().encode("utf-8"))
    assert fault.tag == f"{{{SOAP}}}Fault"
    assert fault.findtext("faultstring") == reason
    assert fault.findtext("faultcode") == cls.code
    prefix = cls.code.split(":", 1)[0] if ":" in cls.code else "vi"
    assert prefix in fault.nsmap  # the code's prefix is declared, so the QName resolves


def test_www_authenticate_quotes_the_reason() -> None:
    value = errors.FailedCheck('bad "sig" \\ here').www_authenticate()
    assert value == (
        'Bearer error="invalid_token", '
        'error_description="wsse:FailedCheck: bad \\"sig\\" \\\\ here"'
    )
    assert errors.InvalidPagm().www_authenticate().startswith('Bearer error="insufficient_scope"')
