"""Durable timers (``scheduled_jobs``): escalations, response deadlines. A job is scheduled inside the caller's
transaction (so it exists only if the change that needs it commits), survives restarts, and its effects are
committed exactly once even with several instances polling the same PostgreSQL database:

1. a worker **claims** a due job with a conditional update (claimed by nobody, or by a worker whose lease ran out),
   committed on its own so that other workers see it;
2. it runs the handler in a new transaction, which also **marks the job done** only if the worker still holds the
   claim; if it lost the claim meanwhile (lease expired and another worker took over), the handler's work is rolled
   back;
3. a failing handler rolls back; the job is retried with exponential backoff, then marked failed after
   ``max_attempts`` (logged, visible in the table).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telesante.config import get_settings
from telesante.db import transaction
from telesante.jobs.models import ScheduledJob
from telesante.jobs.repository import JobRepository
from telesante.kit import clock

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]
_HANDLERS: dict[str, Handler] = {}
LEASE = timedelta(minutes=5)
BASE_RETRY = timedelta(seconds=30)


class LostClaim(RuntimeError):
    """Another worker took the job over (this one's lease ran out): its work must not commit."""


def job_handler(kind: str) -> Callable[[Handler], Handler]:
    """Register ``async def handler(session, payload)`` for a job kind (one handler per kind)."""

    def register(handler: Handler) -> Handler:
        existing = _HANDLERS.get(kind)
        if existing is not None and existing is not handler:
            raise RuntimeError(f"job kind {kind!r} already has a handler")
        _HANDLERS[kind] = handler
        return handler

    return register


def registered_kinds() -> set[str]:
    return set(_HANDLERS)


async def schedule_job(
    session: AsyncSession,
    kind: str,
    run_at: datetime,
    payload: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    new_key: bool = False,
) -> uuid.UUID:
    """Schedule (in the caller's transaction). With a ``dedupe_key``, a pending job of the same kind and key is
    moved to the new time and payload instead of adding a second one. ``new_key``: the key names something this
    transaction has just created (a new request, a new page), so no job can be pending for it: it is not looked
    up."""
    repo = JobRepository(session)
    if dedupe_key is not None and not new_key:
        existing = await repo.find_pending(kind, dedupe_key)
        if existing is not None:
            existing.run_at = clock.as_utc(run_at)
            existing.payload = payload
            await session.flush()
            return existing.id
    job = await repo.add(
        ScheduledJob(
            kind=kind,
            run_at=clock.as_utc(run_at),
            payload=payload,
            dedupe_key=dedupe_key,
            max_attempts=get_settings().jobs_max_attempts,
        )
    )
    return job.id


async def ensure_job(
    session: AsyncSession, kind: str, run_at: datetime, payload: dict[str, Any], *, dedupe_key: str
) -> None:
    """Schedule unless a job of this kind and key is already pending (a recurring timer that must not be pushed back
    each time someone asks for it)."""
    if await JobRepository(session).find_pending(kind, dedupe_key) is None:
        await schedule_job(session, kind, run_at, payload, dedupe_key=dedupe_key)


async def cancel_jobs(session: AsyncSession, kind: str, dedupe_key: str) -> int:
    return await JobRepository(session).cancel(kind, dedupe_key, clock.now())


def _retry_at(attempts: int, max_attempts: int, now: datetime) -> datetime | None:
    if attempts >= max_attempts:
        return None
    return now + BASE_RETRY * (2 ** (attempts - 1))


async def run_due_jobs(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    now: datetime | None = None,
    worker: str,
    limit: int = 50,
    lease: timedelta = LEASE,
) -> int:
    """Run the jobs due at ``now``; returns how many this worker completed."""
    moment = now or clock.now()
    async with transaction(sessionmaker) as session:
        due = await JobRepository(session).due(moment, lease, limit)
    completed = 0
    for job_id in due:
        async with transaction(sessionmaker) as session:
            claimed = await JobRepository(session).claim(job_id, worker, moment, lease)
        if not claimed:
            continue  # another worker has it
        try:
            # a context manager, not ``async for``: a failing handler rolls back here, before the failure is recorded
            async with transaction(sessionmaker) as session:
                job = await JobRepository(session).get(job_id)
                assert job is not None
                handler = _HANDLERS.get(job.kind)
                if handler is None:
                    raise LookupError(f"no handler for job kind {job.kind!r}")
                await handler(session, dict(job.payload))
                if not await JobRepository(session).complete(job_id, worker, clock.now()):
                    raise LostClaim(str(job_id))
            completed += 1
        except LostClaim:
            log.warning("job %s: claim lost to another worker, work rolled back", job_id)
        except Exception as exc:  # a failing job must never stop the others
            log.exception("job %s failed", job_id)
            async with transaction(sessionmaker) as session:
                job = await JobRepository(session).get(job_id)
                if job is not None:
                    retry = _retry_at(job.attempts, job.max_attempts, clock.now())
                    await JobRepository(session).record_failure(
                        job_id, worker, f"{type(exc).__name__}: {exc}", retry, clock.now()
                    )
    return completed
