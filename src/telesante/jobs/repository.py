"""Every query on scheduled jobs. Claims and completions are conditional updates: whoever's update matched the
row owns it; anyone else gets zero rows (PostgreSQL re-checks the condition after waiting for the row lock)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa

from telesante.jobs.models import ScheduledJob
from telesante.kit.repository import RepositoryBase

J = ScheduledJob


def _pending() -> sa.ColumnElement[bool]:
    return sa.and_(J.done_at.is_(None), J.cancelled_at.is_(None), J.failed_at.is_(None))


class JobRepository(RepositoryBase[ScheduledJob]):
    model = ScheduledJob

    async def find_pending(self, kind: str, dedupe_key: str) -> ScheduledJob | None:
        return await self.scalar(
            # A job being run (claimed) is not moved: the handler may be scheduling the next one under the same key.
            sa.select(J)
            .where(J.kind == kind, J.dedupe_key == dedupe_key, _pending(), J.claimed_at.is_(None))
            .limit(1)
        )

    async def cancel(self, kind: str, dedupe_key: str, now: datetime) -> int:
        result = await self.session.execute(
            sa.update(J)
            .where(J.kind == kind, J.dedupe_key == dedupe_key, _pending())
            .values(cancelled_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount

    async def due(self, now: datetime, lease: timedelta, limit: int) -> list[uuid.UUID]:
        """Jobs due now and not held by a live claim (a claim older than the lease is a dead worker's)."""
        rows = await self.session.execute(
            sa.select(J.id)
            .where(_pending(), J.run_at <= now, sa.or_(J.claimed_at.is_(None), J.claimed_at < now - lease))
            .order_by(J.run_at, J.id)
            .limit(limit)
        )
        return list(rows.scalars())

    async def claim(self, job_id: uuid.UUID, worker: str, now: datetime, lease: timedelta) -> bool:
        result = await self.session.execute(
            sa.update(J)
            .where(
                J.id == job_id,
                _pending(),
                J.run_at <= now,
                sa.or_(J.claimed_at.is_(None), J.claimed_at < now - lease),
            )
            .values(claimed_by=worker, claimed_at=now, attempts=J.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def complete(self, job_id: uuid.UUID, worker: str, now: datetime) -> bool:
        """Mark done in the handler's own transaction: true only for the worker that still holds the claim."""
        result = await self.session.execute(
            sa.update(J)
            .where(J.id == job_id, _pending(), J.claimed_by == worker)
            .values(done_at=now, done_by=worker)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def record_failure(
        self, job_id: uuid.UUID, worker: str, error: str, retry_at: datetime | None, now: datetime
    ) -> None:
        values: dict = {"claimed_by": None, "claimed_at": None, "last_error": error[:2000]}
        if retry_at is None:
            values["failed_at"] = now
        else:
            values["run_at"] = retry_at
        await self.session.execute(
            sa.update(J)
            .where(J.id == job_id, J.claimed_by == worker, _pending())
            .values(**values)
            .execution_options(synchronize_session=False)
        )
