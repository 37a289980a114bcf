"""Limits at the endpoints where OAuth clients authenticate (token, introspection,
revocation), counted without SQL per request (issue 18): the per-client budget in
this process's memory (:class:`idp.auth.throttle.MemoryBackend`: per worker, so W
workers serve at most W times the budget), the failures per address in Redis when it
is configured (one round trip; shared by every worker), else in memory too.

- *Per client*: each client gets ``TOKEN_RATE_LIMIT`` token requests (default 600) per
  ``TOKEN_RATE_WINDOW`` seconds (default 60), charged only AFTER it has authenticated
  (:func:`charge_client`): someone naming a client without its credentials never
  spends its budget (issue 13 item 7). Stops a client from monopolising the signing
  keys. ``0`` disables it (benchmarks).
- *Per source address*: failed client authentications (wrong secret, unknown client,
  bad assertion) count against the address (:func:`count_failure`);
  ``CLIENT_AUTH_FAILURE_LIMIT`` of them (default 60) per window hold that address off
  with 429 before any credential is checked (:func:`refuse_held_address`). Stops
  secret guessing and floods without touching the clients named. ``0`` disables it.

Beyond either limit: 429, ``Retry-After``, the JSON error ``too_many_requests``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import current_app, request

from idp.auth.throttle import Backend, MemoryBackend, RedisBackend, Rule, throttle
from idp.oidc.clients import digest

DEFAULT_RATE_LIMIT = 600
DEFAULT_RATE_WINDOW = 60
DEFAULT_FAILURE_LIMIT = 60
#: ``app.extensions`` key of this process's counters
EXTENSION = "idp.oauth.limits"


class TooManyRequestsError(OAuth2Error):  # type: ignore[misc]
    """429 with ``Retry-After`` (RFC 6585 4): a client's budget or an address's failures."""

    error = "too_many_requests"
    status_code = 429

    def __init__(self, description: str, retry_after: int) -> None:
        super().__init__(description=description)
        self.retry_after = retry_after

    def get_headers(self) -> list[tuple[str, str]]:
        return [*super().get_headers(), ("Retry-After", str(self.retry_after))]


def _setting(name: str, default: int) -> int:
    value = current_app.config.get(name)
    return default if value is None or value == "" else int(value)


def _window() -> int:
    return max(1, _setting("TOKEN_RATE_WINDOW", DEFAULT_RATE_WINDOW))


def _failure_rule() -> Rule | None:
    limit = _setting("CLIENT_AUTH_FAILURE_LIMIT", DEFAULT_FAILURE_LIMIT)
    return Rule(limit, _window(), doubling=False) if limit > 0 else None


def _memory() -> MemoryBackend:
    found = current_app.extensions.get(EXTENSION)
    if found is None:
        found = current_app.extensions.setdefault(EXTENSION, MemoryBackend())
    return found  # type: ignore[no-any-return]


def _shared() -> Backend:
    """Redis when the app's throttle counts there (every worker sees the same
    failures), else this process's memory."""
    backend = throttle().backend
    return backend if isinstance(backend, RedisBackend) else _memory()


def _address_key(address: str | None) -> str:
    return "oauth-fail:" + (address or "")


def refuse_held_address(address: str | None = None) -> None:
    """Raise :class:`TooManyRequestsError` when the request's address (or ``address``,
    outside a request) has used up its failed client authentications (read only:
    nothing is counted)."""
    rule = _failure_rule()
    if rule is None:
        return
    key = _address_key(address if address is not None else request.remote_addr)
    seconds = _shared().locked_for(key, rule, now=datetime.now(UTC))
    if seconds:
        raise TooManyRequestsError(
            "Trop d'authentifications de client refusees depuis cette adresse : "
            "reessayez plus tard.",
            seconds,
        )


def count_failure() -> None:
    """Count a failed client authentication against the source address (held off once
    the limit is reached)."""
    rule = _failure_rule()
    if rule is None:
        return
    backend, now = _shared(), datetime.now(UTC)
    key = _address_key(request.remote_addr)
    backend.failed(backend.reserve(key, rule, now=now), rule, now=now)


def charge_client(client_id: str) -> None:
    """Charge one token request to an AUTHENTICATED client; raise
    :class:`TooManyRequestsError` once its window is used up."""
    limit = _setting("TOKEN_RATE_LIMIT", DEFAULT_RATE_LIMIT)
    if limit <= 0:
        return
    reservation = _memory().reserve(
        "oauth:" + digest(client_id), Rule(limit, _window(), doubling=False), now=datetime.now(UTC)
    )
    if not reservation.allowed:
        raise TooManyRequestsError(
            "Trop de demandes de jetons pour ce client : reessayez plus tard.",
            reservation.retry_after,
        )
