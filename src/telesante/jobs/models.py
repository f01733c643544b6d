"""Durable timers: a job is a row with a due time; it survives restarts and runs exactly once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit import clock
from telesante.kit.models import Base, UTCDateTime, UUIDPrimaryKey


class ScheduledJob(UUIDPrimaryKey, Base):
    __tablename__ = "scheduled_jobs"
    __table_args__ = (
        sa.Index("ix_scheduled_jobs_pending", "done_at", "cancelled_at", "run_at"),
        sa.Index("ix_scheduled_jobs_kind_dedupe", "kind", "dedupe_key"),
    )

    kind: Mapped[str] = mapped_column(sa.String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200))
    run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_by: Mapped[str | None] = mapped_column(sa.String(200))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(sa.String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
