"""The app's password service, built once from the configuration: argon2id at the
configured parameters, computed by ``IDP_PASSWORD_HASH_CONCURRENCY`` threads of this
process kept for it, whichever request asks.

Why (issue 18, docs/profile.md « Mesures de la connexion »): argon2-cffi releases the
GIL, so every request thread of a worker (granian runs 16) could run its own argon2id
computation (19 MiB, memory-hard) at the same time: beyond the process's share of the
cores they only take turns on a core while evicting each other's memory. And each
request thread has its own malloc arena, from which the 19 MiB went back to the system
after each hash: the next one on that thread faulted its pages in again (kernel time,
zeroed pages). A few threads kept for hashing bound the computations in flight and reuse
their memory. A request waits for its turn holding no database connection nor lock (the
login hands its connection back before checking the password:
:func:`idp.auth.login.authenticate`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app

from idp.config import ConfigError
from rcd_store.passwords import HashParameters, PasswordService

SETTING = "PASSWORD_HASH_CONCURRENCY"
#: the largest bound accepted (a typo such as 10000 is refused rather than meaning "none")
MAX_CONCURRENCY = 256


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_concurrency(workers: int = 1, available: int | None = None) -> int:
    """Hashes at once per process when the setting is absent: the cores shared among the
    ``workers`` processes of the machine, rounded up (an idle core costs more than two
    hashes sharing one), at least 1. ``idp serve --workers N`` passes its figure to its
    workers; a single process takes every core."""
    available = cores() if available is None else available
    return max(1, -(-available // max(1, workers)))


def concurrency(config: Mapping[str, Any]) -> int:
    """``IDP_PASSWORD_HASH_CONCURRENCY`` checked (:class:`ConfigError` saying why), or
    the default for one process."""
    value = config.get(SETTING)
    if value is None or value == "":
        return default_concurrency()
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ConfigError(
            f"IDP_{SETTING} doit être un nombre entier de 1 à {MAX_CONCURRENCY} "
            f"(hachages de mots de passe simultanés par processus) : {value!r}"
        )
    return value


class BoundedPasswordService(PasswordService):
    """:class:`PasswordService` whose ``hash`` and ``verify`` run on ``limit`` threads
    kept for argon2id (``needs_rehash`` only parses the hash): at most ``limit``
    computations at once in this process, each on a thread whose memory is already in
    place. The caller waits for the result; an error is raised in the caller."""

    def __init__(self, params: HashParameters, limit: int) -> None:
        super().__init__(params)
        self.limit = limit
        # threads start at the first hash (after a server's fork), and stop with the app
        self._threads = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="argon2id")

    def hash(self, password: str) -> str:
        return self._threads.submit(super().hash, password).result()

    def verify(self, stored_hash: str, password: str) -> bool:
        return self._threads.submit(super().verify, stored_hash, password).result()


def init_app(app: Flask) -> BoundedPasswordService:
    service = BoundedPasswordService(
        HashParameters(
            time_cost=int(app.config["ARGON2_TIME_COST"]),
            memory_kib=int(app.config["ARGON2_MEMORY_KIB"]),
        ),
        concurrency(app.config),
    )
    app.extensions["idp.passwords"] = service
    return service


def passwords(app: Flask | None = None) -> PasswordService:
    return (app or current_app).extensions["idp.passwords"]  # type: ignore[no-any-return]
