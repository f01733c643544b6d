"""SQLite's writers of one process queue in arrival order (telesante.db.WriteQueue), and the queue is always
released: commit, rollback, a failing block, a connection returned to the pool unfinished."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from telesante import db
from telesante.db import make_engine, make_sessionmaker, transaction
from telesante.kit import context


@pytest.fixture
async def sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'queue.sqlite3'}")
    async with engine.begin() as connection:
        await connection.execute(sa.text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        await connection.execute(sa.text("INSERT INTO counter VALUES (0)"))
        await connection.execute(sa.text("CREATE TABLE log (who TEXT NOT NULL)"))
    yield engine
    await engine.dispose()


def _queue(engine) -> db.WriteQueue:
    return engine.sync_engine.dialect.write_queue


async def test_writers_begin_in_arrival_order_and_each_sees_the_last_commit(sqlite_engine):
    sessions = make_sessionmaker(sqlite_engine)
    first_inside = asyncio.Event()
    release_first = asyncio.Event()

    async def writer(name: str) -> None:
        async with transaction(sessions) as session:
            # read then write in one transaction: without a write lock from the start this loses updates
            n = (await session.execute(sa.text("SELECT n FROM counter"))).scalar_one()
            await session.execute(sa.text("INSERT INTO log VALUES (:who)"), {"who": name})
            if name == "w0":
                first_inside.set()
                await release_first.wait()
            await session.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})

    first = asyncio.create_task(writer("w0"))
    await first_inside.wait()
    others = []
    for i in range(1, 8):
        others.append(asyncio.create_task(writer(f"w{i}")))
        await asyncio.sleep(0.01)  # each queued before the next one arrives
    release_first.set()
    await asyncio.gather(first, *others)

    async with sqlite_engine.connect() as connection:
        order = [row[0] for row in await connection.execute(sa.text("SELECT who FROM log ORDER BY rowid"))]
        count = (await connection.execute(sa.text("SELECT n FROM counter"))).scalar_one()
    assert order == [f"w{i}" for i in range(8)]
    assert count == 8
    assert _queue(sqlite_engine)._holder is None


async def test_the_queue_is_released_by_rollback_failure_and_an_unfinished_connection(sqlite_engine):
    sessions = make_sessionmaker(sqlite_engine)
    queue = _queue(sqlite_engine)

    with pytest.raises(RuntimeError):
        async with transaction(sessions) as session:
            await session.execute(sa.text("INSERT INTO log VALUES ('failed')"))
            assert queue._holder is not None
            raise RuntimeError("boom")
    assert queue._holder is None

    async with sessions() as session:  # begun, never committed: the pool rolls it back when it is returned
        await session.execute(sa.text("INSERT INTO log VALUES ('abandoned')"))
        assert queue._holder is not None
    assert queue._holder is None

    async with sessions() as session:
        await session.execute(sa.text("INSERT INTO log VALUES ('rolled back')"))
        await session.rollback()
        assert queue._holder is None

    async with transaction(sessions) as session:  # and the next writer gets in
        await session.execute(sa.text("INSERT INTO log VALUES ('kept')"))
    async with sqlite_engine.connect() as connection:
        rows = [row[0] for row in await connection.execute(sa.text("SELECT who FROM log"))]
    assert rows == ["kept"]


@contextlib.asynccontextmanager
async def _holding(sessions, name: str):
    """A writer that logs ``name`` and keeps its transaction (and the write lock) open for the block."""
    holding, done = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with transaction(sessions) as session:
            await session.execute(sa.text("INSERT INTO log VALUES (:who)"), {"who": name})
            holding.set()
            await done.wait()

    task = asyncio.create_task(holder())
    await holding.wait()
    try:
        yield
    finally:
        done.set()
        await task


async def test_read_only_work_does_not_queue(sqlite_engine):
    async with _holding(make_sessionmaker(sqlite_engine), "w"), sqlite_engine.connect() as connection:
        connection = await connection.execution_options(**{db.READ_ONLY: True})
        assert (await connection.execute(sa.text("SELECT count(*) FROM log"))).scalar_one() == 0


async def test_a_writer_waits_no_longer_than_the_lock_timeout(sqlite_engine):
    sessions = make_sessionmaker(sqlite_engine)
    queue = _queue(sqlite_engine)
    queue.timeout = 0.3
    async with _holding(sessions, "holder"):
        with pytest.raises(OperationalError) as refused:
            async with transaction(sessions) as session:
                await session.execute(sa.text("INSERT INTO log VALUES ('late')"))
    assert isinstance(refused.value.orig, sqlite3.OperationalError)
    assert "locked" in str(refused.value.orig)
    async with transaction(sessions) as session:
        await session.execute(sa.text("INSERT INTO log VALUES ('after')"))
    async with sqlite_engine.connect() as connection:
        rows = [row[0] for row in await connection.execute(sa.text("SELECT who FROM log ORDER BY rowid"))]
    assert rows == ["holder", "after"]


async def test_a_task_opening_a_second_transaction_is_not_made_to_wait_for_itself(tmp_path, monkeypatch):
    """SQLite decides between two connections of one task, as before the queue: busy, not a deadlock."""
    monkeypatch.setattr(db, "SQLITE_LOCK_SECONDS", 1)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'self.sqlite3'}")
    sessions = make_sessionmaker(engine)
    try:
        async with transaction(sessions) as outer:
            await outer.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        async with transaction(sessions) as outer:
            await outer.execute(sa.text("INSERT INTO t VALUES (1)"))
            with pytest.raises(OperationalError, match="locked"):
                async with asyncio.timeout(20):
                    async with transaction(sessions) as inner:
                        await inner.execute(sa.text("INSERT INTO t VALUES (2)"))
        async with engine.connect() as connection:
            assert (await connection.execute(sa.text("SELECT x FROM t"))).scalars().all() == [1]
    finally:
        await engine.dispose()


async def _ordered_writers(engine, arrivals: list[tuple[str, int, float]]) -> list[str]:
    """A holder keeps the write lock while writers arrive (name, body size, delay after the previous one); the
    order in which their transactions ran."""
    sessions = make_sessionmaker(engine)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def writer(name: str, body_bytes: int) -> None:
        context.bind(context.RequestContext(channel="fhir", body_bytes=body_bytes))
        async with transaction(sessions) as session:
            await session.execute(sa.text("INSERT INTO log VALUES (:who)"), {"who": name})
            if name == "holder":
                holding.set()
                await release.wait()

    tasks = [asyncio.create_task(writer("holder", 0))]
    await holding.wait()
    for name, size, delay in arrivals:
        await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(writer(name, size)))
        await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(*tasks)
    async with engine.connect() as connection:
        return [row[0] for row in await connection.execute(sa.text("SELECT who FROM log ORDER BY rowid"))]


async def test_interactive_writers_go_before_queued_bulk_work(sqlite_engine):
    bulk = db.WriteQueue.BULK_BYTES
    order = await _ordered_writers(
        sqlite_engine,
        [
            ("batch-1", 4 * bulk, 0),
            ("batch-2", bulk, 0),
            ("click", 900, 0),
            ("alert", 0, 0),
            ("batch-3", bulk, 0),
        ],
    )
    assert order == ["holder", "click", "alert", "batch-1", "batch-2", "batch-3"]


async def test_bulk_work_that_has_waited_long_enough_is_not_passed_over(sqlite_engine):
    _queue(sqlite_engine).PROMOTE_SECONDS = 0.2
    bulk = db.WriteQueue.BULK_BYTES
    order = await _ordered_writers(sqlite_engine, [("batch", bulk, 0), ("click", 10, 0.4)])
    assert order == ["holder", "batch", "click"]


def test_the_request_context_carries_the_announced_body_size():
    from telesante.web.middleware import _content_length

    assert _content_length({"content-length": "70000"}) == 70000
    assert _content_length({}) == 0
    for junk in ("-1", "12abc", "9" * 40, "", "²", "1²"):
        assert _content_length({"content-length": junk}) == 0


async def test_a_turn_given_to_a_writer_that_gives_up_passes_to_the_next():
    """A writer cancelled (client gone) in the instant its turn came must not keep the turn: the next one gets it."""
    queue = db.WriteQueue(timeout=5)
    loop = asyncio.get_running_loop()
    holder = object()
    queue._loop, queue._held, queue._holder = loop, True, holder
    first = db._Waiter(0, False, loop.time(), loop.create_future())
    second = db._Waiter(1, False, loop.time(), loop.create_future())
    waiting_first = asyncio.create_task(queue._wait(first))
    waiting_second = asyncio.create_task(queue._wait(second))
    await asyncio.sleep(0)
    assert queue._waiters == [first, second]
    queue.leave(holder)  # the turn goes to the first writer...
    assert first.turn.done() and queue._held
    waiting_first.cancel()  # ...which gives up before it could begin
    with pytest.raises(asyncio.CancelledError):
        await waiting_first
    await waiting_second
    assert second.turn.done() and queue._held and queue._waiters == []


async def test_a_connection_closed_on_another_thread_hands_the_turn_over_on_the_loop():
    """A connection whose transaction ends outside the event loop (the pool's reset or the garbage collector, in
    another thread) still passes the turn: the hand-over is scheduled on the loop, never run from the thread."""
    queue = db.WriteQueue(timeout=5)
    loop = asyncio.get_running_loop()
    holder = object()
    queue._loop, queue._held, queue._holder = loop, True, holder
    waiter = db._Waiter(0, False, loop.time(), loop.create_future())
    waiting = asyncio.create_task(queue._wait(waiter))
    await asyncio.sleep(0)
    threads: list[bool] = []
    original = queue._next

    def on_the_loop() -> None:
        threads.append(asyncio.get_running_loop() is loop)
        original()

    queue._next = on_the_loop  # type: ignore[method-assign]
    await asyncio.to_thread(queue.leave, holder)  # from a worker thread, with no running loop there
    await asyncio.wait_for(waiting, 2)
    assert waiter.turn.done() and queue._held and queue._waiters == []
    assert threads == [True]  # handed over once, by the loop itself
    # a holder unknown to the queue (another engine's connection) changes nothing
    await asyncio.to_thread(queue.leave, object())
    await asyncio.sleep(0)
    assert queue._held and threads == [True]


# --- one thread hop per SQLite statement (kit/sqlite_driver.py) ------------------------------------------------


async def _exercise(engine) -> tuple[list, int]:
    """The same work on an engine: what it answers, and how many calls it made on aiosqlite's thread."""
    answers: list = []
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL UNIQUE, s TEXT)"
            )
        )
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer),
        sa.Column("s", sa.Text),
    )
    async with engine.begin() as connection:
        inserted = await connection.execute(sa.insert(table).values(n=1, s="un"))
        answers.append(("lastrowid", inserted.inserted_primary_key[0]))
        many = await connection.execute(sa.insert(table), [{"n": n, "s": str(n)} for n in range(2, 7)])
        answers.append(("executemany", many.rowcount))
        updated = await connection.execute(sa.update(table).where(table.c.n > 3).values(s="grand"))
        answers.append(("rowcount", updated.rowcount))
        returned = await connection.execute(
            sa.update(table).where(table.c.n == 2).values(s="deux").returning(table.c.id, table.c.s)
        )
        answers.append(("returning", [tuple(r) for r in returned]))
        rows = await connection.execute(sa.select(table.c.n, table.c.s).order_by(table.c.n))
        answers.append(("rows", [tuple(r) for r in rows], rows.keys()))
        answers.append(("nothing", (await connection.execute(sa.select(table).where(table.c.n > 99))).all()))
        some = await connection.execute(sa.select(table.c.n).order_by(table.c.n))
        answers.append(("fetchmany", some.fetchmany(2), some.fetchmany(), some.fetchall()))
    with pytest.raises(sa.exc.IntegrityError) as refused:
        async with engine.begin() as connection:
            await connection.execute(sa.insert(table).values(n=1, s="doublon"))
    answers.append(("error", type(refused.value.orig).__name__, "UNIQUE" in str(refused.value.orig)))
    async with engine.connect() as connection:  # a server-side cursor (stream) keeps SQLAlchemy's own class
        streamed = await connection.stream(sa.select(table.c.n).order_by(table.c.n))
        answers.append(("stream", [r[0] async for r in streamed]))
    return answers


async def test_each_sqlite_statement_is_one_call_on_the_connection_thread_with_the_same_answers(
    tmp_path, monkeypatch
):
    import aiosqlite
    from sqlalchemy.ext.asyncio import create_async_engine

    from telesante.kit import sqlite_driver

    # the installed SQLAlchemy and aiosqlite have what the one-hop cursor relies on (an upgrade that removes it
    # fails here rather than making every request slower in silence), and make_engine uses it
    assert sqlite_driver.available()
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'hop.sqlite3'}")
    stock = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.sqlite3'}")
    assert isinstance(engine.sync_engine.dialect.dbapi, sqlite_driver.OneHopDBAPI)
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    try:
        # same answers as SQLAlchemy's own aiosqlite adapter, statement for statement
        assert await _exercise(engine) == await _exercise(stock)
        async with engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))  # the connection (and its pragmas) is ready
            calls.clear()
            rows = (
                await connection.execute(sa.text("SELECT n FROM t WHERE n > :x ORDER BY n"), {"x": 4})
            ).all()
            assert [r[0] for r in rows] == [5, 6]
            assert calls == ["_run"]  # cursor, execute, fetch and close in one call
        calls.clear()
        async with stock.connect() as connection:
            await connection.execute(sa.text("SELECT n FROM t WHERE n > :x"), {"x": 4})
        assert len(calls) >= 3  # the stock adapter: a call each to open, execute, fetch (and close)
    finally:
        await engine.dispose()
        await stock.dispose()


def test_json_columns_store_json_text_as_it_is_and_serialize_everything_else():
    """``JSONText`` (the DICOM JSON the parsing helper made) is stored unchanged; any other value, including a
    plain string, is serialized as before."""
    from telesante.kit.models import JSONText, serialize_json

    assert serialize_json(JSONText('{"00100010":{"vr":"PN"}}')) == '{"00100010":{"vr":"PN"}}'
    assert serialize_json({"a": [1, "é"]}) == json.dumps({"a": [1, "é"]})
    assert serialize_json('{"not": "json text"}') == json.dumps('{"not": "json text"}')


# --- SQLite's write-ahead log checkpointed in the background (db.WalCheckpointer) ---------------------------------


def _file_alone_rows(tmp_path, database_file) -> int:
    """Rows of ``log`` in a copy of the database file without its write-ahead log: what a checkpoint has copied in."""
    alone = tmp_path / "alone.sqlite3"
    alone.write_bytes(database_file.read_bytes())
    connection = sqlite3.connect(alone)
    try:
        if connection.execute("SELECT count(*) FROM sqlite_master WHERE name = 'log'").fetchone()[0] == 0:
            return 0  # not even the table: still in the log only
        return connection.execute("SELECT count(*) FROM log").fetchone()[0]
    finally:
        connection.close()


async def _commit_rows(database: db.Database, count: int) -> None:
    for number in range(count):
        async with transaction(database.sessionmaker) as session:
            await session.execute(sa.text("INSERT INTO log VALUES (:who)"), {"who": f"w{number}" * 500})


@pytest.mark.parametrize("interval_ms", [20, 0])
async def test_the_log_is_copied_into_the_database_file_in_the_background(tmp_path, interval_ms):
    """With a background checkpointer, what is committed reaches the database file within a few intervals while the
    writers only keep a far safety net; with ``TELESANTE_SQLITE_CHECKPOINT_MS=0`` SQLite's own checkpoints (every
    1,000 pages, in the writer) leave a few commits in the log only."""
    from telesante.config import Settings

    settings = Settings(
        data_dir=tmp_path,
        database_url=None,
        secret_key="test-secret-key-0123456789",
        sqlite_checkpoint_ms=interval_ms,
    )
    database = db.Database(settings)
    database.start()
    try:
        async with database.engine.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE log (who TEXT NOT NULL)"))
            pages = (await connection.execute(sa.text("PRAGMA wal_autocheckpoint"))).scalar_one()
        await _commit_rows(database, 40)
        database_file = settings.data_dir / "telesante.sqlite3"
        if interval_ms:
            assert pages == db.SQLITE_SAFETY_CHECKPOINT_PAGES
            for _ in range(250):  # up to 5 s
                if _file_alone_rows(tmp_path, database_file) == 40:
                    break
                await asyncio.sleep(0.02)
            assert _file_alone_rows(tmp_path, database_file) == 40
            assert database.checkpointer is not None and database.checkpointer.runs > 0
            busy, logged, copied = database.checkpointer.last
            assert (busy, copied) == (0, logged)
        else:
            assert pages == 1000  # SQLite's default: the writer checkpoints
            assert database.checkpointer is None
            await asyncio.sleep(0.2)
            assert _file_alone_rows(tmp_path, database_file) < 40
    finally:
        checkpointer = database.checkpointer
        await database.dispose()
    assert checkpointer is None or not checkpointer.alive  # stopped with the database


def test_only_a_sqlite_file_is_checkpointed_in_the_background(tmp_path):
    assert db.sqlite_file(f"sqlite+aiosqlite:///{tmp_path}/t.sqlite3") == f"{tmp_path}/t.sqlite3"
    assert db.sqlite_file("sqlite+aiosqlite:///relative.sqlite3?timeout=5") == "relative.sqlite3"
    assert db.sqlite_file("sqlite+aiosqlite:///:memory:") is None
    assert db.sqlite_file("sqlite+aiosqlite://") is None
    assert db.sqlite_file("postgresql+asyncpg://postgres@127.0.0.1/test") is None


async def test_a_checkpointer_whose_file_does_not_exist_yet_waits_for_it_and_never_creates_it(tmp_path):
    path = tmp_path / "later.sqlite3"
    checkpointer = db.WalCheckpointer(str(path), 0.01).start()
    try:
        await asyncio.sleep(0.1)
        assert not path.exists() and checkpointer.runs == 0 and checkpointer.alive
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (n INTEGER)")
        connection.commit()
        for _ in range(250):
            if checkpointer.runs:
                break
            await asyncio.sleep(0.02)
        assert checkpointer.runs > 0
        connection.close()
    finally:
        checkpointer.stop()
    assert not checkpointer.alive


async def test_the_application_checkpoints_in_the_background_while_it_runs(tmp_path):
    from telesante.config import Settings
    from telesante.main import create_app

    settings = Settings(
        data_dir=tmp_path,
        database_url=None,
        secret_key="test-secret-key-0123456789",
        demo=False,
        dicom_port=0,
        jobs_enabled=False,
        gc_freeze=False,
    )
    app = create_app(settings)
    checkpointer = app.state.database.checkpointer
    assert (
        checkpointer is not None and not checkpointer.alive
    )  # made with the application, started by its lifespan
    async with app.router.lifespan_context(app):
        assert checkpointer.alive
    assert not checkpointer.alive


async def test_postgresql_pings_a_pooled_connection_only_after_it_sat_idle_and_replaces_a_broken_one(
    engine, monkeypatch
):
    """A connection back from a request a moment ago is used without a ping (a round trip per checkout); one idle
    for ``PG_PING_IDLE_SECONDS`` is pinged first, and replaced if the server dropped it meanwhile."""
    if engine.dialect.name != "postgresql":
        assert not engine.sync_engine.pool._pre_ping  # SQLite: a file, no connection to lose
        return
    own = make_engine(engine.url.render_as_string(hide_password=False))
    pings = []
    ping = own.dialect.do_ping
    monkeypatch.setattr(
        own.dialect, "do_ping", lambda connection: pings.append(connection) or ping(connection)
    )
    backend = sa.text("SELECT pg_backend_pid()")

    async def backend_pid() -> int:
        async with own.connect() as connection:
            return await connection.scalar(backend)

    try:
        first = await backend_pid()
        assert await backend_pid() == first and pings == []  # the pool's connection again, used a moment ago
        monkeypatch.setattr(db, "PG_PING_IDLE_SECONDS", 0.0)
        assert await backend_pid() == first and len(pings) == 1  # idle long enough: pinged, and still good

        async with engine.connect() as admin:  # the server drops the pooled connection while it is idle
            assert await admin.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": first}) is True
        replaced = await backend_pid()
        assert replaced != first and len(pings) == 2  # the ping failed: a new connection, the request unaware

        monkeypatch.setattr(db, "PG_PING_IDLE_SECONDS", 3600.0)
        async with engine.connect() as admin:
            await admin.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": replaced})
        with pytest.raises(sa.exc.DBAPIError) as lost:  # not idle long enough to be pinged: the request fails
            await backend_pid()
        assert lost.value.connection_invalidated
        assert await backend_pid() not in (first, replaced)  # and the next one gets a new connection
    finally:
        await own.dispose()
