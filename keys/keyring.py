"""The keyring: which key signs, which keys are published, and explicit rotation.

Per use (SAML, JWT) keys go ``next -> active -> retiring -> retired``. The
active key signs; next, active and retiring keys are published, so a token
signed before a rotation still verifies until it expires, and verifiers can
fetch the next key before it signs anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keys.crypto import KeyDecryptionError, MasterKey, decrypt_private_key, encrypt_private_key
from keys.errors import InvalidKey, KeysError, UnknownKey
from keys.generate import generate_key
from keys.model import ALGORITHMS, KeyState, KeyUse, SigningKey, thumbprint
from keys.store import KeyStore, StateChange, StoredKey

#: Added to the longest token lifetime before a retiring key stops being published
#: (covers verifiers' clock skew).
DEFAULT_MARGIN = timedelta(minutes=5)
_PUBLISHED_ORDER = {KeyState.ACTIVE: 0, KeyState.NEXT: 1, KeyState.RETIRING: 2}
Clock = Callable[[], datetime]


class NoActiveKey(KeysError, LookupError):
    """No active key for a use: the keyring was never initialised (``ensure``)."""


@dataclass(frozen=True)
class KeyTransition:
    """One key changing state; ``previous`` is ``None`` for a key just created."""

    kid: str
    alg: str
    previous: KeyState | None
    state: KeyState
    publish_until: datetime | None = None

    def describe(self) -> str:
        """One line for the CLI: ``created kid (ES256) as next`` or ``kid: active -> retiring``."""
        if self.previous is None:
            return f"created {self.kid} ({self.alg}) as {self.state.value}"
        line = f"{self.kid} ({self.alg}): {self.previous.value} -> {self.state.value}"
        if self.publish_until is not None and self.state is KeyState.RETIRING:
            line += f", published until {self.publish_until.isoformat()}"
        return line


@dataclass(frozen=True)
class Rotation:
    """What ``ensure`` or ``rotate`` changed, for the CLI and the audit trail."""

    use: KeyUse
    at: datetime
    transitions: tuple[KeyTransition, ...]

    @property
    def changed(self) -> bool:
        return bool(self.transitions)

    def describe(self) -> list[str]:
        """Human-readable lines, one per transition."""
        return [f"{self.use.value}: {t.describe()}" for t in self.transitions]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (``idp keys rotate --json``, audit events)."""
        return {
            "use": self.use.value,
            "at": self.at.isoformat(),
            "transitions": [
                {
                    "kid": t.kid,
                    "alg": t.alg,
                    "from": None if t.previous is None else t.previous.value,
                    "to": t.state.value,
                    "publish_until": None
                    if t.publish_until is None
                    else t.publish_until.isoformat(),
                }
                for t in self.transitions
            ],
        }


def check_signing_key(key: SigningKey) -> None:
    """Refuse a key the keyring could not use safely (:class:`~keys.errors.InvalidKey`, a
    ``ValueError``, saying why).

    Stops a ``kid`` that is not the key's thumbprint (kid confusion), an
    algorithm foreign to the key type or the use, and a certificate for
    another key (metadata publishing a key that does not sign).
    """
    if key.kid != thumbprint(key.public_key):
        raise InvalidKey(f"kid {key.kid!r} is not the RFC 7638 thumbprint of the key")
    if key.alg not in ALGORITHMS[key.use]:
        raise InvalidKey(f"algorithm {key.alg} not allowed for {key.use.value} keys")
    is_ec = isinstance(key.private_key, ec.EllipticCurvePrivateKey)
    if is_ec != (key.alg == "ES256"):
        raise InvalidKey(f"algorithm {key.alg} does not fit this key type")
    if key.certificate is None and key.use is KeyUse.SAML:
        raise InvalidKey("a SAML key needs a certificate")
    if key.certificate is not None and key.certificate.public_key() != key.public_key:
        raise InvalidKey("the certificate is for another key")


class Keyring:
    """Signing keys of every use, read from a :class:`KeyStore` and decrypted once.

    Decrypted keys are cached by ``kid``: signing repeats no decryption or
    parsing. With ``ttl`` > 0 the store's rows are also cached for that long.
    """

    def __init__(
        self,
        store: KeyStore,
        master_key: MasterKey,
        *,
        clock: Clock | None = None,
        ttl: timedelta = timedelta(0),
    ) -> None:
        self._store = store
        self._master_key = master_key
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        self._ttl = ttl
        self._keys: dict[str, tuple[StoredKey, SigningKey]] = {}
        self._rows: dict[KeyUse, tuple[datetime, list[StoredKey]]] = {}

    def active(self, use: KeyUse) -> SigningKey:
        """The key that signs for ``use``: the most recently activated active key."""
        rows = [row for row in self._list(use) if row.state is KeyState.ACTIVE]
        if not rows:
            raise NoActiveKey(f"no active {use.value} key: initialise the keyring (ensure)")
        newest = max(rows, key=lambda row: row.activated_at or row.created_at)
        return self._load(newest)

    def published(self, use: KeyUse, *, now: datetime | None = None) -> list[SigningKey]:
        """Keys verifiers must know: active, next, and retiring until ``publish_until``."""
        now = now or self._clock()
        rows = [row for row in self._list(use) if _is_published(row, now)]
        rows.sort(key=lambda row: _PUBLISHED_ORDER[row.state])
        return [self._load(row) for row in rows]

    def ensure(
        self, use: KeyUse, *, now: datetime, alg: str | None = None, rsa_bits: int = 2048
    ) -> Rotation:
        """Make sure ``use`` has an active and a next key (first start); atomic.

        A missing active key is taken from the next keys if there is one,
        otherwise created; a missing next key is created.
        """
        rows = self._store.list(use)
        nexts = [row for row in rows if row.state is KeyState.NEXT]
        changes: list[StateChange] = []
        new: list[SigningKey] = []
        if not any(row.state is KeyState.ACTIVE for row in rows):
            if nexts:
                changes.append(_activate(nexts.pop(0), now))
            else:
                new.append(
                    generate_key(use, now=now, alg=alg, rsa_bits=rsa_bits, state=KeyState.ACTIVE)
                )
        if not nexts:
            new.append(generate_key(use, now=now, alg=alg, rsa_bits=rsa_bits))
        return self._commit(use, now, rows, changes, new)

    def rotate(
        self,
        use: KeyUse,
        *,
        now: datetime,
        max_token_lifetime: timedelta,
        margin: timedelta = DEFAULT_MARGIN,
        alg: str | None = None,
        rsa_bits: int | None = None,
    ) -> Rotation:
        """Move every key of ``use`` one step and create a new next key; atomic.

        next -> active; active -> retiring, published until ``now +
        max_token_lifetime + margin`` so tokens it signed still verify until
        they expire; retiring past ``publish_until`` -> retired. The new key
        keeps the algorithm and RSA size of the key it follows unless given.
        """
        rows = self._store.list(use)
        publish_until = now + max_token_lifetime + margin
        changes = [c for row in rows if (c := _step(row, now, publish_until)) is not None]
        nexts = [row for row in rows if row.state is KeyState.NEXT]
        template = nexts[0] if nexts else self._current(rows)
        alg = alg or (template.alg if template else None)
        bits = rsa_bits or (self._rsa_bits(template) if template else 2048)
        new: list[SigningKey] = []
        if nexts:
            changes.append(_activate(nexts[0], now))
        else:
            new.append(generate_key(use, now=now, alg=alg, rsa_bits=bits, state=KeyState.ACTIVE))
        new.append(generate_key(use, now=now, alg=alg, rsa_bits=bits))
        return self._commit(use, now, rows, changes, new)

    def rows(self, use: KeyUse) -> list[StoredKey]:
        """Every stored key of ``use``, all states, oldest first (no private material)."""
        return self._store.list(use)

    def key(self, kid: str) -> SigningKey:
        """The decrypted key ``kid`` whatever its state (export); :class:`~keys.errors.UnknownKey`
        (a ``KeyError``) if unknown."""
        for use in KeyUse:
            for row in self._store.list(use):
                if row.kid == kid:
                    return self._load(row)
        raise UnknownKey(kid)

    def add(self, key: SigningKey) -> StoredKey:
        """Encrypt and store an imported key (see :mod:`keys.io`), checked first."""
        check_signing_key(key)
        stored = self._seal(key)
        self._store.add(stored)
        self._rows.pop(key.use, None)
        return stored

    def forget(self) -> None:
        """Drop the cached rows: the next call reads the store (keys changed elsewhere)."""
        self._rows.clear()

    def _commit(
        self,
        use: KeyUse,
        now: datetime,
        rows: Sequence[StoredKey],
        changes: Sequence[StateChange],
        new: Sequence[SigningKey],
    ) -> Rotation:
        if changes or new:
            self._store.replace_states(changes, add=[self._seal(key) for key in new])
            self._rows.pop(use, None)
        algs = {row.kid: row.alg for row in rows}
        moved = [
            KeyTransition(c.kid, algs[c.kid], c.previous, c.state, c.publish_until) for c in changes
        ]
        created = [KeyTransition(k.kid, k.alg, None, k.state) for k in new]
        return Rotation(use=use, at=now, transitions=tuple(moved + created))

    def _list(self, use: KeyUse) -> list[StoredKey]:
        if not self._ttl:
            return self._store.list(use)
        now = self._clock()
        cached = self._rows.get(use)
        if cached is None or cached[0] <= now:
            cached = (now + self._ttl, self._store.list(use))
            self._rows[use] = cached
        return cached[1]

    def _current(self, rows: Sequence[StoredKey]) -> StoredKey | None:
        active = [row for row in rows if row.state is KeyState.ACTIVE]
        return active[-1] if active else None

    def _rsa_bits(self, row: StoredKey) -> int:
        key = self._load(row).private_key
        return key.key_size if isinstance(key, rsa.RSAPrivateKey) else 2048

    def _seal(self, key: SigningKey) -> StoredKey:
        certificate = key.certificate
        return StoredKey(
            kid=key.kid,
            use=key.use,
            alg=key.alg,
            state=key.state,
            encrypted_private_key=encrypt_private_key(
                key.private_key, kid=key.kid, use=key.use, alg=key.alg, master_key=self._master_key
            ),
            certificate_pem=(
                None
                if certificate is None
                else certificate.public_bytes(serialization.Encoding.PEM)
            ),
            created_at=key.created_at,
            activated_at=key.activated_at,
            retiring_at=key.retiring_at,
            publish_until=key.publish_until,
        )

    def _load(self, row: StoredKey) -> SigningKey:
        cached = self._keys.get(row.kid)
        if cached is not None and cached[0] == row:
            return cached[1]
        if cached is not None and _same_material(cached[0], row):
            key = replace(cached[1], **_metadata(row))
        else:
            key = self._decrypt(row)
        self._keys[row.kid] = (row, key)
        return key

    def _decrypt(self, row: StoredKey) -> SigningKey:
        private_key = decrypt_private_key(
            row.encrypted_private_key,
            kid=row.kid,
            use=row.use,
            alg=row.alg,
            master_key=self._master_key,
        )
        certificate = None
        if row.certificate_pem is not None:
            certificate = x509.load_pem_x509_certificate(row.certificate_pem)
            if certificate.public_key() != private_key.public_key():
                raise KeyDecryptionError(f"certificate of key {row.kid!r} is for another key")
        return SigningKey(
            kid=row.kid,
            use=row.use,
            alg=row.alg,
            private_key=private_key,
            certificate=certificate,
            **_metadata(row),
        )


def _metadata(row: StoredKey) -> dict[str, Any]:
    return {
        "state": row.state,
        "created_at": row.created_at,
        "activated_at": row.activated_at,
        "retiring_at": row.retiring_at,
        "publish_until": row.publish_until,
    }


def _same_material(old: StoredKey, new: StoredKey) -> bool:
    return (old.encrypted_private_key, old.certificate_pem, old.use, old.alg) == (
        new.encrypted_private_key,
        new.certificate_pem,
        new.use,
        new.alg,
    )


def _is_published(row: StoredKey, now: datetime) -> bool:
    if row.state is KeyState.RETIRING:
        return row.publish_until is not None and row.publish_until > now
    return row.state in (KeyState.NEXT, KeyState.ACTIVE)


def _activate(row: StoredKey, now: datetime) -> StateChange:
    return StateChange(row.kid, row.state, KeyState.ACTIVE, activated_at=now)


def _step(row: StoredKey, now: datetime, publish_until: datetime) -> StateChange | None:
    """The rotation step of one key other than a next key (handled by the caller)."""
    if row.state is KeyState.ACTIVE:
        return StateChange(
            row.kid,
            row.state,
            KeyState.RETIRING,
            activated_at=row.activated_at,
            retiring_at=now,
            publish_until=publish_until,
        )
    if row.state is KeyState.RETIRING and not _is_published(row, now):
        return StateChange(
            row.kid,
            row.state,
            KeyState.RETIRED,
            activated_at=row.activated_at,
            retiring_at=row.retiring_at,
            publish_until=row.publish_until,
        )
    return None
