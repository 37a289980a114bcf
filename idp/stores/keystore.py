"""The SQLAlchemy :class:`keys.store.KeyStore`: keys shared by every worker.

Rows live in the ``signing_key`` table declared here, beside the store that
reads and writes them; private keys arrive already encrypted (AES-GCM under the
master key) and are stored as such.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import LargeBinary, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from keys.model import KeyState, KeyUse
from keys.store import KeyStoreConflict, StateChange, StoredKey
from rcd_store.db import Base, UTCDateTime, rows_affected


class SigningKeyRow(Base):
    """A signing key; the private key is AES-GCM encrypted under the master key."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    use: Mapped[str] = mapped_column(String(8), index=True)
    alg: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(10))
    encrypted_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    certificate_pem: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retiring_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


def _stored(row: SigningKeyRow) -> StoredKey:
    return StoredKey(
        kid=row.kid,
        use=KeyUse(row.use),
        alg=row.alg,
        state=KeyState(row.state),
        encrypted_private_key=bytes(row.encrypted_private_key),
        certificate_pem=bytes(row.certificate_pem) if row.certificate_pem is not None else None,
        created_at=row.created_at,
        activated_at=row.activated_at,
        retiring_at=row.retiring_at,
        publish_until=row.publish_until,
    )


def _row(stored: StoredKey) -> SigningKeyRow:
    return SigningKeyRow(
        kid=stored.kid,
        use=stored.use.value,
        alg=stored.alg,
        state=stored.state.value,
        encrypted_private_key=stored.encrypted_private_key,
        certificate_pem=stored.certificate_pem,
        created_at=stored.created_at,
        activated_at=stored.activated_at,
        retiring_at=stored.retiring_at,
        publish_until=stored.publish_until,
    )


class SqlKeyStore:
    """Key rows in the directory database; every write is one transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def list(self, use: KeyUse) -> builtins.list[StoredKey]:
        with self._sessions() as session:
            rows = session.scalars(
                select(SigningKeyRow)
                .where(SigningKeyRow.use == use.value)
                .order_by(SigningKeyRow.created_at, SigningKeyRow.kid)
            )
            return [_stored(row) for row in rows]

    def add(self, stored: StoredKey) -> None:
        self.replace_states((), add=(stored,))

    def update_state(
        self,
        kid: str,
        state: KeyState,
        *,
        activated_at: datetime | None,
        retiring_at: datetime | None,
        publish_until: datetime | None,
    ) -> None:
        with self._sessions.begin() as session:
            result = session.execute(
                update(SigningKeyRow)
                .where(SigningKeyRow.kid == kid)
                .values(
                    state=state.value,
                    activated_at=activated_at,
                    retiring_at=retiring_at,
                    publish_until=publish_until,
                )
            )
            if rows_affected(result) != 1:
                raise KeyStoreConflict(f"no key {kid!r}")

    def replace_states(
        self, changes: Sequence[StateChange], *, add: Sequence[StoredKey] = ()
    ) -> None:
        """All changes and inserts in one transaction; a stale state rolls all back."""
        try:
            with self._sessions.begin() as session:
                for change in changes:
                    self._apply(session, change)
                session.add_all([_row(stored) for stored in add])
                session.flush()
        except IntegrityError:
            raise KeyStoreConflict("a key with this kid already exists") from None

    @staticmethod
    def _apply(session: Session, change: StateChange) -> None:
        result = session.execute(
            update(SigningKeyRow)
            .where(SigningKeyRow.kid == change.kid, SigningKeyRow.state == change.previous.value)
            .values(
                state=change.state.value,
                activated_at=change.activated_at,
                retiring_at=change.retiring_at,
                publish_until=change.publish_until,
            )
        )
        if rows_affected(result) != 1:
            raise KeyStoreConflict(
                f"key {change.kid!r} is unknown or no longer {change.previous.value}"
            )
