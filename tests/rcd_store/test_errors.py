"""rcd_store has one error root: everything it raises to a caller is a DirectoryError."""

from __future__ import annotations

from rcd_store.errors import DirectoryError
from tests.error_roots import defined_exceptions, outside


def test_every_exception_class_derives_from_directory_error() -> None:
    assert len(defined_exceptions("rcd_store")) >= 5
    assert outside(DirectoryError, "rcd_store") == []


def test_each_error_says_how_a_web_caller_answers() -> None:
    import psycopg

    from rcd_store.audit import AuditKeyUnavailable
    from rcd_store.db import DatabaseDeadline
    from rcd_store.errors import Duplicate, InvalidValue, NotFound
    from rcd_store.outbox import SendError

    statuses = {
        DirectoryError: 400,
        InvalidValue: 400,
        NotFound: 404,
        Duplicate: 409,
        AuditKeyUnavailable: 500,
        SendError: 503,
        DatabaseDeadline: 503,
    }
    assert {cls: cls.http_status for cls in statuses} == statuses
    deadline = DatabaseDeadline("pas de réponse du serveur PostgreSQL en 2 s")
    assert isinstance(deadline, psycopg.OperationalError)  # SQLAlchemy still sees a disconnect
    assert deadline.message == str(deadline) == "pas de réponse du serveur PostgreSQL en 2 s"


def test_refused_values_stay_value_errors_with_their_message() -> None:
    """Callers written against ``except ValueError`` keep working."""
    from rcd_store.identifiers import InvalidIdentifier, validate_siren
    from rcd_store.names import clean_display_name
    from rcd_store.passwords import HashParameters, PasswordPolicyError, check_policy

    for call, cls in (
        (lambda: validate_siren("12"), InvalidIdentifier),
        (lambda: clean_display_name("  "), DirectoryError),
        (lambda: HashParameters(memory_kib=1024), DirectoryError),
        (lambda: check_policy("court"), PasswordPolicyError),
    ):
        try:
            call()
        except ValueError as exc:
            assert isinstance(exc, cls) and isinstance(exc, DirectoryError)
            assert exc.message and exc.http_status == 400
        else:
            raise AssertionError(f"{call} accepted a bad value")
