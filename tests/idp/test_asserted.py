"""Issue 13: the same rule for every declarant a partner asserts (inbound trust and the JWT
bearer grant share :mod:`idp.auth.asserted`): active, not locked, served by the partner."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from idp.auth import asserted
from partners.models import Partner
from rcd_store.models import Declarant
from tests import factories
from tests.idp.login_support import login_siret
from tests.idp.oauth_a2a_support import A2A, JWT_BEARER, client_assertion, setup_a2a

_jti = iter(range(10**6))


@pytest.fixture
def world(app: Any, session: Any) -> A2A:
    return setup_a2a(app, session)


def _bearer(app: Any, world: A2A, sub: str | None = None) -> Any:
    signed = client_assertion(
        world.keys["urssaf-batch"],
        "urssaf-batch",
        jti=f"asserted-{next(_jti)}",
        sub=sub or world.declarant_id,
    )
    return app.test_client().post(
        "/oauth/token", data={"grant_type": JWT_BEARER, "assertion": signed}
    )


def _refused(response: Any, reason: str) -> None:
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_grant"
    assert reason in response.json["error_description"]


def test_jwt_bearer_refuses_a_locked_account(app: Any, world: A2A) -> None:
    assert _bearer(app, world).status_code == 200
    browser = app.test_client()
    for _ in range(5):
        login_siret(browser, password="mauvais mot de passe")
    assert login_siret(browser).status_code == 429
    _refused(_bearer(app, world), "verrouille")


def test_jwt_bearer_refuses_a_disabled_declarant(app: Any, session: Any, world: A2A) -> None:
    session.execute(
        update(Declarant).where(Declarant.id == world.declarant_id).values(status="disabled")
    )
    session.commit()
    _refused(_bearer(app, world), "actif")


def test_jwt_bearer_refuses_a_declarant_the_partner_does_not_serve(
    app: Any, session: Any, world: A2A
) -> None:
    stranger = factories.declarant(
        session, last="Martin", first="Paul", email="paul@martin.example"
    )
    session.commit()
    _refused(_bearer(app, world, stranger.id), "habilitation")


def test_the_rule_is_one_function(app: Any, session: Any, world: A2A) -> None:
    """The portal rule and the bearer rule are the same: served = an active habilitation on
    one of the partner's services."""
    urssaf = session.query(Partner).filter_by(name="URSSAF").one()
    agirc = session.query(Partner).filter_by(name="AGIRC").one()
    with app.test_request_context():
        assert asserted.serves(session, urssaf, world.declarant_id)
        assert asserted.assertable(session, agirc, world.declarant_id).id == world.declarant_id
        from rcd_store.services import revoke_habilitation

        revoke_habilitation(
            session,
            declarant_id=world.declarant_id,
            siret=factories.SIRET_A,
            service_code="RETRAITE",
        )
        session.commit()
        with pytest.raises(asserted.NotAssertable):
            asserted.assertable(session, agirc, world.declarant_id)
        with pytest.raises(asserted.NotAssertable):
            asserted.assertable(session, agirc, "inconnu")
