"""The background loop of each instance: every ``TELESANTE_JOBS_POLL_SECONDS`` it runs the due jobs. Several
instances may run it against the same database (claims make each job run once)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telesante.config import get_settings
from telesante.jobs.service import run_due_jobs

log = logging.getLogger(__name__)

# Modules whose import registers job handlers (each domain's tasks.py).
TASK_MODULES = (
    "telesante.requests.tasks",
    "telesante.oncall.tasks",
    "telesante.scheduling.tasks",
    "telesante.monitoring.tasks",
)


def load_handlers() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class JobRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        poll_seconds: float,
        *,
        lease_seconds: int | None = None,
    ):
        self.sessionmaker = sessionmaker
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=lease_seconds or get_settings().jobs_lease_seconds)
        self.worker = worker_name()
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        load_handlers()
        self._stop.clear()
        self._task = asyncio.create_task(self._loop(), name="telesante-jobs")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the current round finish (its jobs commit) for up to ``grace_seconds``, then cancel it; a job cut
        short stays claimed and another instance takes it over after the lease."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=grace_seconds)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None

    async def run_once(self) -> int:
        return await run_due_jobs(self.sessionmaker, worker=self.worker, lease=self.lease)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
            except Exception:  # the database may be briefly unavailable: keep polling
                log.exception("job runner: polling failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.poll_seconds)
