"""`telesante jobs run-due`: the operator's way to run the due timers once."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import timedelta

from telesante.db import make_engine, make_sessionmaker, run_in_transaction
from telesante.jobs.service import job_handler, schedule_job
from telesante.kit import clock
from tests.test_cli import cli, data_dir, migrated  # noqa: F401 - fixtures


def test_jobs_run_due_runs_what_is_due_once(cli, migrated, data_dir):  # noqa: F811
    kind = f"test.cli.{uuid.uuid4().hex[:8]}"
    seen: list[str] = []

    @job_handler(kind)
    async def handler(session, payload):
        seen.append(payload["what"])

    async def schedule() -> None:
        engine = make_engine(f"sqlite+aiosqlite:///{data_dir / 'telesante.sqlite3'}")
        try:
            async for session in run_in_transaction(make_sessionmaker(engine)):
                await schedule_job(session, kind, clock.now() - timedelta(seconds=1), {"what": "due"})
                await schedule_job(session, kind, clock.now() + timedelta(hours=1), {"what": "later"})
        finally:
            await engine.dispose()

    asyncio.run(schedule())
    result = cli("jobs", "run-due")
    assert result.exit_code == 0, result.output
    assert "1 minuterie(s) exécutée(s)." in result.output
    assert seen == ["due"]
    assert cli("jobs", "run-due").output.strip().endswith("0 minuterie(s) exécutée(s).")
    with sqlite3.connect(data_dir / "telesante.sqlite3") as db:
        rows = db.execute(
            "SELECT done_by IS NOT NULL FROM scheduled_jobs WHERE kind = ? ORDER BY run_at", (kind,)
        )
        assert [done for (done,) in rows] == [1, 0]
