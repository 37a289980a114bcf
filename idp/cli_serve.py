"""``idp serve`` and ``idp db upgrade``."""

from __future__ import annotations

import click

from idp.cli import CommandError, emit, json_option, make_app


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Adresse d'écoute.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--demo", is_flag=True, help="Charge l'annuaire de démonstration et affiche ses comptes.")
def serve(host: str, port: int, demo: bool) -> None:
    """Lance le fournisseur d'identité (SQLite embarquée par défaut)."""
    import os

    from werkzeug.serving import run_simple

    from idp.db import database

    overrides: dict[str, object] = {"DEMO": True} if demo else {}
    if "IDP_BASE_URL" not in os.environ:
        overrides["BASE_URL"] = f"http://{host}:{port}"
    app = make_app(**overrides)
    db = database(app)
    from rcd_store import migrate

    if not migrate.is_up_to_date(db.engine):
        if not app.config["EMBEDDED_DATABASE"]:
            raise CommandError("base de données pas à jour : lancez « idp db upgrade »")
        db.upgrade()
    from idp.signing import ensure_keys

    ensure_keys(app)
    if demo:
        from idp import demo as demo_data

        logins = demo_data.load(app)
        click.echo(demo_data.describe(logins, app.config["BASE_URL"]))
    click.echo(f"Service d'identité à l'écoute sur http://{host}:{port}/ (Ctrl+C pour arrêter)")
    run_simple(host, port, app, threaded=True, use_reloader=False)


@click.group("db")
def db_group() -> None:
    """Base de données."""


@db_group.command("upgrade")
@json_option
def db_upgrade(as_json: bool) -> None:
    """Applique les migrations (Alembic) jusqu'à la dernière version."""
    from idp.db import database
    from rcd_store import migrate

    app = make_app()
    database(app).upgrade()
    revision = migrate.current_revision(database(app).engine)
    emit(as_json, {"revision": revision}, f"base de données à jour (révision {revision})")


def register(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(db_group)
