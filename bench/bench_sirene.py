"""Benchmark: ``idp import sirene`` on generated SIRENE stock files.

One command, one summary line: rows per second for 100,000 rows on SQLite, and
peak resident memory for 25,000 / 50,000 / 100,000 rows (each in a fresh
process), whose ratio shows memory stays flat as the file grows.
Goal: 100,000 rows in under a minute on SQLite.

    python bench/bench_sirene.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = (
    "siren,nic,siret,etablissementSiege,etatAdministratifEtablissement,"
    "numeroVoieEtablissement,typeVoieEtablissement,libelleVoieEtablissement,"
    "codePostalEtablissement,libelleCommuneEtablissement\n"
)


def _luhn_digit(prefix: str) -> str:
    from rcd_store.identifiers import luhn_ok

    return next(d for d in "0123456789" if luhn_ok(prefix + d))


def generate(path: Path, rows: int) -> None:
    """``rows`` valid establishments, three per company."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(rows):
            base = f"{100000000 + i // 3:09d}"[:8]
            siren = base + _luhn_digit(base)
            nic4 = f"{(i % 3) + 1:04d}"
            nic = nic4 + _luhn_digit(siren + nic4)
            out.write(
                f"{siren},{nic},{siren}{nic},{'true' if i % 3 == 0 else 'false'},A,"
                f"{i % 200},RUE,DE LA REPUBLIQUE,{75000 + i % 20},PARIS\n"
            )


def run_one(rows: int) -> dict[str, float]:
    """Import ``rows`` generated rows into a fresh SQLite; time and peak RSS."""
    from idp import migrate
    from idp.stores.sealing import MasterKeySealer
    from keys.crypto import MasterKey
    from rcd_store import audit, sirene
    from rcd_store.db import make_engine, session_factory

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "StockEtablissement.csv"
        generate(csv_path, rows)
        engine = make_engine(f"sqlite:///{tmp}/bench.sqlite3")
        migrate.upgrade(engine)
        audit.bind(engine, MasterKeySealer(MasterKey.generate()))  # the import is audited
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        with session_factory(engine)() as session, csv_path.open("rb") as stream:
            report = sirene.import_etablissements(session, stream)
            session.commit()
        elapsed = time.perf_counter() - started
        assert report.imported == rows, report
        engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": rows,
        "seconds": elapsed,
        "peak_mib": peak / 1024,
        "import_growth_mib": (peak - rss_before) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    sizes = [args.rows // 4, args.rows // 2, args.rows]
    results = []
    for rows in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(rows)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results.append(json.loads(out))
    big = results[-1]
    growth = " / ".join(f"{r['import_growth_mib']:.0f}" for r in results)
    print(
        f"import sirene: {big['rows']} rows in {big['seconds']:.1f} s = "
        f"{big['rows'] / big['seconds']:.0f} rows/s (goal < 60 s); memory growth during import "
        f"for {' / '.join(str(r['rows']) for r in results)} rows: {growth} MiB "
        f"(ratio largest/smallest {results[-1]['import_growth_mib'] / max(results[0]['import_growth_mib'], 1):.2f}, "
        f"flat = about 1)"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
