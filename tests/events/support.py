"""A partner's receiver for the events tests: a real HTTP server in a thread that records
what it is POSTed, answers as told, and can go down and come back on the same port."""

from __future__ import annotations

import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from partners.services import ClientSettings, PartnerSettings, add_partner
from tests import factories
from tests.loopback import LoopbackServer, QuietHandler
from token_suite.trust import Trust, trust_from_jwks

#: this engineer's ports (docs of the test run): 19800-19899
PORTS = range(19800, 19900)


class Receiver(LoopbackServer):
    """Records each POST (path, content type, body); answers ``status`` (202 by default)."""

    def __init__(self, ports: range = PORTS) -> None:
        super().__init__(ports)
        self.received: list[tuple[str, str, bytes]] = []
        self.status = 202
        self.answer = b""
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner.lock:
                    owner.received.append((self.path, self.headers["Content-Type"], body))
                self.send_response(owner.status)
                self.send_header("Content-Length", str(len(owner.answer)))
                self.end_headers()
                self.wfile.write(owner.answer)

        return Handler

    def tokens(self) -> list[str]:
        with self.lock:
            return [body.decode("ascii") for _path, _type, body in self.received]

    def logout_tokens(self) -> list[str]:
        with self.lock:
            return [parse_qs(body.decode("ascii"))["logout_token"][0] for *_, body in self.received]


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def our_jwks(app: Any) -> dict[str, Any]:
    """The JWKS ``app`` publishes, read from its keyring (``/.well-known/jwks.json`` is
    a per-process prepared document: a test database emptied under it on PostgreSQL
    starts its key generations afresh, which a real one never does)."""
    from idp.tokens.signing import keyring
    from keys.jwks import jwks
    from keys.model import KeyUse

    with app.app_context():
        return jwks(keyring(app).published(KeyUse.JWT))


def our_trust(app: Any) -> Trust:
    """What a partner trusts: our published JWKS and issuer."""
    return trust_from_jwks(our_jwks(app), issuer=app.config["BASE_URL"])


def partner(session: Any, name: str, service: str, receiver: str | None, **client: Any) -> str:
    """Register ``name`` receiving ``service`` (push to ``receiver``); its identifier."""
    settings = PartnerSettings(name=name, services=[service], event_receiver_url=receiver)
    if client:
        settings.client = ClientSettings(**client)
    registered = add_partner(session, settings)
    session.commit()
    return str(registered.partner.identifier)


def two_partners(app: Any, session: Any, urssaf: Receiver, other: Receiver) -> dict[str, str]:
    """URSSAF receives DSN, AUTRE receives DUCS, each pushed to its receiver; Élodie is
    granted DSN, Marc DUCS. Returns the partners' identifiers and the declarants' ids."""
    from idp.tokens.signing import ensure_keys
    from rcd_store import services

    ensure_keys(app)
    factories.company(session)
    factories.service(session, "DSN", partner="URSSAF")
    factories.service(session, "DUCS", partner="AUTRE")
    ids = {
        "URSSAF": partner(session, "URSSAF", "DSN", urssaf.url),
        "AUTRE": partner(session, "AUTRE", "DUCS", other.url),
    }
    elodie = factories.declarant(session)
    marc = factories.declarant(session, last="Martin", first="Marc", email="marc@dupont.example")
    for who, code in ((elodie, "DSN"), (marc, "DUCS")):
        services.grant_habilitation(
            session, declarant_id=who.id, siret=factories.SIRET_A, service_code=code
        )
    session.commit()
    return {**ids, "elodie": elodie.id, "marc": marc.id}
