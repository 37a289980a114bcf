"""The operator role: staff of the organisation running the service (not a company
role), who alone reach the operator console. Granted and revoked by ``idp operator``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from rcd_store.db import Base, UTCDateTime, utcnow


class Operator(Base):
    """A declarant who is an operator of the service."""

    __tablename__ = "operator"

    id: Mapped[int] = mapped_column(primary_key=True)
    declarant_id: Mapped[str] = mapped_column(
        ForeignKey("declarant.id", ondelete="CASCADE"), unique=True
    )
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who granted it ("cli", or an operator's declarant id)
    granted_by: Mapped[str] = mapped_column(String(80))
