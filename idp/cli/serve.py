"""``idp serve`` and ``idp db upgrade``."""

from __future__ import annotations

import click
from flask import Flask

from idp.cli.common import CommandError, emit, json_option, make_app, upgrade_database
from idp.cli.production import DEFAULT_SERVER, SERVERS, server_command


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Adresse d'écoute.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--demo", is_flag=True, help="Charge l'annuaire de démonstration et affiche ses comptes."
)
@click.option(
    "--partner-port",
    default=5001,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port du site partenaire de démonstration (avec --demo).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Lance le serveur de production avec N processus (sans --demo).",
)
@click.option(
    "--server",
    type=click.Choice(SERVERS),
    default=DEFAULT_SERVER,
    show_default=True,
    help="Serveur de production (avec --workers).",
)
def serve(
    host: str, port: int, demo: bool, partner_port: int, workers: int | None, server: str
) -> None:
    """Lance le fournisseur d'identité (SQLite embarquée par défaut) ; avec --workers N, le
    serveur de production à N processus."""
    import os

    from werkzeug.serving import run_simple

    from idp.cli.common import ready_app
    from idp.outbox.delivery import stop_on_sigterm
    from idp.tokens.signing import ensure_keys

    if workers is not None and demo:
        raise CommandError("--demo se lance sans --workers (un seul processus)")
    overrides: dict[str, object] = {"DEMO": True} if demo else {}
    # the outbox sent by a background thread (and by each production worker), stopped at exit
    os.environ.setdefault("IDP_OUTBOX_BACKGROUND", "1")
    os.environ.setdefault("IDP_EVENTS_BACKGROUND", "1")  # and the security events pushed
    os.environ.setdefault("IDP_SAML_METADATA_BACKGROUND", "1")  # partners' metadata refreshed
    stop_on_sigterm()
    if "IDP_BASE_URL" not in os.environ:
        overrides["BASE_URL"] = f"http://{host}:{port}"
    app = ready_app(**overrides)  # the embedded SQLite migrated, any other refused if old

    ensure_keys(app)
    if workers is not None:
        _exec_production(server, host, port, workers, str(overrides.get("BASE_URL", "")))
    if demo:
        from idp.demo import directory as demo_data

        logins = demo_data.load(app)
        click.echo(demo_data.describe(logins, app.config["BASE_URL"]))
        _start_demo_partner(app, host, partner_port)
    click.echo(f"Service d'identité à l'écoute sur http://{host}:{port}/ (Ctrl+C pour arrêter)")
    run_simple(host, port, app, threaded=True, use_reloader=False)


def _exec_production(server: str, host: str, port: int, workers: int, base_url: str) -> None:
    """Replace this process by the production server (its master gets the signals); the
    workers build the app from the same ``IDP_*`` environment."""
    import os

    from idp.auth.passwords import SETTING, default_concurrency
    from idp.cli.common import dispose_apps

    command = server_command(server, host=host, port=port, workers=workers)
    env = dict(os.environ)
    if base_url:
        env["IDP_BASE_URL"] = base_url
    if not env.get(f"IDP_{SETTING}"):  # the workers share the cores' argon2id capacity
        env[f"IDP_{SETTING}"] = str(default_concurrency(workers))
    click.echo(f"Service d'identité ({server}, {workers} processus) sur http://{host}:{port}/")
    dispose_apps()
    os.execvpe(command[0], command, env)


def _start_demo_partner(app: Flask, host: str, port: int) -> None:
    """The demo partner site in a thread beside the identity provider (a busy port
    only warns: the identity provider still starts)."""
    import threading

    from werkzeug.serving import make_server

    from idp.demo import directory as demo_data
    from idp.demo.partner import create_partner_app

    site = demo_data.partner_site(app, base_url=f"http://{host}:{port}")
    demo_data.register_partner_site(app, site)
    try:
        server = make_server(host, port, create_partner_app(site), threaded=True)
    except OSError as exc:
        click.echo(f"attention : site partenaire de démonstration non lancé ({exc})", err=True)
        return
    threading.Thread(target=server.serve_forever, name="demo-partner", daemon=True).start()
    click.echo(f"Site partenaire de démonstration : {site.base_url}/ (service {site.service})")


@click.command("demo-partner")
@click.option("--host", default="127.0.0.1", show_default=True, help="Adresse d'écoute.")
@click.option("--port", default=5001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--name", default="Partenaire démo", show_default=True, help="Nom du partenaire.")
@click.option("--service", default="DSN", show_default=True, help="Service reçu (code).")
def demo_partner(host: str, port: int, name: str, service: str) -> None:
    """Lance un site partenaire de démonstration et l'enregistre (SAML et OpenID Connect)."""
    from werkzeug.serving import run_simple

    from idp.cli.common import ready_app
    from idp.demo import directory as demo_data
    from idp.demo.partner import create_partner_app
    from rcd_store.errors import DirectoryError

    app = ready_app()
    site = demo_data.partner_site(
        app, base_url=f"http://{host}:{port}", name=name, service=service.strip().upper()
    )
    try:
        demo_data.register_partner_site(app, site)
    except DirectoryError as exc:
        raise CommandError(str(exc)) from None
    click.echo(
        f"Site partenaire « {site.name} » à l'écoute sur {site.base_url}/ "
        f"(service d'identité : {site.idp_url}) ; Ctrl+C pour arrêter"
    )
    run_simple(host, port, create_partner_app(site), threaded=True, use_reloader=False)


@click.group("db")
def db_group() -> None:
    """Base de données."""


@db_group.command("upgrade")
@json_option
def db_upgrade(as_json: bool) -> None:
    """Applique les migrations (Alembic) jusqu'à la dernière version et crée les premières
    clés de signature s'il n'y en a pas : les workers servent des jetons dès leur départ."""
    from idp import migrate
    from idp.cli.keys import audit_rotations
    from idp.stores.db import database
    from idp.tokens.signing import ensure_keys

    app = make_app()
    upgrade_database(app)
    revision = migrate.current_revision(database(app).engine)
    rotations = ensure_keys(app)
    audit_rotations(app, rotations)
    created = [
        {"use": r.use.value, "kid": t.kid, "alg": t.alg, "state": t.state.value}
        for r in rotations
        for t in r.transitions
    ]
    lines = [f"base de données à jour (révision {revision})"]
    lines += [f"clé {c['use']} {c['kid']} ({c['alg']}) : {c['state']}" for c in created]
    emit(as_json, {"revision": revision, "keys_created": created}, "\n".join(lines))


def register(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(demo_partner)
    cli.add_command(db_group)
