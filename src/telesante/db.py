"""Engine, session factory and the per-request session (one transaction per request).

SQLite (the embedded default) runs in WAL mode with foreign keys on; every transaction starts with
``BEGIN IMMEDIATE`` so that two concurrent requests never both read then fail to write (SQLITE_BUSY on
upgrade). PostgreSQL runs with asyncpg.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.util.concurrency import in_greenlet

try:
    from sqlalchemy.util.concurrency import await_
except ImportError:  # SQLAlchemy 2.0
    from sqlalchemy.util.concurrency import await_only as await_

from telesante.config import Settings
from telesante.kit import context, sqlite_driver
from telesante.kit.models import serialize_json

AfterCommit = Callable[[], Awaitable[Any]]
AfterRollback = Callable[[], Awaitable[Any]]
log = logging.getLogger(__name__)
READ_ONLY = "read_only"  # execution option: on SQLite, begin a deferred (non-locking) transaction


# How long a writer waits for the database: SQLite's busy timeout, and the write queue's.
SQLITE_LOCK_SECONDS = 30
# With checkpoints in the background (``WalCheckpointer``), the writer checkpoints itself only when the write-ahead log
# reaches this many pages (40 MiB of 4 KiB pages): a safety net should the background thread fall behind.
SQLITE_SAFETY_CHECKPOINT_PAGES = 10_000
# PostgreSQL: a pooled connection is pinged before use only when it has sat idle in the pool this long (``_ping_idle``)
PG_PING_IDLE_SECONDS = 5.0
_IDLE_SINCE = "telesante_idle_since"


def make_engine(url: str, *, echo: bool = False, background_checkpoints: bool = False) -> AsyncEngine:
    """The application's engine. ``background_checkpoints`` (SQLite): a ``WalCheckpointer`` copies the write-ahead log
    into the database, so a writer's commit does not (``SQLITE_SAFETY_CHECKPOINT_PAGES``)."""
    if url.startswith("sqlite"):
        extra: dict[str, Any] = {}
        if url.startswith("sqlite+aiosqlite") and (one_hop := sqlite_driver.dbapi()) is not None:
            extra["module"] = one_hop  # one thread hop per statement instead of four (kit/sqlite_driver.py)
        engine = create_async_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_LOCK_SECONDS},
            json_serializer=serialize_json,
            **extra,
        )
        _configure_sqlite(engine, background_checkpoints)
        return engine
    engine = create_async_engine(
        url, echo=echo, pool_size=10, max_overflow=10, json_serializer=serialize_json
    )
    _ping_idle(engine)
    return engine


def _ping_idle(engine: AsyncEngine) -> None:
    """PostgreSQL: a connection taken from the pool is pinged first (a round trip) when it has sat idle there for
    ``PG_PING_IDLE_SECONDS`` or more; a connection that fails the ping (the server restarted, a firewall dropped it) is
    replaced before the request uses it (``DisconnectionError``: the pool opens a new one, SQLAlchemy's "pessimistic"
    disconnect handling). A connection back from a request a moment ago is not: ``pool_pre_ping`` pinged at every
    checkout, and a device batch takes one for its storing and one for each group it judges; a profile put the pings at
    3 % of each server's CPU, though the benchmark moved within its noise (docs/performance.md, remote monitoring,
    eleventh and twelfth sessions). A connection that breaks within those seconds
    fails one request, which SQLAlchemy then discards with every connection of the pool opened before it."""

    # exercised by the PostgreSQL tests (tests/test_db.py)
    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_dbapi_connection, record):
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):
        idle_since = record.info.pop(_IDLE_SINCE, None)
        if idle_since is None or time.monotonic() - idle_since < PG_PING_IDLE_SECONDS:
            return  # just opened, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(
                f"connexion inutilisable après {PG_PING_IDLE_SECONDS:g} s d'inactivité"
            ) from exc


def _configure_sqlite(engine: AsyncEngine, background_checkpoints: bool = False) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # pragma: no cover - exercised by every SQLite test
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_LOCK_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-16384")
        cursor.execute("PRAGMA mmap_size=268435456")
        if background_checkpoints:
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_SAFETY_CHECKPOINT_PAGES}")
        cursor.close()

    gate = WriteQueue(SQLITE_LOCK_SECONDS)
    engine.sync_engine.dialect.write_queue = gate  # type: ignore[attr-defined]  # tests look at it
    dialect = engine.sync_engine.dialect
    for name in ("do_commit", "do_rollback", "do_close", "do_terminate"):
        # A transaction ends (or its connection goes) here: the next writer in the queue may begin. Wrapped on this
        # engine's dialect instance, which the pool also uses when it resets or closes a connection.
        setattr(dialect, name, gate.releasing(getattr(dialect, name)))

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        # Read-only work (health checks) opts out of the write lock with execution_options(read_only=True).
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        gate.enter(conn.connection.dbapi_connection)
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class WriteQueue:
    """The writers of this process, for SQLite's single write lock: interactive requests first, then bulk ones, each
    in arrival order.

    Every transaction that may write begins with ``BEGIN IMMEDIATE`` (it takes the database's write lock). When two
    requests of one process want it, SQLite's own wait is a polling sleep in the waiting connection's thread (1, 2,
    5… then 100 ms between tries): the lock sat free for tens of milliseconds after each commit, and whoever polled
    first won, not whoever came first. Here a writer waits its turn before ``BEGIN IMMEDIATE`` and the turn passes
    the moment a transaction ends (commit, rollback, connection closed).

    A request whose body is large (``BULK_BYTES``: a device gateway's batch, a study upload) is *bulk*: a doctor's
    click, a patient's reading, an alert wait for the transaction in progress, never behind queued bulk work. A bulk
    writer that has waited ``PROMOTE_SECONDS`` takes its place among the others, so that bulk work is never starved.
    SQLite's lock still arbitrates between processes (a second instance, the command line).

    A task that already holds the queue and begins a second transaction on another connection is not made to wait
    for itself: SQLite decides, as before (``busy_timeout``)."""

    BULK_BYTES = 64 * 1024
    PROMOTE_SECONDS = 1.0

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: list[_Waiter] = []
        self._holder: Any = None  # the DBAPI connection whose transaction holds the queue
        self._task: asyncio.Task | None = None
        self._held = False
        self._arrivals = itertools.count()

    def enter(self, dbapi_connection: Any) -> None:
        """Wait for this connection's turn (called from SQLAlchemy's ``begin`` event, in its greenlet)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (synchronous use): SQLite's lock alone
            return
        if not in_greenlet():
            return
        if self._loop is not loop:  # a new event loop (tests): a new queue
            self._loop, self._waiters, self._holder, self._task, self._held = loop, [], None, None, False
        task = asyncio.current_task()
        if task is not None and task is self._task:
            return
        if self._held or self._waiters:
            bulk = context.current().body_bytes >= self.BULK_BYTES
            await_(self._wait(_Waiter(next(self._arrivals), bulk, loop.time(), loop.create_future())))
        self._held = True
        self._holder, self._task = dbapi_connection, task

    async def _wait(self, waiter: _Waiter) -> None:
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout):
                await waiter.turn
        except BaseException as exc:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.turn.done() and not waiter.turn.cancelled():
                self._held = False  # the turn came as this writer gave up: pass it on
                self._next()
            if isinstance(exc, TimeoutError):
                # what SQLite's busy timeout gives, as SQLAlchemy would raise it
                raise OperationalError(
                    "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
                ) from None
            raise

    def leave(self, connection: Any) -> None:
        """A transaction of this connection ended (``connection``: the DBAPI connection or the pool's proxy)."""
        if self._holder is not None and getattr(connection, "dbapi_connection", connection) is self._holder:
            self._holder = self._task = None
            self._held = False
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                self._next()
            elif self._loop is not None and not self._loop.is_closed():
                # a connection closed outside the loop (collected by another thread): hand over on the loop
                self._loop.call_soon_threadsafe(self._next)

    def _next(self) -> None:
        if not self._waiters or self._held:
            return
        assert self._loop is not None
        promoted = self._loop.time() - self.PROMOTE_SECONDS
        chosen = min(self._waiters, key=lambda w: (w.bulk and w.since > promoted, w.arrival))
        self._waiters.remove(chosen)
        self._held = True  # reserved for the chosen writer until it begins
        chosen.turn.set_result(None)

    def releasing(self, method: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def wrapped(dbapi_connection: Any) -> Any:
            try:
                return method(dbapi_connection)
            finally:
                self.leave(dbapi_connection)

        return wrapped


@dataclass(eq=False)
class _Waiter:
    arrival: int
    bulk: bool
    since: float
    turn: asyncio.Future


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class WalCheckpointer:
    """SQLite's write-ahead log copied into the database file by a thread of its own, every ``interval`` seconds.

    By default SQLite checkpoints in the connection whose commit takes the log past 1,000 pages: that commit call
    copies every page written since the last checkpoint into the database file and flushes both files before it
    returns, and until it returns the write queue does not pass the turn on (``WriteQueue``). A device gateway's
    batch writes observations and their indexes, the audit rows and the triage state of hundreds of patients, each
    on pages of its own: one commit in two took 10–26 ms instead of 1–4 ms (docs/performance.md). Here the copy and
    its flushes are made by a passive checkpoint of another connection, which takes no lock that a writer or a
    reader waits for; writers checkpoint themselves only past ``SQLITE_SAFETY_CHECKPOINT_PAGES`` (a safety net, with
    little left to copy by then). A background checkpoint that has pages to copy flushes the log first: a quiet
    server's last commits reach the disk at the next one (``synchronous=NORMAL`` does not flush at commit), unless a
    long read still needs the pages before them. ``TELESANTE_SQLITE_CHECKPOINT_MS=0``: SQLite's own checkpoints."""

    def __init__(self, path: str, interval: float):
        self.path, self.interval = path, interval
        self.runs = 0  # checkpoints made (tests, diagnostics)
        self.last: tuple[int, int, int] | None = None  # (busy, log pages, pages copied) of the last one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sqlite-checkpoint", daemon=True)

    def start(self) -> WalCheckpointer:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        connection: sqlite3.Connection | None = None
        failed = False
        try:
            while not self._stop.wait(self.interval):
                try:
                    if connection is None:  # opened once the application has made the file (never creates it)
                        connection = sqlite3.connect(
                            f"file:{quote(self.path)}?mode=rw",
                            uri=True,
                            isolation_level=None,
                            check_same_thread=False,
                        )
                    row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.last, self.runs, failed = tuple(row), self.runs + 1, False
                except sqlite3.Error as exc:  # file not made yet, disk full…: the writers' safety net remains
                    if not failed:
                        log.warning("background checkpoint of %s failed: %s", self.path, exc)
                    failed = True
        finally:
            if connection is not None:
                connection.close()


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL (None: another database, or SQLite in memory)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return None if path in ("", ":memory:") or path.startswith("file::memory:") else path.split("?", 1)[0]


class Database:
    """Holds the engine and session factory of a running application (and, on SQLite, its ``WalCheckpointer``)."""

    def __init__(self, settings: Settings):
        self.url = settings.effective_database_url
        if self.url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        path = sqlite_file(self.url)
        background = path is not None and settings.sqlite_checkpoint_ms > 0
        self.engine = make_engine(self.url, background_checkpoints=background)
        self.sessionmaker = make_sessionmaker(self.engine)
        self.checkpointer = (
            WalCheckpointer(path, settings.sqlite_checkpoint_ms / 1000) if background and path else None
        )

    def start(self) -> None:
        """The database's background work, started with the application (its lifespan): on SQLite, the log's
        checkpoints (``WalCheckpointer``). A command that opens the database without starting it leaves them to the
        writers' safety net and to the last connection's close."""
        if self.checkpointer is not None and not self.checkpointer.alive:
            self.checkpointer.start()

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
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


async def commit_part(session: AsyncSession) -> None:
    """Commit what this request did so far and run its after-commit callbacks (its events); the request goes on in a
    new transaction. Only for work made of independent parts (a FHIR batch stored in parts on SQLite): each part is
    kept, and announced, even if a later one fails."""
    await session.commit()
    for callback in session.info.pop("after_commit", []):
        await callback()


transaction = asynccontextmanager(run_in_transaction)
"""``async with transaction(sessionmaker) as session:`` — a block raising inside rolls back before the exception
leaves the block (with ``async for`` over ``run_in_transaction``, the rollback would wait for the generator to be
collected)."""


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
