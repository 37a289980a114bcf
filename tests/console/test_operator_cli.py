"""``idp operator grant|revoke|list``: who may reach the console, each change audited;
a refused command changes nothing."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from idp.console.models import Operator
from rcd_store.models import AuditEvent
from tests import factories as f


def _kinds(session: Any) -> list[tuple[str, str | None, str | None]]:
    session.expire_all()
    rows = session.execute(
        select(AuditEvent.kind, AuditEvent.actor, AuditEvent.target)
        .where(AuditEvent.kind.like("operator.%"))
        .order_by(AuditEvent.id)
    )
    return [tuple(r) for r in rows]


def _person(session: Any) -> Any:
    f.company(session, f.SIRET_A, "Boulangerie Dupont")
    person = f.declarant(session, email="oscar@operateur.example")
    session.commit()
    return person


def test_grant_list_revoke(idp: Any, session: Any) -> None:
    person = _person(session)
    granted = idp("operator", "grant", "--email", "Oscar@Operateur.example", "--json")
    assert granted.code == 0, granted.err
    assert json.loads(granted.out) == {
        "declarant_id": person.id,
        "email": "oscar@operateur.example",
        "operator": True,
    }
    listed = json.loads(idp("operator", "list", "--json").out)["operators"]
    assert [(o["declarant_id"], o["granted_by"]) for o in listed] == [(person.id, "cli")]
    assert "oscar@operateur.example" in idp("operator", "list").out
    revoked = idp("operator", "revoke", "--email", "oscar@operateur.example")
    assert revoked.code == 0 and "n'est plus opérateur" in revoked.out
    assert idp("operator", "list").out.strip() == "aucun opérateur"
    assert _kinds(session) == [
        ("operator.granted", "cli", person.id),
        ("operator.revoked", "cli", person.id),
    ]


def test_refusals_change_nothing(idp: Any, session: Any, db_snapshot: Any) -> None:
    _person(session)
    assert idp("operator", "grant", "--email", "oscar@operateur.example").code == 0
    before = db_snapshot()
    for args, reason in (
        (("grant", "--email", "inconnu@x.example"), "aucun déclarant"),
        (("grant", "--email", "oscar@operateur.example"), "déjà opérateur"),
        (("revoke", "--email", "inconnu@x.example"), "aucun déclarant"),
        (("grant",), "--email"),
    ):
        result = idp("operator", *args)
        assert result.code != 0 and reason in result.err, (args, result.err)
    assert db_snapshot() == before
    session.expire_all()
    assert len(session.scalars(select(Operator)).all()) == 1


def test_help(idp: Any) -> None:
    result = idp("operator", "--help")
    assert result.code == 0
    assert "grant" in result.out and "revoke" in result.out and "list" in result.out
    assert "double authentification" in " ".join(result.out.split())
    assert "--email" in idp("operator", "grant", "--help").out
