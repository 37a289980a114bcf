"""``idp import sirene``: bulk import of the public SIRENE stock files."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from tqdm import tqdm

from idp.cli.common import CommandError, directory_session, emit, json_option
from rcd_store import sirene


@click.group("import")
def import_group() -> None:
    """Imports en masse."""


@import_group.command("sirene")
@click.argument("etablissements", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--unites-legales",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Fichier StockUniteLegale (raisons sociales).",
)
@click.option("--quiet", is_flag=True, help="Sans barre de progression.")
@json_option
def import_sirene(
    etablissements: Path, unites_legales: Path | None, quiet: bool, as_json: bool
) -> None:
    """Importe StockEtablissement (et StockUniteLegale) : mise à jour sans doublon,
    lignes invalides signalées avec leur numéro et ignorées."""

    def on_error(message: str) -> None:
        tqdm.write(f"{message}", file=sys.stderr)

    reports = {}
    try:
        with directory_session() as session:
            if unites_legales is not None:
                with unites_legales.open("rb") as stream:
                    reports["unites_legales"] = sirene.import_unites_legales(
                        session, stream, on_error=on_error
                    )
            size = os.path.getsize(etablissements)
            with (
                etablissements.open("rb") as stream,
                tqdm(
                    total=size,
                    unit="o",
                    unit_scale=True,
                    disable=quiet or as_json,
                    desc="établissements",
                    file=sys.stderr,
                    delay=1.0,
                ) as bar,
            ):

                def progress(_rows: int) -> None:
                    bar.update(stream.tell() - bar.n)

                reports["etablissements"] = sirene.import_etablissements(
                    session, stream, on_error=on_error, on_progress=progress
                )
                bar.update(size - bar.n)
    except UnicodeDecodeError:
        raise CommandError("import impossible : le fichier n'est pas en UTF-8") from None
    etab = reports["etablissements"]
    payload = {
        name: {"rows": r.rows, "imported": r.imported, "skipped": r.skipped}
        for name, r in reports.items()
    }
    emit(
        as_json,
        payload,
        f"{etab.imported} établissements importés, {etab.skipped} lignes ignorées sur {etab.rows}",
    )
