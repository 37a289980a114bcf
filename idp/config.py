"""Configuration: defaults, then ``IDP_*`` environment variables, then overrides."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # default: SQLite in the instance folder
    "REDIS_URL": None,
    "BASE_URL": "http://127.0.0.1:5000",
    "MASTER_KEY": None,
    "SECRET_KEY": None,
    "DEMO": False,
    "DEBUG": False,
    "ENVIRONMENT": "demo",
    "OPERATOR_SIRET": "73282932000074",
    "SAML_ENTITY_ID": None,  # default urn:interops:<operator SIRET>:idp:<environment>
    "ARGON2_TIME_COST": 2,
    "ARGON2_MEMORY_KIB": 19 * 1024,
    #: argon2id hashes at once per process (idp.auth.passwords); None: the cores shared
    #: among the workers of ``idp serve --workers N``, every core for a single process
    "PASSWORD_HASH_CONCURRENCY": None,
    "TOKEN_LIFETIME_SECONDS": 300,
    "ACCESS_TOKEN_LIFETIME_SECONDS": 900,
    "LOCALE": "fr",
    #: reverse proxies in front of the service whose X-Forwarded-For/-Proto to trust
    "TRUSTED_PROXIES": 0,
    #: token endpoint requests per client and window (0: no limit)
    "TOKEN_RATE_LIMIT": 600,
    "TOKEN_RATE_WINDOW": 60,
    #: failed OAuth client authentications per source address and window (0: no limit)
    "CLIENT_AUTH_FAILURE_LIMIT": 60,
    "REFRESH_TOKEN_LIFETIME_SECONDS": 24 * 3600,
    #: request bodies larger than this (bytes) are refused with 413 before being read
    "MAX_BODY_BYTES": 1024 * 1024,
    #: database: seconds to connect, and for one statement (the server cancels it; the
    #: client gives up one second later if the server is not heard from); 0: no bound
    "DB_CONNECT_TIMEOUT": 2.0,
    "DB_STATEMENT_TIMEOUT": 2.0,
    #: seconds a request waits for a free connection of the pool
    "DB_POOL_TIMEOUT": 2.0,
    #: seconds for one Redis call (connecting included)
    "REDIS_TIMEOUT": 1.0,
    #: outbox (rcd_store.outbox, idp.outbox): file | console | smtp (default: file with
    #: the embedded SQLite, smtp otherwise); a background sender in the app (on for
    #: ``idp serve``), every OUTBOX_INTERVAL seconds; retries after OUTBOX_RETRY_SECONDS,
    #: doubling, given up after OUTBOX_MAX_ATTEMPTS; a claim older than
    #: OUTBOX_LEASE_SECONDS belongs to a dead worker; records kept OUTBOX_RECORD_DAYS
    "OUTBOX_SENDER": None,
    "OUTBOX_BACKGROUND": False,
    "OUTBOX_INTERVAL": 10.0,
    "OUTBOX_RETRY_SECONDS": 30.0,
    "OUTBOX_MAX_ATTEMPTS": 8,
    "OUTBOX_LEASE_SECONDS": 300.0,
    "OUTBOX_RECORD_DAYS": 90,
    #: security events and logout tokens (idp.events): pushed by a background thread (on
    #: for ``idp serve``) every EVENTS_INTERVAL seconds; a failed push retried after
    #: EVENTS_RETRY_SECONDS, doubling up to EVENTS_RETRY_MAX_SECONDS; EVENTS_TIMEOUT per
    #: POST; a claim older than EVENTS_LEASE_SECONDS is retried; settled rows kept
    #: EVENTS_RETENTION_DAYS
    "EVENTS_BACKGROUND": False,
    "EVENTS_INTERVAL": 2.0,
    "EVENTS_RETRY_SECONDS": 2.0,
    "EVENTS_RETRY_MAX_SECONDS": 300.0,
    "EVENTS_TIMEOUT": 5.0,
    "EVENTS_LEASE_SECONDS": 60.0,
    "EVENTS_RETENTION_DAYS": 30,
    #: partners' SAML metadata fetched from a URL (partners.metadata_refresh): refreshed by
    #: a background thread (on for ``idp serve``) looking every SAML_METADATA_INTERVAL
    #: seconds for what is due; fetched again every SAML_METADATA_REFRESH_SECONDS (sooner if
    #: the document asks), retried after SAML_METADATA_RETRY_SECONDS doubling; each fetch
    #: bounded by SAML_METADATA_TIMEOUT and SAML_METADATA_MAX_BYTES; plain http only to a
    #: loopback host unless SAML_METADATA_ALLOW_HTTP
    "SAML_METADATA_BACKGROUND": False,
    "SAML_METADATA_INTERVAL": 60.0,
    "SAML_METADATA_REFRESH_SECONDS": 6 * 3600,
    "SAML_METADATA_RETRY_SECONDS": 300.0,
    "SAML_METADATA_TIMEOUT": 10.0,
    "SAML_METADATA_MAX_BYTES": 2 * 1024 * 1024,
    "SAML_METADATA_ALLOW_HTTP": False,
    #: SMTP (idp.outbox.smtp): STARTTLS on unless set, but for a loopback host;
    #: SMTP_CA_FILE adds certificates to trust; LETTERS_TO: the print house's address
    #: (letters as PDF attachments), else letters stay files in <instance>/outbox
    "SMTP_HOST": None,
    "SMTP_PORT": 587,
    "SMTP_STARTTLS": None,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_FROM": "ne-pas-repondre@localhost",
    "SMTP_TIMEOUT": 30.0,
    "SMTP_CA_FILE": None,
    "LETTERS_TO": None,
    #: the letters' sender block, lines separated by \n
    "LETTER_SENDER": "Interops\nService d'identité",
    #: seconds before a newly granted habilitation takes effect (the access delay)
    "HABILITATION_DELAY_SECONDS": 0,
    #: packages above ``idp`` that plug into the app by ``init_app(app)`` (the widget:
    #: ``idp`` never imports them); ``IDP_EXTENSIONS`` is a comma-separated list
    "EXTENSIONS": ["widget.routes"],
}

_BOOLS = {"DEMO", "DEBUG"}
_INTS = {
    "TRUSTED_PROXIES",
    "TOKEN_RATE_LIMIT",
    "TOKEN_RATE_WINDOW",
    "CLIENT_AUTH_FAILURE_LIMIT",
    "REFRESH_TOKEN_LIFETIME_SECONDS",
    "ARGON2_TIME_COST",
    "ARGON2_MEMORY_KIB",
    "TOKEN_LIFETIME_SECONDS",
    "ACCESS_TOKEN_LIFETIME_SECONDS",
    "MAX_BODY_BYTES",
    "HABILITATION_DELAY_SECONDS",
}
_FLOATS = {"DB_CONNECT_TIMEOUT", "DB_STATEMENT_TIMEOUT", "DB_POOL_TIMEOUT", "REDIS_TIMEOUT"}
_BOOLS |= {"OUTBOX_BACKGROUND", "SMTP_STARTTLS"}
_INTS |= {"OUTBOX_MAX_ATTEMPTS", "OUTBOX_RECORD_DAYS", "SMTP_PORT"}
_FLOATS |= {"OUTBOX_INTERVAL", "OUTBOX_RETRY_SECONDS", "OUTBOX_LEASE_SECONDS", "SMTP_TIMEOUT"}
_BOOLS |= {"EVENTS_BACKGROUND"}
_INTS |= {"EVENTS_RETENTION_DAYS"}
_FLOATS |= {"EVENTS_INTERVAL", "EVENTS_RETRY_SECONDS", "EVENTS_RETRY_MAX_SECONDS"}
_FLOATS |= {"EVENTS_TIMEOUT", "EVENTS_LEASE_SECONDS"}
_BOOLS |= {"SAML_METADATA_BACKGROUND", "SAML_METADATA_ALLOW_HTTP"}
_INTS |= {"SAML_METADATA_REFRESH_SECONDS", "SAML_METADATA_MAX_BYTES"}
_FLOATS |= {"SAML_METADATA_INTERVAL", "SAML_METADATA_RETRY_SECONDS", "SAML_METADATA_TIMEOUT"}


class ConfigError(RuntimeError):
    """The service cannot start with this configuration; the message says why."""


def _coerce(name: str, value: str) -> Any:
    if name == "EXTENSIONS":
        return [part.strip() for part in value.split(",") if part.strip()]
    if name in _BOOLS:
        return value.strip().lower() in {"1", "true", "yes", "on", "oui"}
    if name in _INTS:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"IDP_{name} doit être un nombre entier : {value!r}") from None
    if name in _FLOATS:
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds < 3600:
            raise ConfigError(f"IDP_{name} doit être un nombre de secondes : {value!r}")
        return seconds
    return value


def load(
    overrides: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The effective configuration (keys without the ``IDP_`` prefix)."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    config["INSTANCE_PATH"] = environ.get("IDP_INSTANCE_PATH", str(Path.cwd() / "instance"))
    for key, value in environ.items():
        if key.startswith("IDP_") and key != "IDP_INSTANCE_PATH":
            config[key[4:]] = _coerce(key[4:], value)
    config.update(overrides or {})
    config["INSTANCE_PATH"] = str(Path(config["INSTANCE_PATH"]).resolve())
    config["BASE_URL"] = str(config["BASE_URL"]).rstrip("/")
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = "sqlite:///" + str(Path(config["INSTANCE_PATH"]) / "idp.sqlite3")
        config["EMBEDDED_DATABASE"] = True
    else:
        config.setdefault("EMBEDDED_DATABASE", False)
    if not config["SAML_ENTITY_ID"]:
        config["SAML_ENTITY_ID"] = (
            f"urn:interops:{config['OPERATOR_SIRET']}:idp:{config['ENVIRONMENT']}"
        )
    return config


#: SQLite creates its -wal and -shm files with the mode of the database file
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def secure_instance(config: Mapping[str, Any]) -> None:
    """The instance folder readable by its owner only (0700), and the embedded database
    with its -wal/-shm files 0600, created so before SQLite opens it: the database, the
    master key and the demo's files are never readable by other local users, whatever
    the umask (a folder or file left open by an earlier version is closed here)."""
    instance = Path(config["INSTANCE_PATH"])
    if not config["EMBEDDED_DATABASE"] and not instance.exists():
        return
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(instance, 0o700)
    if config["EMBEDDED_DATABASE"]:
        private_sqlite(Path(str(config["DATABASE_URL"]).removeprefix("sqlite:///")))


def private_sqlite(database: Path) -> None:
    """An SQLite file created 0600 before SQLite opens it (its -wal/-shm files take its
    mode), or closed to 0600 with them when an earlier version left it open."""
    os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    for suffix in _SQLITE_COMPANIONS:
        companion = database.with_name(database.name + suffix)
        if companion.exists():
            os.chmod(companion, 0o600)


def _instance_secret(instance: Path, name: str, make: Any, purpose: str) -> str:
    """Read a secret file of the instance folder, creating it (mode 0600) once."""
    path = instance / name
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(make() + "\n")
    log.warning("secret généré dans %s : conservez-le (%s)", path, purpose)
    return path.read_text(encoding="ascii").strip()


def resolve_secrets(config: dict[str, Any]) -> None:
    """Master key and Flask secret: from the environment, or generated once into the
    instance folder when the database is the embedded SQLite; refused otherwise. The
    instance folder is made private first (:func:`secure_instance`)."""
    secure_instance(config)
    instance = Path(config["INSTANCE_PATH"])
    if not config.get("MASTER_KEY"):
        if not config["EMBEDDED_DATABASE"]:
            raise ConfigError(
                "IDP_MASTER_KEY est obligatoire hors de la base SQLite embarquée "
                "(générez-en une avec « idp keys master-key »)"
            )
        config["MASTER_KEY"] = _instance_secret(
            instance, "master.key", _new_master_key, "il chiffre les clés de signature"
        )
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _instance_secret(
            instance,
            "secret.key",
            lambda: secrets.token_urlsafe(48),
            "il signe les jetons anti-CSRF et les états en attente",
        )


def _new_master_key() -> str:
    from keys.crypto import MasterKey

    return MasterKey.generate().to_text()
