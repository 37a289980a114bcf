"""Password reset by email: same answer for any address, hashed single-use link, policy,
other sessions ended."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from idp.stores.models import OneTimeSecret
from idp.stores.sealing import MasterKeySealer
from keys.crypto import MasterKey
from rcd_store import outbox
from rcd_store.models import Outbox
from tests import factories
from tests.conftest import MASTER_KEY, live_sso_sessions, snapshot
from tests.idp.login_support import error_of, login_siret, post, session_cookie, setup_directory

NEW_PASSWORD = "un tout nouveau secret solide"


@pytest.fixture
def declarant(session: Any) -> Any:
    return setup_directory(session)


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def _ask(client: Any, email: str) -> Any:
    return post(
        client, "/mot-de-passe/oubli", {"courriel": email}, token_from="/mot-de-passe/oubli"
    )


SEALER = MasterKeySealer(MasterKey.from_text(MASTER_KEY))


def _link(session: Any) -> str:
    session.expire_all()
    mail = session.scalars(select(Outbox).order_by(Outbox.id.desc())).first()
    assert mail is not None and mail.kind == "password_reset"
    body = outbox.open_message(SEALER, mail).body
    return re.search(r"http://idp\.test(/mot-de-passe/nouveau\?jeton=\S+)", body).group(1)


def _set(
    client: Any, path: str, password: str = NEW_PASSWORD, confirmation: str | None = None
) -> Any:
    token = parse_qs(urlsplit(path).query)["jeton"][0]
    return post(
        client,
        "/mot-de-passe/nouveau",
        {
            "jeton": token,
            "mot_de_passe": password,
            "confirmation": password if confirmation is None else confirmation,
        },
        token_from="/mot-de-passe/oubli",
    )


def _body_without_csrf(response: Any) -> str:
    return re.sub(r'value="[0-9a-f]{64}"', "", response.get_data(as_text=True))


def test_same_answer_whether_the_address_exists(client: Any, session: Any, declarant: Any) -> None:
    known = _ask(client, "elodie@dupont.example")
    unknown = _ask(client, "personne@inconnu.example")
    assert known.status_code == unknown.status_code == 200
    assert _body_without_csrf(known) == _body_without_csrf(unknown)
    mails = list(session.scalars(select(Outbox)))
    assert [m.recipient for m in mails] == ["elodie@dupont.example"]


def test_link_is_random_hashed_and_short_lived(client: Any, session: Any, declarant: Any) -> None:
    _ask(client, "elodie@dupont.example")
    path = _link(session)
    token = parse_qs(urlsplit(path).query)["jeton"][0]
    assert len(token) >= 43  # 256 bits, base64url
    row = session.scalars(select(OneTimeSecret).where(OneTimeSecret.purpose == "reset")).one()
    assert row.secret_hash != token and token not in row.secret_hash
    assert row.expires_at - datetime.now(UTC) <= timedelta(hours=24)


def test_reset_sets_the_password_ends_sessions_and_works_once(
    client: Any, session: Any, declarant: Any
) -> None:
    other_browser = client.application.test_client()
    assert login_siret(other_browser).status_code == 303
    _ask(client, "elodie@dupont.example")
    path = _link(session)
    response = _set(client, path)
    assert response.status_code == 200 and "Votre mot de passe est modifié" in response.get_data(
        as_text=True
    )
    assert live_sso_sessions(client.application) == []
    assert login_siret(client).status_code == 200  # the old password is gone
    assert login_siret(client, password=NEW_PASSWORD).status_code == 303
    again = _set(client.application.test_client(), path, "encore un autre secret long")
    assert again.status_code == 400
    assert client.application.test_client().get(path).status_code == 400


def test_policy_and_confirmation_are_checked(client: Any, session: Any, declarant: Any) -> None:
    _ask(client, "elodie@dupont.example")
    path = _link(session)
    short = _set(client, path, "court")
    assert "trop court" in error_of(short)
    mismatch = _set(client, path, NEW_PASSWORD, "autre chose encore long")
    assert "pas identiques" in error_of(mismatch)
    assert _set(client, path).status_code == 200  # the link survived the refusals


def test_expired_or_forged_link_is_refused(client: Any, session: Any, declarant: Any) -> None:
    _ask(client, "elodie@dupont.example")
    path = _link(session)
    assert client.get("/mot-de-passe/nouveau?jeton=invente").status_code == 400
    session.execute(
        update(OneTimeSecret).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    session.commit()
    assert _set(client, path).status_code == 400
    assert login_siret(client, password=factories.PASSWORD).status_code == 303


def test_reset_needs_csrf(client: Any, session: Any, declarant: Any) -> None:
    client.get("/mot-de-passe/oubli")
    response = client.post("/mot-de-passe/oubli", data={"courriel": "elodie@dupont.example"})
    assert response.status_code == 400
    assert list(session.scalars(select(Outbox))) == []


def test_reset_lifts_the_lockout(client: Any, session: Any, declarant: Any) -> None:
    for _ in range(5):
        login_siret(client, password="pas le bon mot de passe")
    assert login_siret(client).status_code == 429
    _ask(client, "elodie@dupont.example")
    _set(client, _link(session))
    assert login_siret(client, password=NEW_PASSWORD).status_code == 303
    assert session_cookie(client)


# ---------------------------------------------------------- outbox (issue 13, item 13)


def test_reset_link_is_never_in_clear_in_the_database(
    client: Any, session: Any, declarant: Any, engine: Any
) -> None:
    """A database dump reveals no usable link: the mail's body is sealed, the link's
    secret stored only hashed."""
    _ask(client, "elodie@dupont.example")
    token = parse_qs(urlsplit(_link(session)).query)["jeton"][0]
    dump = repr(snapshot(engine))
    assert token not in dump and "mot-de-passe/nouveau" not in dump
    assert _set(client, _link(session)).status_code == 200


class Recorder:
    """A sender that keeps what it was given, or refuses while ``down``."""

    def __init__(self) -> None:
        self.sent: list[outbox.Message] = []
        self.down = False

    def send(self, message: outbox.Message, handover: Any) -> None:
        if self.down:
            raise outbox.SendError("service de courriel injoignable")
        handover()
        self.sent.append(message)


def test_outbox_sends_then_purges(client: Any, session: Any, declarant: Any) -> None:
    _ask(client, "elodie@dupont.example")
    sender = Recorder()
    sender.down = True
    assert outbox.deliver(session, SEALER, sender) == outbox.Delivery(0, 1, 0)
    row = session.scalars(select(Outbox)).one()
    assert row.attempts == 1 and row.state == "pending"  # kept for the next round
    assert row.next_attempt_at is not None
    sender.down = False
    assert outbox.deliver(session, SEALER, sender, now=row.next_attempt_at) == outbox.Delivery(
        1, 0, 0
    )
    assert [m.recipient for m in sender.sent] == ["elodie@dupont.example"]
    assert "/mot-de-passe/nouveau?jeton=" in sender.sent[0].body
    session.expire_all()
    record = session.scalars(select(Outbox)).one()  # kept as the delivery record
    assert record.state == "sent" and record.sent_at is not None
    assert record.body_sealed is None  # the link purged once sent


def test_outbox_purges_expired_links_unsent(client: Any, session: Any, declarant: Any) -> None:
    _ask(client, "elodie@dupont.example")
    row = session.scalars(select(Outbox)).one()
    assert row.expires_at is not None
    assert row.expires_at - row.created_at == timedelta(hours=1)
    assert outbox.purge(session, now=row.expires_at - timedelta(seconds=1)) == 0
    assert outbox.purge(session, now=row.expires_at) == 1
    sender = Recorder()
    assert outbox.deliver(session, SEALER, sender) == outbox.Delivery(0, 0, 0)
    assert sender.sent == []
    session.expire_all()
    assert (row.state, row.body_sealed, row.sent_at) == ("expired", None, None)


def test_sealed_body_does_not_open_for_another_recipient(
    client: Any, session: Any, declarant: Any
) -> None:
    from keys.crypto import KeyDecryptionError

    _ask(client, "elodie@dupont.example")
    row = session.scalars(select(Outbox)).one()
    row.recipient = "attaquant@evil.example"
    with pytest.raises(KeyDecryptionError):
        outbox.open_message(SEALER, row)


def test_queueing_drops_expired_messages(client: Any, session: Any, declarant: Any) -> None:
    """No sender has run: a new request still removes links that expired meanwhile."""
    _ask(client, "elodie@dupont.example")
    old = session.scalars(select(Outbox)).one()
    session.execute(
        update(Outbox)
        .where(Outbox.id == old.id)
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    session.commit()
    _ask(client, "elodie@dupont.example")
    session.expire_all()
    (kept,) = session.scalars(select(Outbox).where(Outbox.body_sealed.is_not(None))).all()
    assert kept.expires_at is not None and kept.expires_at > datetime.now(UTC)
    assert session.get(Outbox, old.id).state == "expired"
