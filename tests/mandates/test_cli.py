"""``idp service pilot`` (add, remove) and ``idp mandate sweep``."""

from __future__ import annotations

import json
from typing import Any

from rcd_store import services
from tests import factories as f


def test_service_pilot_add_and_remove(idp: Any, session: Any, db_snapshot: Any) -> None:
    f.company(session)
    f.service(session)
    person = f.declarant(session)
    services.grant_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
    )
    session.commit()
    added = idp("service", "pilot", "--code", "DSN", "--siren", f.SIRET_A[:9], "--json")
    assert added.code == 0, added.err
    assert json.loads(added.out) == {"code": "DSN", "state": "pilot", "companies": [f.SIRET_A[:9]]}
    session.expire_all()
    assert len(services.active_habilitations(session, person.id)) == 1
    again = idp("service", "pilot", "--code", "DSN", "--siren", f.SIRET_A[:9])
    assert again.code == 1 and "déjà ouvert" in again.err
    removed = idp("service", "pilot", "--code", "DSN", "--siren", f.SIRET_A[:9], "--remove")
    assert removed.code == 0 and "retiré" in removed.out
    session.expire_all()
    assert services.active_habilitations(session, person.id) == []  # still a pilot, not open
    before = db_snapshot()
    for args in (("--code", "NOPE", "--siren", f.SIRET_A[:9]), ("--code", "DSN", "--siren", "1")):
        refused = idp("service", "pilot", *args)
        assert refused.code == 1 and refused.err.strip()
    assert db_snapshot() == before


def test_mandate_sweep(idp: Any) -> None:
    result = idp("mandate", "sweep", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"revoked": 0}


def test_mandate_add_with_kind_establishments_and_dates(idp: Any, session: Any) -> None:
    f.company(session)
    f.company(session, siret=f.SIRET_FIRM, name="Cabinet")
    f.service(session)
    session.commit()
    args = ["mandate", "add", "--client-siren", f.SIRET_A[:9], "--firm-siren", f.SIRET_FIRM[:9]]
    added = idp(
        *args,
        "--service",
        "DSN",
        "--kind",
        "concentrateur",
        "--siret",
        f.SIRET_A,
        "--end",
        "2099-01-01",
        "--json",
    )
    assert added.code == 0, added.err
    assert json.loads(added.out)["kind"] == "concentrateur"
    assert json.loads(added.out)["establishments"] == [f.SIRET_A]
    twin = idp(*args, "--service", "DSN")
    assert twin.code == 1 and "en cours" in twin.err
    bad = idp(*args, "--service", "DSN", "--kind", "banque")
    assert bad.code != 0
