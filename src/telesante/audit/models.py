"""Append-only audit trail; each row carries the SHA-256 of the previous one."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit.models import Base, UTCDateTime, Uuid


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (sa.Index("ix_audit_events_patient_seq", "patient_id", "seq"),)

    seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    request_id: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(10))
    ip: Mapped[str] = mapped_column(sa.String(64))
    account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor: Mapped[str] = mapped_column(sa.String(300))
    roles: Mapped[str] = mapped_column(sa.String(300))
    organisations: Mapped[str] = mapped_column(sa.String(1000))
    action: Mapped[str] = mapped_column(sa.String(40))
    object_type: Mapped[str] = mapped_column(sa.String(60))
    object_id: Mapped[str] = mapped_column(sa.String(64))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    break_glass: Mapped[bool] = mapped_column(default=False)
    details: Mapped[str] = mapped_column(sa.Text)  # canonical JSON
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    # not indexed: the chain (each hash covers the previous one and the row's seq, the primary key) makes it unique,
    # and rows are read in seq order (migration 2026-12-06-2010)
    hash: Mapped[str] = mapped_column(sa.String(64))
