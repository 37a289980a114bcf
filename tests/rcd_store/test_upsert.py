"""The one dialect-aware INSERT ... ON CONFLICT of the code base (SQLite and PostgreSQL)."""

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from rcd_store.db import upsert

ROWS = Table("t", MetaData(), Column("k", String, primary_key=True), Column("n", Integer))


def test_upsert_speaks_the_dialect_of_an_engine_or_a_session() -> None:
    engine = create_engine("sqlite://")
    assert isinstance(upsert(engine, ROWS), sqlite.Insert)
    with Session(engine) as session:
        assert isinstance(upsert(session, ROWS), sqlite.Insert)
    pg = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert isinstance(upsert(pg, ROWS), postgresql.Insert)  # built, never connected
    pg.dispose()
    engine.dispose()


def test_upsert_resolves_the_conflict_in_the_database() -> None:
    engine = create_engine("sqlite://")
    ROWS.metadata.create_all(engine)
    with engine.begin() as conn:
        for n in (1, 2):
            stmt = upsert(engine, ROWS).values(k="a", n=n)
            conn.execute(stmt.on_conflict_do_update(index_elements=["k"], set_={"n": n}))
        conn.execute(upsert(engine, ROWS).values(k="a", n=9).on_conflict_do_nothing())
        assert conn.execute(select(ROWS.c.n)).all() == [(2,)]
    engine.dispose()
