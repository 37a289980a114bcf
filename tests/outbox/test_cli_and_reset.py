"""``idp outbox send`` / ``status`` say what they did; the password reset works through
the new delivery (the link read from the delivered email)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.idp.login_support import login_siret, post, setup_directory
from tests.outbox.test_files import queue
from tests.outbox_support import last_email


def test_send_prints_what_it_did(
    idp: Any, app: Any, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDP_OUTBOX_SENDER", "file")
    queue(app, session)
    result = idp("outbox", "send", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {
        "sent": 1,
        "failed": 0,
        "purged": 0,
        "gave_up": 0,
        "uncertain": 0,
        "recovered": 0,
    }
    text = idp("outbox", "send")
    assert text.code == 0 and "envoyés : 0" in text.out
    assert json.loads(idp("outbox", "status", "--json").out) == {"sent": 1}
    assert last_email(app).subject == "Votre lien"


def test_console_sender_keeps_json_output_clean(
    idp: Any, app: Any, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDP_OUTBOX_SENDER", "console")
    queue(app, session)
    result = idp("outbox", "send", "--json")
    assert json.loads(result.out)["sent"] == 1
    assert "To: elodie@dupont.example" in result.err and "jeton=abc" in result.err
    queue(app, session, subject="Deuxième")
    printed = idp("outbox", "send")
    assert "Subject: Deuxième" in printed.out and "envoyés : 1" in printed.out


def test_send_refuses_a_bad_configuration(
    idp: Any, monkeypatch: pytest.MonkeyPatch, db_snapshot: Any
) -> None:
    monkeypatch.setenv("IDP_OUTBOX_SENDER", "smtp")
    before = db_snapshot()
    result = idp("outbox", "send")
    assert result.code == 1 and result.err.startswith("erreur : IDP_SMTP_HOST")
    assert db_snapshot() == before


def test_help_describes_the_commands(idp: Any) -> None:
    result = idp("outbox", "send", "--help")
    assert result.code == 0 and "--loop" in result.out and "--json" in result.out


def test_password_reset_through_delivery(app: Any, session: Any) -> None:
    setup_directory(session)
    client = app.test_client()
    post(
        client,
        "/mot-de-passe/oubli",
        {"courriel": "elodie@dupont.example"},
        token_from="/mot-de-passe/oubli",
    )
    mail = last_email(app, to="elodie@dupont.example")
    assert mail.subject == "Réinitialisation de votre mot de passe"
    found = re.search(r"http://idp\.test(/mot-de-passe/nouveau\?jeton=\S+)", mail.text)
    assert found is not None
    token = parse_qs(urlsplit(found[1]).query)["jeton"][0]
    new_password = "un tout nouveau secret solide"
    form = {"jeton": token, "mot_de_passe": new_password, "confirmation": new_password}
    done = post(client, "/mot-de-passe/nouveau", form, token_from="/mot-de-passe/oubli")
    assert done.status_code == 200
    assert login_siret(app.test_client(), password=new_password).status_code == 303
