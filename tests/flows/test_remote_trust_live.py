"""A partner's long-lived ``Trust.from_issuer`` against a running identity provider,
across key rotations: no restart, no code change, old and new tokens verified."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from werkzeug.serving import make_server

from idp.tokens.signing import ensure_keys, keyring, max_token_lifetime
from keys.model import KeyUse
from token_suite import Trust, jwt, saml
from token_suite.errors import FailedCheck
from token_suite.replay import InMemoryReplayCache
from token_suite.trust import RefreshPolicy
from token_suite.vector import ACR_PASSWORD, IdentityVector

AUDIENCE = "urn:partenaire:api"
SP = "https://sp.example/metadata"
POLICY = RefreshPolicy(refetch_interval=0.2)


@pytest.fixture
def live_idp(app_config: dict[str, Any]) -> Iterator[tuple[Any, str]]:
    """The identity provider served over HTTP on a free loopback port."""
    from idp.factory import create_app

    server = make_server("127.0.0.1", 0, None)  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{server.server_port}"
    server.server_close()
    flask_app = create_app({**app_config, "BASE_URL": base})
    ensure_keys(flask_app)
    server = make_server("127.0.0.1", int(base.rsplit(":", 1)[1]), flask_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield flask_app, base
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        from idp.stores.db import database

        database(flask_app).engine.dispose()
        redis_client = flask_app.extensions.get("idp.redis")
        if redis_client is not None:
            redis_client.close()


def _tokens(app: Any, base: str) -> tuple[str, bytes]:
    """A JWT and a SAML jeton signed now with the IdP's active keys."""
    now = datetime.now(UTC)
    vector = IdentityVector(subject="D0000001", acr=ACR_PASSWORD, auth_time=now)
    ring = keyring(app)
    token = jwt.issue(
        vector, signer=ring.active(KeyUse.JWT), issuer=base, audience=AUDIENCE, now=now
    )
    document = saml.issue(
        vector,
        signer=ring.active(KeyUse.SAML),
        issuer=app.config["SAML_ENTITY_ID"],
        audience=SP,
        recipient="https://sp.example/acs",
        now=now,
    )
    return token, document


def _rotate(app: Any) -> None:
    for use in (KeyUse.JWT, KeyUse.SAML):
        keyring(app).rotate(use, now=datetime.now(UTC), max_token_lifetime=max_token_lifetime(app))


def _verified(trust: Any, token: str, document: bytes) -> tuple[str, str]:
    replay = InMemoryReplayCache()
    by_jwt = jwt.verify(token, trust=trust, audience=AUDIENCE, replay=replay)
    by_saml = saml.verify(document, trust=trust, audience=SP, replay=replay)
    return by_jwt.subject, by_saml.subject


def test_a_partner_trust_lives_across_key_rotations(live_idp: tuple[Any, str]) -> None:
    app, base = live_idp
    trust = Trust.from_issuer(base, policy=POLICY)
    first = _tokens(app, base)
    assert _verified(trust, *first) == ("D0000001", "D0000001")
    known = set(trust.for_jwt(_kid(first[0])).jwt_keys)  # a known kid: nothing refetched
    # two rotations: the active keys are now keys the partner has never seen
    _rotate(app)
    _rotate(app)
    time.sleep(POLICY.refetch_interval + 0.1)
    second = _tokens(app, base)
    assert _kid(second[0]) not in known
    assert _verified(trust, *second) == ("D0000001", "D0000001")
    # tokens signed before the rotations still verify (their keys are still published)
    assert _verified(trust, *first) == ("D0000001", "D0000001")


def test_a_token_from_another_key_stays_refused(live_idp: tuple[Any, str]) -> None:
    from keys.generate import generate_key

    _, base = live_idp
    trust = Trust.from_issuer(base, policy=POLICY)
    now = datetime.now(UTC)
    stranger = generate_key(KeyUse.JWT, now=now)
    vector = IdentityVector(subject="D0000001", acr=ACR_PASSWORD, auth_time=now)
    token = jwt.issue(vector, signer=stranger, issuer=base, audience=AUDIENCE, now=now)
    with pytest.raises(FailedCheck, match="unknown key id"):
        jwt.verify(token, trust=trust, audience=AUDIENCE, replay=InMemoryReplayCache())


def _kid(token: str) -> str:
    import base64
    import json

    header = token.split(".", 1)[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])
