"""A company with 5,000 establishments and 2,000 declarants: every administration page,
and the matrix, answers with the same number of SQL statements as with 50 and 20 (the
statements are counted on the engine, ``before_cursor_execute``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from rcd_store.db import utcnow
from rcd_store.models import Declarant, Establishment, Habilitation, Role, Service
from tests.administration.pages_support import client_of
from tests.administration.support import Directory, two_companies

SMALL = (50, 20)
LARGE = (5000, 2000)


@contextmanager
def counted(engine: Any) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def grow(session: Any, d: Directory, establishments: int, declarants: int) -> None:
    """Bring company A to ``establishments`` and ``declarants`` (bulk, SQLAlchemy Core),
    each new declarant holding a right on one establishment."""
    have_e = len(
        session.scalars(
            select(Establishment.id).where(Establishment.company_id == d.company_a)
        ).all()
    )
    have_d = len(session.scalars(select(Role.id).where(Role.company_id == d.company_a)).all())
    siren = session.scalars(
        select(Establishment.siret).where(Establishment.company_id == d.company_a)
    ).first()[:9]
    session.execute(
        insert(Establishment),
        [
            {
                "siret": f"{siren}{10000 + n:05d}",
                "company_id": d.company_a,
                "head_office": False,
                "active": True,
                "address": f"{n} rue du Test 69001 Lyon",
            }
            for n in range(have_e, establishments)
        ],
    )
    people = [
        {
            "id": f"DBULK{n:027d}",
            "last_name": f"Nom{n:05d}",
            "first_name": "Prénom",
            "last_name_key": f"nom{n:05d}",
            "first_name_key": "prenom",
            "email": f"p{n}@bulk.example",
            "email_key": f"p{n}@bulk.example",
            "status": "active",
            "email_verified": True,
            "created_at": utcnow(),
        }
        for n in range(have_d, declarants)
    ]
    session.execute(insert(Declarant), people)
    session.execute(
        insert(Role),
        [
            {
                "declarant_id": p["id"],
                "company_id": d.company_a,
                "role": "MEMBRE",
                "created_at": utcnow(),
            }
            for p in people
        ],
    )
    place = session.scalars(
        select(Establishment.id)
        .where(Establishment.company_id == d.company_a)
        .order_by(Establishment.siret)
    ).first()
    service = session.scalars(select(Service.id).where(Service.code == "DSN")).one()
    session.execute(
        insert(Habilitation),
        [
            {
                "declarant_id": p["id"],
                "establishment_id": place,
                "service_id": service,
                "role": "DECLARANT",
                "granted_at": utcnow(),
            }
            for p in people
        ],
    )
    session.commit()


def pages(d: Directory, establishment: int) -> list[str]:
    base = f"/administration/entreprises/{d.company_a}"
    return [
        "/administration/",
        base,
        base + "/etablissements",
        base + "/etablissements?page=2",
        base + "/etablissements?q=lyon",
        base + "/etablissements?q=7328",
        base + "/declarants",
        base + "/declarants?q=nom0&statut=active",
        base + f"/etablissements/{establishment}",
        base + f"/declarants/{d.member_a}",
        base + f"/declarants/{d.member_a}?page=2&q=7328",
        base + "/inviter",
        base + f"/passation?declarant={d.member_a}",
        "/tableau-de-bord",
    ]


def _counts(app: Any, engine: Any, d: Directory, establishment: int) -> dict[str, int]:
    client = client_of(app, d.admin_a)
    client.get("/administration/")  # warm up (the session's first touch)
    found = {}
    for url in pages(d, establishment):
        with counted(engine) as statements:
            response = client.get(url)
        assert response.status_code == 200, url
        found[url] = len(statements)
    return found


@pytest.mark.slow
def test_pages_answer_in_a_bounded_number_of_statements(
    app: Any, session: Any, engine: Any
) -> None:
    d = two_companies(session)
    grow(session, d, *SMALL)
    place = session.scalars(
        select(Establishment.id)
        .where(Establishment.company_id == d.company_a)
        .order_by(Establishment.siret)
    ).first()
    small = _counts(app, engine, d, place)
    grow(session, d, *LARGE)
    large = _counts(app, engine, d, place)
    assert large == small
    assert max(small.values()) <= 15, small
    # the lists paginate: 5,000 establishments are 100 pages of 50
    html = (
        client_of(app, d.admin_a)
        .get(f"/administration/entreprises/{d.company_a}/etablissements")
        .get_data(as_text=True)
    )
    assert "Page 1 sur 100 (5000 résultats)" in html, html[
        html.find('<nav aria-label="Pagination') :
    ][:300]
    assert 'rel="next"' in html
