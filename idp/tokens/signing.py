"""Signing keys of the running service: the keyring over the database, JWKS and metadata.

Keys live in the database (every worker shares them), encrypted under
``IDP_MASTER_KEY``. The keyring caches rows so signing does not read the database
for every token; a rotation made by the CLI or another worker moves the ``keys``
generation (:mod:`idp.stores.generations`), which drops that cache within a second
(the row cache's own expiry, :data:`ROW_CACHE`, is only a backstop). The JWKS and
the metadata are prepared bytes (:mod:`idp.web.documents`), built again when the
published keys change.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Flask, Response, current_app
from werkzeug.exceptions import ServiceUnavailable

from idp.config import ConfigError
from idp.i18n import _
from idp.stores import sealing
from idp.stores.db import database
from idp.stores.generations import generations
from idp.stores.keystore import SqlKeyStore
from idp.web import documents
from keys.crypto import MasterKey
from keys.jwks import jwks
from keys.keyring import Keyring, NoActiveKey, Rotation
from keys.model import KeyUse
from rcd_store import audit

EXTENSION = "idp.keyring"
ROW_CACHE = timedelta(seconds=10)
METADATA_VALIDITY = timedelta(days=7)

bp = Blueprint("signing", __name__)


def init_app(app: Flask) -> Keyring:
    try:
        master_key = MasterKey.from_text(app.config["MASTER_KEY"])
    except ValueError as exc:
        raise ConfigError(f"IDP_MASTER_KEY invalide : {exc}") from None
    keyring = Keyring(SqlKeyStore(database(app).sessions), master_key, ttl=ROW_CACHE)
    app.extensions[EXTENSION] = keyring
    generations(app).on_change("keys", keyring.forget)
    app.extensions["idp.master_key"] = master_key
    sealer = app.extensions[sealing.EXTENSION] = sealing.MasterKeySealer(master_key)
    audit.bind(database(app).engine, sealer)  # the audit chain key is sealed by it
    app.register_error_handler(NoActiveKey, _no_signing_key)
    documents.publish(
        app,
        "/.well-known/jwks.json",
        "application/json",
        jwks_bytes,
        published_version(app, KeyUse.JWT),
    )
    documents.publish(
        app,
        "/saml/metadata",
        "application/samlmetadata+xml",
        metadata_bytes,
        published_version(app, KeyUse.SAML, daily=True),
    )
    return keyring


def _no_signing_key(_exc: NoActiveKey) -> Response | tuple[str, int]:
    """A worker started before any signing key exists answers 503 with what the operator
    must do (JSON for APIs, a page otherwise), never a traceback or an empty JWKS."""
    from idp.web.errors import handle_http

    message = _(
        "Service momentanément indisponible : aucune clé de signature active "
        "(l'exploitant doit lancer « idp db upgrade »)."
    )
    current_app.logger.error("aucune clé de signature active : lancez « idp db upgrade »")
    return handle_http(ServiceUnavailable(description=message))


def master_key(app: Flask | None = None) -> MasterKey:
    """The master key that seals private keys and other secrets at rest."""
    return (app or current_app).extensions["idp.master_key"]  # type: ignore[no-any-return]


def keyring(app: Flask | None = None) -> Keyring:
    return (app or current_app).extensions[EXTENSION]  # type: ignore[no-any-return]


def ensure_keys(app: Flask) -> list[Rotation]:
    """First start: an active and a next key for SAML and for JWT (idempotent); returns
    what was created or activated."""
    ring = keyring(app)
    now = datetime.now(UTC)
    return [
        ring.ensure(KeyUse.SAML, now=now, rsa_bits=int(app.config.get("SAML_RSA_BITS", 2048))),
        ring.ensure(KeyUse.JWT, now=now, alg=app.config.get("JWT_ALG") or None),
    ]


def max_token_lifetime(app: Flask) -> timedelta:
    """The longest lifetime of any token this service signs (retiring keys stay that long)."""
    seconds = max(
        int(app.config["TOKEN_LIFETIME_SECONDS"]), int(app.config["ACCESS_TOKEN_LIFETIME_SECONDS"])
    )
    return timedelta(seconds=seconds)


def jwks_bytes() -> bytes:
    """The JWKS of the next, active and retiring JWT keys (kid = RFC 7638 thumbprint);
    :class:`NoActiveKey` rather than an empty set while no key exists."""
    published = keyring().published(KeyUse.JWT)
    if not published:
        raise NoActiveKey("no JWT key to publish")
    return json.dumps(jwks(published), separators=(",", ":"), sort_keys=True).encode()


def metadata_bytes() -> bytes:
    """The IdP's signed SAML 2.0 metadata: SSO/SLO endpoints and every published signing
    key, valid for a week (rebuilt every day and at every key change, see :func:`init_app`)."""
    from token_suite.metadata import idp_metadata

    ring = keyring()
    base = current_app.config["BASE_URL"]
    return idp_metadata(
        entity_id=current_app.config["SAML_ENTITY_ID"],
        signing_keys=ring.published(KeyUse.SAML),
        sso_url=f"{base}/saml/sso",
        slo_url=f"{base}/saml/slo",
        signer=ring.active(KeyUse.SAML),
        valid_until=datetime.now(UTC) + METADATA_VALIDITY,
    )


def published_version(app: Flask, use: KeyUse, *, daily: bool = False) -> documents.Version:
    """What a document of ``use``'s keys depends on: the published kids in order, from the
    keyring's cache, after the ``keys`` generation is polled (at most one small query every
    half second per process: a rotation anywhere is published here within a second), and
    the day for a document that expires."""
    ring, registry = keyring(app), generations(app)

    def version() -> Hashable:
        registry.refresh()
        kids = tuple(key.kid for key in ring.published(use))
        return (kids, datetime.now(UTC).date()) if daily else kids

    return version


@bp.get("/.well-known/jwks.json")
def jwks_document() -> Response:
    """The JWKS (answered from prepared bytes by :mod:`idp.web.documents`; this route
    answers when they cannot be prepared: 503 with no key)."""
    return Response(jwks_bytes(), mimetype="application/json")


@bp.get("/saml/metadata")
def saml_metadata() -> Response:
    """The SAML metadata (prepared bytes as above; this route answers when they cannot be)."""
    return Response(metadata_bytes(), mimetype="application/samlmetadata+xml")
