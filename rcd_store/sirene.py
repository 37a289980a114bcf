"""Bulk import of INSEE's public SIRENE stock files (StockEtablissement, StockUniteLegale).

Columns are read by their header names in any order (extra columns ignored).
The files are streamed and written in batches with upserts, so memory stays
flat as the file grows and re-running an import updates instead of duplicating.
A bad row is reported with its line number and skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rcd_store import audit
from rcd_store.db import upsert
from rcd_store.errors import DirectoryError
from rcd_store.identifiers import InvalidIdentifier, validate_siren, validate_siret
from rcd_store.models import Company, Establishment

BATCH = 2000
ETAB_REQUIRED: tuple[str, ...] = ("siren", "nic", "siret")
UL_REQUIRED: tuple[str, ...] = ("siren",)
ADDRESS_COLUMNS = (
    "numeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
)
NAME_COLUMNS = (
    "denominationUniteLegale",
    "denominationUsuelleEtablissement",
    "enseigne1Etablissement",
)


class ImportFormatError(DirectoryError, ValueError):
    """The file cannot be imported at all (missing columns, not CSV); the message
    starts with « import impossible » and is shown to the operator as it is."""


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    #: only the first errors are kept in memory; the rest are counted
    max_errors: int = 1000

    def reject(self, line: int, reason: str, on_error: Callable[[str], None] | None) -> None:
        self.skipped += 1
        message = f"ligne {line} : {reason}"
        if on_error is not None:
            on_error(message)
        if len(self.errors) < self.max_errors:
            self.errors.append(message)


@contextmanager
def _reader(stream: IO[bytes], required: tuple[str, ...]) -> Iterator[csv.DictReader[str]]:
    """A dict reader over ``stream``; the caller's stream is left open (detached) after."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        yield _dict_reader(text, required)
    finally:
        text.detach()


def _dict_reader(text: io.TextIOWrapper, required: tuple[str, ...]) -> csv.DictReader[str]:
    sample = text.readline()
    if not sample:
        raise ImportFormatError("import impossible : fichier vide")
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    header = next(csv.reader([sample], delimiter=delimiter))
    missing = [name for name in required if name not in header]
    if missing:
        raise ImportFormatError(f"import impossible : colonnes manquantes : {', '.join(missing)}")
    return csv.DictReader(text, fieldnames=header, delimiter=delimiter)


def _address(row: dict[str, str]) -> str | None:
    street = " ".join(row.get(c, "").strip() for c in ADDRESS_COLUMNS[:3] if row.get(c, "").strip())
    town = " ".join(row.get(c, "").strip() for c in ADDRESS_COLUMNS[3:] if row.get(c, "").strip())
    address = ", ".join(part for part in (street, town) if part)
    return address[:400] or None


def _name(row: dict[str, str]) -> str | None:
    for column in NAME_COLUMNS:
        value = (row.get(column) or "").strip()
        if value and value != "[ND]":
            return value[:200]
    person = " ".join((row.get(c) or "").strip() for c in ("prenom1UniteLegale", "nomUniteLegale"))
    person = " ".join(person.split())
    return person[:200] or None


def _etab_row(row: dict[str, str]) -> dict[str, Any]:
    siren = validate_siren(row["siren"] or "")
    siret = validate_siret(row["siret"] or "")
    nic = (row["nic"] or "").strip()
    if siret != siren + nic:
        raise InvalidIdentifier(f"SIRET {siret} différent de SIREN + NIC ({siren} + {nic})")
    return {
        "siren": siren,
        "siret": siret,
        "head_office": (row.get("etablissementSiege") or "").strip().lower()
        in ("true", "1", "oui"),
        "active": (row.get("etatAdministratifEtablissement") or "A").strip().upper() != "F",
        "address": _address(row),
        "name": _name(row),
    }


def _upsert_companies(
    session: Session, rows: list[dict[str, Any]], *, rename: bool
) -> dict[str, int]:
    names: dict[str, str | None] = {}
    for row in rows:
        names[row["siren"]] = row.get("name") or names.get(row["siren"])
    values = [{"siren": s, "name": n or f"SIREN {s}"} for s, n in names.items()]
    stmt = upsert(session, Company).values(values)
    if rename:
        stmt = stmt.on_conflict_do_update(
            index_elements=["siren"], set_={"name": stmt.excluded.name}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["siren"])
    session.execute(stmt)
    ids = session.execute(select(Company.siren, Company.id).where(Company.siren.in_(list(names))))
    return {siren: company_id for siren, company_id in ids}


def _flush_establishments(session: Session, rows: list[dict[str, Any]]) -> None:
    by_siret = {row["siret"]: row for row in rows}  # last row for a SIRET wins
    company_ids = _upsert_companies(session, list(by_siret.values()), rename=False)
    values = [
        {
            "siret": r["siret"],
            "company_id": company_ids[r["siren"]],
            "head_office": r["head_office"],
            "active": r["active"],
            "address": r["address"],
        }
        for r in by_siret.values()
    ]
    stmt = upsert(session, Establishment).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["siret"],
        set_={
            key: getattr(stmt.excluded, key)
            for key in ("company_id", "head_office", "active", "address")
        },
    )
    session.execute(stmt)


def _rows(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, str]]]:
    # the header line was read before the reader started: physical line = line_num + 1
    for row in reader:
        yield reader.line_num + 1, row


def _ul_row(row: dict[str, str]) -> dict[str, Any]:
    name = _name(row)
    if name is None:
        raise ValueError("dénomination manquante")
    return {"siren": validate_siren(row["siren"] or ""), "name": name}


def _stream(
    reader: csv.DictReader[str],
    parse: Callable[[dict[str, str]], dict[str, Any]],
    flush: Callable[[list[dict[str, Any]]], None],
    report: ImportReport,
    on_error: Callable[[str], None] | None,
    on_progress: Callable[[int], None] | None,
    batch: int,
) -> None:
    """Parse rows one by one, write them ``batch`` at a time; bad rows are reported and skipped."""
    pending: list[dict[str, Any]] = []
    for line, row in _rows(reader):
        report.rows += 1
        try:
            pending.append(parse(row))
        except (ValueError, KeyError, TypeError) as exc:
            report.reject(line, str(exc), on_error)
            continue
        if len(pending) >= batch:
            flush(pending)
            report.imported += len(pending)
            pending.clear()
            if on_progress is not None:
                on_progress(report.rows)
    if pending:
        flush(pending)
        report.imported += len(pending)


def _import(
    session: Session,
    stream: IO[bytes],
    kind: str,
    on_error: Callable[[str], None] | None,
    on_progress: Callable[[int], None] | None,
    batch: int,
) -> ImportReport:
    report = ImportReport()
    if kind == "etablissements":
        required, parse = ETAB_REQUIRED, _etab_row

        def flush(rows: list[dict[str, Any]]) -> None:
            _flush_establishments(session, rows)
    else:
        required, parse = UL_REQUIRED, _ul_row

        def flush(rows: list[dict[str, Any]]) -> None:
            _upsert_companies(session, rows, rename=True)

    with _reader(stream, required) as reader:
        _stream(reader, parse, flush, report, on_error, on_progress, batch)
    audit.record(
        session,
        "sirene.imported",
        actor="import",
        data={
            "file": kind,
            "rows": report.rows,
            "imported": report.imported,
            "skipped": report.skipped,
        },
    )
    return report


def import_etablissements(
    session: Session,
    stream: IO[bytes],
    *,
    on_error: Callable[[str], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
) -> ImportReport:
    """Stream a StockEtablissement CSV into the directory; the caller commits."""
    return _import(session, stream, "etablissements", on_error, on_progress, batch)


def import_unites_legales(
    session: Session,
    stream: IO[bytes],
    *,
    on_error: Callable[[str], None] | None = None,
    batch: int = BATCH,
) -> ImportReport:
    """Stream a StockUniteLegale CSV: company names by SIREN (upserted)."""
    return _import(session, stream, "unites_legales", on_error, None, batch)
