"""The "receive SETs" example of widget/README.md, executed as written against a real
push, so the guide cannot rot: the code block marked for this test is read from the
README, its two settings (the operator's address, the partner's identifier) replaced by
this test's, and executed; its ``application`` is served on a real port, the operator
(a live app, its discovery document and JWKS fetched by the example's
``Trust.from_issuer``) pushes to it. The partner's SETs are verified and handled once
each (202, acknowledged); another partner's SETs sent to it are refused with the
RFC 8935 error ``invalid_audience`` (400, recorded as refused, never sent again); a wrong
method, content type or body gets its RFC 8935 answer."""

from __future__ import annotations

import random
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from idp.events.models import SecurityEventRow
from idp.events.push import push_round, signed
from rcd_store import identity, services
from rcd_store.db import utcnow
from tests import factories
from tests.events.support import partner

README = Path(__file__).resolve().parents[2] / "widget" / "README.md"
MARK = "<!-- exemple exécuté tel quel contre un vrai envoi par tests/widget/test_readme_receiver.py -->"
#: the settings of the example, replaced by this test's
IDP_SETTING = 'IDP = "https://idp.example"'
PARTNER_SETTING = 'PARTENAIRE = "urn:interops:partenaire:mon-organisme"'
#: this helper's ports
PORTS = range(8500, 8600)


def readme_receiver() -> str:
    """The README's receiver code block, as written."""
    found = re.search(
        re.escape(MARK) + r"\s*```python\n(.*?)\n```", README.read_text("utf-8"), re.DOTALL
    )
    assert found, f"the receiver example is no longer marked in {README}"
    return found.group(1)


def own_port() -> int:
    """A free port of :data:`PORTS`, tried in random order."""
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8500-8599")


def _serve(wsgi: Any, port: int) -> Any:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, wsgi, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Operator:
    app: Any
    base: str


@pytest.fixture
def operator(app_config: dict[str, Any]) -> Iterator[Operator]:
    """The operator's app, served on a real port (its BASE_URL is that address)."""
    from idp.factory import create_app
    from idp.stores.db import database

    port = own_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app({**app_config, "BASE_URL": base})
    server = _serve(app, port)
    yield Operator(app, base)
    server.shutdown()
    server.server_close()
    database(app).engine.dispose()


def load_receiver(base: str, audience: str) -> dict[str, Any]:
    """Execute the README's example with the operator at ``base`` and the partner
    ``audience``; its globals (``application``, ``traiter``...)."""
    code = readme_receiver()
    for setting, value in ((IDP_SETTING, f'IDP = "{base}"'), (PARTNER_SETTING, "")):
        assert setting in code, f"the example no longer sets {setting!r}"
        code = code.replace(setting, value or f'PARTENAIRE = "{audience}"')
    namespace: dict[str, Any] = {"__name__": "recepteur"}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    return namespace


def _outcomes(session: Any, partner_id: str) -> list[tuple[str, str | None, str | None]]:
    session.expire_all()
    rows = session.execute(
        select(SecurityEventRow.kind, SecurityEventRow.outcome, SecurityEventRow.last_error)
        .where(SecurityEventRow.receiver == f"set:{partner_id}")
        .order_by(SecurityEventRow.seq)
    )
    return [(kind, outcome, error) for kind, outcome, error in rows]


def test_the_readme_receiver_takes_a_real_push(operator: Operator) -> None:
    from idp.stores.db import database
    from idp.tokens.signing import ensure_keys
    from partners.services import get_partner

    app = operator.app
    ensure_keys(app)
    session = database(app).sessions()
    port = own_port()
    url = f"http://127.0.0.1:{port}/interops/evenements"
    factories.company(session)
    factories.service(session, "DSN", partner="URSSAF")
    mine = partner(session, "Mon organisme", "DSN", url)
    partner(session, "Autre organisme", "DSN", url)  # pushes to the wrong receiver
    receiver = load_receiver(operator.base, mine)
    handled: list[Any] = []
    original = receiver["traiter"]
    receiver["traiter"] = lambda event: (handled.append(event), original(event))
    server = _serve(receiver["application"], port)
    try:
        elodie = factories.declarant(session)
        services.grant_habilitation(
            session, declarant_id=elodie.id, siret=factories.SIRET_A, service_code="DSN"
        )
        session.commit()
        identity.change_names(
            session, declarant_id=elodie.id, last_name="Dupont-Martin", first_name="Élodie",
            actor=elodie.id,
        )  # fmt: skip
        session.commit()
        push_round(app)
        assert [(e.kind, e.subject, e.payload) for e in handled] == [
            ("habilitation-granted", elodie.id, {"service": "DSN", "siret": factories.SIRET_A,
                                                  "role": "DECLARANT"}),
            ("identity-changed", elodie.id, {"fields": ["family_name"]}),
        ]  # fmt: skip
        mine_id = str(get_partner(session, "Mon organisme").id)
        other_id = str(get_partner(session, "Autre organisme").id)
        assert _outcomes(session, mine_id) == [
            ("habilitation-granted", "acknowledged", None),
            ("identity-changed", "acknowledged", None),
        ]
        refused = _outcomes(session, other_id)
        assert [(kind, outcome) for kind, outcome, _ in refused] == [
            ("habilitation-granted", "refused"),
            ("identity-changed", "refused"),
        ]
        assert all(error and error.startswith("invalid_audience: ") for *_, error in refused)

        # a retried SET (same jti) is answered 202 and handled once only
        row = session.scalars(
            select(SecurityEventRow).where(SecurityEventRow.receiver == f"set:{mine_id}")
        ).first()
        assert row is not None
        with app.app_context():
            token = signed(app, row, utcnow())
        again = requests.post(
            url, data=token, headers={"Content-Type": "application/secevent+jwt"}, timeout=10
        )
        assert again.status_code == 202 and len(handled) == 2
        _answers(url)
    finally:
        server.shutdown()
        server.server_close()
        session.close()


def _answers(url: str) -> None:
    """What the example answers to what is not a SET for it (RFC 8935, 2.3)."""
    assert requests.get(url, timeout=10).status_code == 405
    for content_type, body in (
        ("text/plain", b"bonjour"),
        ("application/secevent+jwt", b"pas.un.jeton"),
        ("application/secevent+jwt", b""),
    ):
        answer = requests.post(url, data=body, headers={"Content-Type": content_type}, timeout=10)
        assert answer.status_code == 400, (content_type, body, answer.text)
        assert answer.json()["err"] == "invalid_request"
        assert answer.json()["description"]
