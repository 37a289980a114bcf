"""The ``idp`` command: serve, database, directory administration, keys and tokens.

Every command prints what it did; ``--json`` prints exactly one JSON object on
stdout. Bad input prints one line ``erreur : ...`` on stderr, changes nothing
and exits non-zero.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy.exc import SQLAlchemyError

from idp.cli import audit, directory, events, keys, outbox, partner, serve, token
from idp.cli.common import dispose_apps
from idp.console import cli as operator


@click.group(help="Service d'identité Interops : annuaire, jetons, connexion unique.")
def cli() -> None:
    """Root group."""


for _commands in (serve, directory, audit, keys, token, partner, outbox, events, operator):
    _commands.register(cli)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``idp`` console script."""
    try:
        result = cli.main(args=argv, prog_name="idp", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("erreur : interrompu", err=True)
        return 1
    except click.ClickException as exc:
        message = " ".join(exc.format_message().split())
        click.echo(f"erreur : {message}", err=True)
        return exc.exit_code
    except SQLAlchemyError as exc:
        click.echo(f"erreur : base de données : {str(exc).splitlines()[0]}", err=True)
        return 1
    finally:
        dispose_apps()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
