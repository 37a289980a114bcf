"""What every ``idp`` command shares: the error it raises, ``--json`` and its output,
the app and the database session it works in. Command modules import this module
only; :mod:`idp.cli.main` gathers them (no cycle)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.config import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """A user error: printed as one line on stderr, exit status 1."""


def json_option(func: F) -> F:
    """``--json``: print exactly one JSON object on stdout."""
    return click.option("--json", "as_json", is_flag=True, help="Sortie JSON (un seul objet).")(
        func
    )


def emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    """Print ``text`` for people, or ``payload`` as one JSON object."""
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        click.echo(text)


_APPS: list[Flask] = []


def make_app(**overrides: Any) -> Flask:
    """The app of this command (its engine is disposed when the command ends)."""
    from idp.factory import create_app

    try:
        app = create_app(overrides or None)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    _APPS.append(app)
    return app


def dispose_apps() -> None:
    """Dispose of the engines of the apps this command made."""
    from idp.stores.db import database

    while _APPS:
        database(_APPS.pop()).engine.dispose()


def upgrade_database(app: Flask) -> None:
    """Apply the migrations, then make the audit chain key if there is none (sealing the
    heads of a trail written before the chain was keyed, see ``rcd_store.audit``)."""
    from idp.stores.db import database
    from rcd_store import audit

    database(app).upgrade()
    with directory_session(app) as session:
        audit.chain_key(session)


def ready_app(**overrides: Any) -> Flask:
    """An app whose database is up to date (the embedded SQLite is migrated by itself)."""
    from idp.stores.db import database

    app = make_app(**overrides)
    db = database(app)
    from idp import migrate

    if not migrate.is_up_to_date(db.engine):
        if not app.config["EMBEDDED_DATABASE"]:
            raise CommandError("base de données pas à jour : lancez « idp db upgrade »")
        upgrade_database(app)
    return app


@contextmanager
def directory_session(app: Flask | None = None) -> Iterator[Session]:
    """A session committed on success and rolled back on any error (nothing half-done)."""
    from idp.stores.db import database
    from rcd_store.errors import DirectoryError

    app = app or ready_app()
    session = database(app).sessions()
    try:
        yield session
        session.commit()
    except DirectoryError as exc:
        session.rollback()
        raise CommandError(str(exc)) from None
    except IntegrityError as exc:
        session.rollback()
        raise CommandError(f"conflit dans l'annuaire : {exc.orig}".splitlines()[0]) from None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
