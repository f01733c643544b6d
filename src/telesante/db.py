"""Engine, session factory and the per-request session (one transaction per request).

SQLite (the embedded default) runs in WAL mode with foreign keys on; every transaction starts with
``BEGIN IMMEDIATE`` so that two concurrent requests never both read then fail to write (SQLITE_BUSY on
upgrade). PostgreSQL runs with asyncpg.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from telesante.config import Settings

AfterCommit = Callable[[], Awaitable[Any]]
AfterRollback = Callable[[], Awaitable[Any]]
log = logging.getLogger(__name__)
READ_ONLY = "read_only"  # execution option: on SQLite, begin a deferred (non-locking) transaction


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every SQLite test
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        # Read-only work (health checks) opts out of the write lock with execution_options(read_only=True).
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class Database:
    """Holds the engine and session factory of a running application."""

    def __init__(self, settings: Settings):
        self.url = settings.effective_database_url
        if self.url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(self.url)
        self.sessionmaker = make_sessionmaker(self.engine)

    async def dispose(self) -> None:
        await self.engine.dispose()


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run ``callback`` only once the request transaction has committed (events, mails, jobs)."""
    session.info.setdefault("after_commit", []).append(callback)


def after_rollback(session: AsyncSession, callback: AfterRollback) -> None:
    """Run ``callback`` if the transaction rolls back, to undo what it did outside the database (a blob written to
    the store). Forgotten when the transaction commits. Run by ``get_session``, ``run_in_transaction`` and
    ``discard_changes``; a failing callback is logged, never raised."""
    session.info.setdefault("after_rollback", []).append(callback)


async def run_after_rollback(session: AsyncSession) -> None:
    """Run (once) the rollback hooks of a transaction that has just been rolled back."""
    for callback in session.info.pop("after_rollback", []):
        try:
            await callback()
        except Exception:
            log.exception("after-rollback hook failed")


@event.listens_for(Session, "after_commit")
def _forget_rollback_hooks(session: Session) -> None:
    # Whatever committed stays: its rollback hooks must not run if a later transaction of the session rolls back.
    # A savepoint's commit (begin_nested) is not the end of the transaction: its hooks stay.
    if not session.in_nested_transaction():
        session.info.pop("after_rollback", None)


async def discard_changes(session: AsyncSession) -> None:
    """Roll back the work done so far in this request (a failed action) and forget what it meant to announce
    after commit; rollback hooks (e.g. deleting blobs written by that work) run. The session stays usable: what the
    request does next is committed as usual."""
    await session.rollback()
    session.info.pop("after_commit", None)
    await run_after_rollback(session)


async def run_in_transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Yield a session; commit if the block succeeds, roll back otherwise, then run after-commit hooks."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            session.info.pop("after_commit", None)
            await run_after_rollback(session)
            raise
        for callback in session.info.pop("after_commit", []):
            await callback()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one transaction per request.

    Commits when the handler succeeds (before the response is sent), rolls back when it raises or when a page
    re-rendered a form with errors (``request.state.rollback_only``). After-commit hooks run last.
    """
    database: Database = request.app.state.database
    async with database.sessionmaker() as session:
        try:
            yield session
            if getattr(request.state, "rollback_only", False):
                await session.rollback()
                session.info.pop("after_commit", None)
                await run_after_rollback(session)
            else:
                await session.commit()
        except BaseException:
            await session.rollback()
            session.info.pop("after_commit", None)
            await run_after_rollback(session)
            raise
        for callback in session.info.pop("after_commit", []):
            await callback()
