import io

import pytest
from sqlalchemy import func, select

from rcd_store import sirene
from rcd_store.models import Company, Establishment

HEADER = (
    "siren,nic,siret,etablissementSiege,etatAdministratifEtablissement,numeroVoieEtablissement,"
    "typeVoieEtablissement,libelleVoieEtablissement,codePostalEtablissement,"
    "libelleCommuneEtablissement,colonneInconnue\n"
)


def _csv(*rows: str, header: str = HEADER) -> io.BytesIO:
    return io.BytesIO((header + "".join(r + "\n" for r in rows)).encode())


def test_import_reads_by_header_and_reports_bad_rows(session) -> None:
    errors: list[str] = []
    stream = _csv(
        "732829320,00074,73282932000074,true,A,12,RUE,DE LA PAIX,75002,PARIS,x",
        "732829320,00082,73282932000082,false,F,,,,,,x",
        "732829320,00075,73282932000075,false,A,,,,,,x",  # bad checksum (line 4)
        "443061841,00021,44306184100013,false,A,,,,,,x",  # NIC does not match (line 5)
    )
    report = sirene.import_etablissements(session, stream, on_error=errors.append, batch=1)
    assert (report.rows, report.imported, report.skipped) == (4, 2, 2)
    assert errors[0].startswith("ligne 4 : ") and errors[1].startswith("ligne 5 : ")
    head = session.scalars(
        select(Establishment).where(Establishment.siret == "73282932000074")
    ).one()
    assert head.head_office and head.active and head.address == "12 RUE DE LA PAIX, 75002 PARIS"
    closed = session.scalars(
        select(Establishment).where(Establishment.siret == "73282932000082")
    ).one()
    assert not closed.active


def test_reimport_updates_without_duplicates(session) -> None:
    row = "732829320,00074,73282932000074,true,A,1,RUE,HAUTE,75002,PARIS,x"
    sirene.import_etablissements(session, _csv(row))
    sirene.import_etablissements(session, _csv(row.replace("HAUTE", "BASSE")))
    session.commit()
    assert session.scalar(select(func.count()).select_from(Establishment)) == 1
    assert session.scalar(select(func.count()).select_from(Company)) == 1
    assert "BASSE" in session.scalars(select(Establishment.address)).one()


def test_unites_legales_name_companies_in_any_column_order(session) -> None:
    ul = io.BytesIO(
        b"nomUniteLegale;denominationUniteLegale;siren;prenom1UniteLegale\n"
        b";BOULANGERIE DUPONT;732829320;\n"
        b"MARTIN;;443061841;JEAN\n"
        b";;443061842;\n"
    )
    errors: list[str] = []
    report = sirene.import_unites_legales(session, ul, on_error=errors.append)
    assert (report.imported, report.skipped) == (2, 1)
    names = dict(session.execute(select(Company.siren, Company.name)).all())
    assert names == {"732829320": "BOULANGERIE DUPONT", "443061841": "JEAN MARTIN"}
    # an establishment import afterwards keeps the names
    sirene.import_etablissements(session, _csv("732829320,00074,73282932000074,true,A,,,,,,"))
    assert (
        session.scalars(select(Company.name).where(Company.siren == "732829320")).one()
        == "BOULANGERIE DUPONT"
    )


def test_missing_columns_and_empty_file(session) -> None:
    with pytest.raises(sirene.ImportFormatError, match="siret"):
        sirene.import_etablissements(session, io.BytesIO(b"siren,nic\n1,2\n"))
    with pytest.raises(sirene.ImportFormatError, match="vide"):
        sirene.import_etablissements(session, io.BytesIO(b""))


def test_cli_import(idp, tmp_path) -> None:
    path = tmp_path / "StockEtablissement.csv"
    path.write_text(HEADER + "732829320,00074,73282932000074,true,A,,,,,,\nbad,row,here,,,,,,,,\n")
    result = idp("import", "sirene", str(path), "--quiet")
    assert result.code == 0
    assert "1 établissements importés, 1 lignes ignorées sur 2" in result.out
    assert "ligne 3 : " in result.err
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = idp("import", "sirene", str(bad))
    assert result.code == 1 and result.err.startswith("erreur : import impossible")
