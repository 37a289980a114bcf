"""The access delay: a habilitation takes effect IDP_HABILITATION_DELAY_SECONDS after its
grant, on every path that reads rights (rcd_store.services.active_habilitations)."""

from datetime import timedelta

from sqlalchemy import select

from rcd_store import services
from rcd_store.db import utcnow
from rcd_store.models import Habilitation
from tests import factories as f


def test_the_access_delay_postpones_a_new_habilitation(session) -> None:
    f.company(session)
    f.service(session)
    person = f.declarant(session)
    session.info[services.ACCESS_DELAY] = 3600
    services.grant_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
    )
    assert services.active_habilitations(session, person.id) == []
    later = utcnow() + timedelta(hours=1, seconds=1)
    assert len(services.active_habilitations(session, person.id, now=later)) == 1
    row = session.scalars(select(Habilitation)).one()
    assert row.effective_at - row.granted_at == timedelta(hours=1)


def test_an_explicit_delay_wins_and_zero_is_immediate(session) -> None:
    f.company(session)
    f.service(session)
    person = f.declarant(session)
    session.info[services.ACCESS_DELAY] = 3600
    services.grant_habilitation(
        session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN", delay=timedelta(0)
    )
    assert len(services.active_habilitations(session, person.id)) == 1


def test_the_app_sets_the_delay_from_its_configuration(app_config) -> None:
    from idp.factory import create_app
    from idp.stores.db import database

    app = create_app({**app_config, "HABILITATION_DELAY_SECONDS": 120})
    try:
        with database(app).sessions() as session:
            assert services.access_delay(session) == timedelta(minutes=2)
    finally:
        database(app).engine.dispose()


def test_a_right_inside_its_delay_is_not_on_the_dashboard(app_config) -> None:
    from idp.factory import create_app
    from idp.stores.db import database
    from tests.idp.login_support import login_email

    app = create_app({**app_config, "HABILITATION_DELAY_SECONDS": 3600})
    try:
        with database(app).sessions() as session:
            f.company(session)
            f.service(session)
            person = f.declarant(session)
            services.grant_habilitation(
                session, declarant_id=person.id, siret=f.SIRET_A, service_code="DSN"
            )
            session.commit()
        client = app.test_client()
        login_email(client)
        assert "Service DSN" not in client.get("/tableau-de-bord").get_data(as_text=True)
    finally:
        database(app).engine.dispose()
