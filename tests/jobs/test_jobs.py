"""Durable timers on real engines: committed rows, separate engines standing for separate instances."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from telesante.db import make_engine, make_sessionmaker, run_in_transaction
from telesante.jobs.models import ScheduledJob
from telesante.jobs.repository import JobRepository
from telesante.jobs.service import cancel_jobs, job_handler, run_due_jobs, schedule_job
from telesante.kit import clock

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def instances(engine):
    """Two independent engines on the test database (two application instances), and a unique job kind."""
    url = engine.url.render_as_string(hide_password=False)
    engines = [make_engine(url), make_engine(url)]
    kind = f"test.{uuid.uuid4().hex[:10]}"
    clock.set_clock(lambda: T0)
    yield kind, [make_sessionmaker(e) for e in engines]
    async with engines[0].begin() as conn:
        await conn.execute(sa.delete(ScheduledJob).where(ScheduledJob.kind.startswith(kind)))
    for e in engines:
        await e.dispose()
    clock.set_clock(None)


async def _schedule(sessionmaker, kind, run_at, payload, **kwargs) -> uuid.UUID:
    async for session in run_in_transaction(sessionmaker):
        job_id = await schedule_job(session, kind, run_at, payload, **kwargs)
    return job_id


async def _job(sessionmaker, job_id) -> ScheduledJob:
    async for session in run_in_transaction(sessionmaker):
        job = await JobRepository(session).get(job_id)
    return job


async def _effects(sessionmaker, kind) -> Counter:
    async for session in run_in_transaction(sessionmaker):
        rows = await session.execute(
            sa.select(ScheduledJob.payload).where(ScheduledJob.kind == f"{kind}.effect")
        )
        found = Counter(p["n"] for p in rows.scalars())
    return found


def _effect_handler(kind, calls: list):
    """The handler's effect is a row written in the job's own transaction (committed with its completion)."""

    @job_handler(kind)
    async def handler(session, payload):
        calls.append(payload["n"])
        await asyncio.sleep(0)  # let the other instance interleave
        await schedule_job(session, f"{kind}.effect", T0 + timedelta(days=365), {"n": payload["n"]})

    return handler


async def test_two_instances_run_each_due_job_exactly_once(instances):
    kind, (first, second) = instances
    calls: list[int] = []
    _effect_handler(kind, calls)
    for n in range(20):
        await _schedule(first, kind, T0 - timedelta(seconds=n), {"n": n})
    await _schedule(first, kind, T0 + timedelta(minutes=1), {"n": 99})  # not due yet

    done = await asyncio.gather(
        run_due_jobs(first, worker="instance-a"),
        run_due_jobs(second, worker="instance-b"),
        run_due_jobs(second, worker="instance-c"),
    )
    assert sum(done) == 20
    assert sorted(calls) == list(range(20))
    assert await _effects(first, kind) == Counter(range(20))
    assert await run_due_jobs(second, worker="instance-b") == 0  # nothing due is left


async def test_a_scheduled_job_survives_a_restart(instances, engine):
    kind, (first, _) = instances
    calls: list[int] = []
    _effect_handler(kind, calls)
    job_id = await _schedule(first, kind, T0 + timedelta(minutes=5), {"n": 1})
    await first.kw["bind"].dispose()  # the instance stops

    restarted_engine = make_engine(engine.url.render_as_string(hide_password=False))
    try:
        restarted = make_sessionmaker(restarted_engine)
        assert await run_due_jobs(restarted, worker="after-restart") == 0
        clock.set_clock(lambda: T0 + timedelta(minutes=5))
        assert await run_due_jobs(restarted, worker="after-restart") == 1
        job = await _job(restarted, job_id)
        assert (job.done_by, job.done_at, job.attempts) == ("after-restart", T0 + timedelta(minutes=5), 1)
        assert calls == [1]
    finally:
        await restarted_engine.dispose()


async def test_a_failing_job_is_retried_with_backoff_then_marked_failed(instances):
    kind, (first, _) = instances
    attempts: list[datetime] = []

    @job_handler(kind)
    async def flaky(session, payload):
        attempts.append(clock.now())
        await schedule_job(session, f"{kind}.effect", T0 + timedelta(days=1), {"n": len(attempts)})
        if len(attempts) < payload["succeed_at"]:
            raise RuntimeError("service indisponible")

    job_id = await _schedule(first, kind, T0, {"succeed_at": 3})
    assert await run_due_jobs(first, worker="w") == 0
    job = await _job(first, job_id)
    assert job.attempts == 1 and job.done_at is None and job.failed_at is None
    assert job.run_at == T0 + timedelta(seconds=30)
    assert job.last_error == "RuntimeError: service indisponible"
    assert await _effects(first, kind) == Counter()  # the failed attempt's work was rolled back

    clock.set_clock(lambda: T0 + timedelta(seconds=29))
    assert await run_due_jobs(first, worker="w") == 0 and len(attempts) == 1  # not before the backoff
    clock.set_clock(lambda: T0 + timedelta(seconds=30))
    assert await run_due_jobs(first, worker="w") == 0
    assert (await _job(first, job_id)).run_at == T0 + timedelta(seconds=90)  # doubled
    clock.set_clock(lambda: T0 + timedelta(seconds=90))
    assert await run_due_jobs(first, worker="w") == 1
    job = await _job(first, job_id)
    assert job.done_at == T0 + timedelta(seconds=90) and job.attempts == 3
    assert await _effects(first, kind) == Counter({3: 1})

    # A job that keeps failing stops after max_attempts.
    hopeless = await _schedule(first, kind, T0 + timedelta(seconds=90), {"succeed_at": 10**6})
    moment = T0 + timedelta(seconds=90)
    for _ in range(20):
        clock.set_clock(lambda m=moment: m)
        await run_due_jobs(first, worker="w")
        job = await _job(first, hopeless)
        if job.failed_at is not None:
            break
        moment = job.run_at
    assert job.failed_at is not None and job.attempts == job.max_attempts == 5
    clock.set_clock(lambda: moment + timedelta(days=1))
    assert await run_due_jobs(first, worker="w") == 0


async def test_a_job_claimed_by_a_dead_worker_is_reclaimed_after_the_lease(instances):
    kind, (first, second) = instances
    calls: list[int] = []
    _effect_handler(kind, calls)
    job_id = await _schedule(first, kind, T0, {"n": 7})
    lease = timedelta(minutes=5)
    async for session in run_in_transaction(first):  # a worker claims it, then dies before running it
        assert await JobRepository(session).claim(job_id, "dead-worker", T0, lease)

    clock.set_clock(lambda: T0 + timedelta(minutes=4))
    assert await run_due_jobs(second, worker="survivor", lease=lease) == 0
    assert calls == []
    clock.set_clock(lambda: T0 + timedelta(minutes=5, seconds=1))
    assert await run_due_jobs(second, worker="survivor", lease=lease) == 1
    job = await _job(first, job_id)
    assert (job.done_by, job.attempts) == ("survivor", 2)
    assert await _effects(first, kind) == Counter({7: 1})


async def test_a_worker_that_lost_its_claim_does_not_commit(instances):
    kind, (first, _) = instances
    job_id = await _schedule(first, kind, T0, {"n": 1})

    @job_handler(kind)
    async def slow(session, payload):
        await schedule_job(session, f"{kind}.effect", T0 + timedelta(days=1), {"n": 1})
        # Meanwhile this (slow) worker's lease ran out and another worker took the job over.
        await session.execute(
            sa.update(ScheduledJob).where(ScheduledJob.id == job_id).values(claimed_by="other-worker")
        )

    assert await run_due_jobs(first, worker="slow-worker") == 0
    assert await _effects(first, kind) == Counter()
    assert (await _job(first, job_id)).done_at is None


async def test_cancel_and_dedupe(instances):
    kind, (first, _) = instances
    calls: list[int] = []
    _effect_handler(kind, calls)
    job_id = await _schedule(first, kind, T0 + timedelta(minutes=5), {"n": 1}, dedupe_key="page-1")
    moved = await _schedule(first, kind, T0 + timedelta(minutes=10), {"n": 2}, dedupe_key="page-1")
    assert moved == job_id  # moved, not duplicated
    other = await _schedule(first, kind, T0 + timedelta(minutes=10), {"n": 3}, dedupe_key="page-2")
    async for session in run_in_transaction(first):
        assert await cancel_jobs(session, kind, "page-2") == 1
        assert await cancel_jobs(session, kind, "page-2") == 0
    clock.set_clock(lambda: T0 + timedelta(minutes=10))
    assert await run_due_jobs(first, worker="w") == 1
    assert calls == [2]
    assert (await _job(first, other)).cancelled_at == T0


async def test_the_background_runner_runs_due_jobs_and_stops(instances):
    from telesante.jobs.runner import JobRunner

    kind, (first, _) = instances
    ran = asyncio.Event()

    @job_handler(kind)
    async def handler(session, payload):
        ran.set()

    await _schedule(first, kind, T0, {})
    runner = JobRunner(first, poll_seconds=0.5, lease_seconds=60)
    await runner.start()
    try:
        await asyncio.wait_for(ran.wait(), timeout=30)
    finally:
        await runner.stop()
    assert runner._task is None
    async for session in run_in_transaction(first):
        (job,) = (await session.execute(sa.select(ScheduledJob).where(ScheduledJob.kind == kind))).scalars()
    assert job.done_by == runner.worker
