"""OpenID Connect Back-Channel Logout 1.0: logging out at the portal sends each relying
party of the session that registered a back-channel URI a logout token, POSTed by the
events pusher (never during the user's logout page)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from sqlalchemy import select

from idp.events.models import SecurityEventRow
from idp.events.push import push_round
from partners.models import OAuthClient
from tests.events.support import Receiver, our_jwks, our_trust
from tests.idp.oauth_support import auth_params, get_code, log_in, setup_world
from tests.idp.portal_support import csrf_of
from token_suite import events


@pytest.fixture
def rp() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.status = 200
    yield receiver
    receiver.down()


def _logged_in_rp(app: Any, session: Any, rp: Receiver) -> tuple[Any, Any, Any]:
    world = setup_world(app, session)
    stored = session.scalars(select(OAuthClient)).one()
    stored.backchannel_logout_uri = rp.url
    session.commit()
    browser = app.test_client()
    row = log_in(app, browser, world.declarant_id)
    get_code(browser, auth_params(world.client_id))
    return world, browser, row


def test_portal_logout_sends_the_relying_party_a_valid_logout_token(
    app: Any, session: Any, rp: Receiver
) -> None:
    world, browser, row = _logged_in_rp(app, session, rp)
    discovery = browser.get("/.well-known/openid-configuration").json
    assert discovery["backchannel_logout_supported"] is True
    assert discovery["backchannel_logout_session_supported"] is True
    csrf = csrf_of(browser.get("/tableau-de-bord").get_data(as_text=True))
    page = browser.post("/deconnexion", data={"csrf_token": csrf})
    assert page.status_code == 200
    assert rp.received == []  # the page did not wait for the relying party
    assert push_round(app).acknowledged >= 1
    (token,) = rp.logout_tokens()
    assert rp.received[0][1] == "application/x-www-form-urlencoded"
    # the relying party checks it with PyJWT against our JWKS...
    jwks = jwt.PyJWKSet.from_dict(our_jwks(app))
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "logout+jwt"
    key = next(k for k in jwks.keys if k.key_id == header["kid"])
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[header["alg"]],
        audience=world.client_id,
        issuer="http://idp.test",
        options={"require": ["exp", "iat", "jti", "sid", "sub", "events"]},
    )
    assert claims["sub"] == world.declarant_id and claims["sid"] == row.sid
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert "nonce" not in claims and claims["exp"] - claims["iat"] <= 120
    # ...or with token_suite
    done = events.verify_logout(token, trust=our_trust(app), audience=world.client_id)
    assert (done.subject, done.sid, done.jti) == (world.declarant_id, row.sid, claims["jti"])
    # acknowledged: a later round sends nothing again
    push_round(app)
    assert len(rp.logout_tokens()) == 1


def test_a_relying_party_down_gets_its_logout_token_once_back(
    app: Any, session: Any, rp: Receiver
) -> None:
    world, browser, _row = _logged_in_rp(app, session, rp)
    rp.down()
    csrf = csrf_of(browser.get("/tableau-de-bord").get_data(as_text=True))
    assert browser.post("/deconnexion", data={"csrf_token": csrf}).status_code == 200
    assert push_round(app).failed == 1
    row = session.scalars(select(SecurityEventRow).where(SecurityEventRow.kind == "logout")).one()
    assert row.settled_at is None and row.last_error
    session.execute(SecurityEventRow.__table__.update().values(next_attempt_at=row.created_at))
    session.commit()
    rp.up()
    assert push_round(app).acknowledged == 1
    (token,) = rp.logout_tokens()
    assert events.verify_logout(token, trust=our_trust(app), audience=world.client_id)


def test_a_client_without_backchannel_uri_gets_nothing(app: Any, session: Any) -> None:
    world = setup_world(app, session)
    browser = app.test_client()
    log_in(app, browser, world.declarant_id)
    get_code(browser, auth_params(world.client_id))
    csrf = csrf_of(browser.get("/tableau-de-bord").get_data(as_text=True))
    assert browser.post("/deconnexion", data={"csrf_token": csrf}).status_code == 200
    kinds = session.scalars(select(SecurityEventRow.kind)).all()
    assert "logout" not in kinds


def test_rp_initiated_logout_sends_the_logout_token_too(
    app: Any, session: Any, rp: Receiver
) -> None:
    """``/oauth/logout`` (RP-initiated) ends the session through the same place."""
    from tests.idp.oauth_support import REDIRECT, hidden_fields

    world, browser, row = _logged_in_rp(app, session, rp)
    query = {"client_id": world.client_id, "post_logout_redirect_uri": REDIRECT}
    page = browser.get("/oauth/logout", query_string=query)
    assert browser.post("/oauth/logout", data=hidden_fields(page.text)).status_code == 303
    assert push_round(app).acknowledged == 1
    (token,) = rp.logout_tokens()
    done = events.verify_logout(token, trust=our_trust(app), audience=world.client_id)
    assert (done.subject, done.sid) == (world.declarant_id, row.sid)


def test_a_logout_token_for_a_withdrawn_uri_is_settled_not_kept(
    app: Any, session: Any, rp: Receiver
) -> None:
    """A client that withdrew its back-channel URI: its token is recorded as refused,
    never left waiting (it would block nothing else, but would never be pruned)."""
    _world, browser, _row = _logged_in_rp(app, session, rp)
    csrf = csrf_of(browser.get("/tableau-de-bord").get_data(as_text=True))
    assert browser.post("/deconnexion", data={"csrf_token": csrf}).status_code == 200
    session.scalars(select(OAuthClient)).one().backchannel_logout_uri = None
    session.commit()
    assert push_round(app).refused == 1
    row = session.scalars(select(SecurityEventRow).where(SecurityEventRow.kind == "logout")).one()
    assert (row.outcome, row.last_error) == ("refused", "no back-channel logout URI")
    assert rp.received == []
