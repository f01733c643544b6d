"""Test harness: every test runs on SQLite *and* PostgreSQL, schema built by ``alembic upgrade head``,
inside a transaction rolled back at the end. Requests go through the real app and the real services."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from telesante.config import Settings
from telesante.db import make_engine
from telesante.kit import clock
from telesante.main import create_app
from tests.factories import PRODUCTION_PASSWORD_HASHER  # noqa: F401 - and argon2 at its lowest cost from here on

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TELESANTE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Under pytest-xdist (``make test`` runs one worker per CPU) each worker has a PostgreSQL database of its own,
# ``<database>_<worker>`` (created on first use), since every session drops and rebuilds its schema.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
ENGINES = [
    e.strip() for e in os.environ.get("TELESANTE_TEST_ENGINES", "sqlite,postgresql").split(",") if e.strip()
]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    """pytest-xdist runs one test per test id: of tests sharing an id (schemathesis' cases, one per operation, do),
    all but one would go unrun, silently. Refused instead; ``make test`` runs those apart, without workers."""
    seen: set[str] = set()
    shared = sorted({nodeid for nodeid in ids if nodeid in seen or seen.add(nodeid)})
    if shared:
        pytest.exit(
            f"Ces tests partagent un identifiant et ne peuvent pas tourner sous pytest-xdist (-n) : {shared}. "
            "Lancez-les sans -n, comme le fait make test.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )


def _async_url(url: str) -> str:
    return Settings(database_url=url).effective_database_url


async def _worker_database_url(url: str) -> str:
    """The URL of this worker's own database (created if missing), or ``url`` itself outside pytest-xdist."""
    base = sa.engine.make_url(url)
    if not WORKER:
        return url
    name = f"{base.database}_{WORKER}"
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if not exists:
                await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _alembic_upgrade(sync_connection) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")


@pytest.fixture(autouse=True)
def fresh_part_sizer(monkeypatch) -> None:
    """What ``fhir.monitoring.PARTS`` learned of an entry's cost lives as long as the process: each test starts with a
    sizer that knows nothing, so that how a batch is cut into parts never depends on the tests run before it."""
    from telesante.fhir import monitoring as fhir_monitoring

    monkeypatch.setattr(fhir_monitoring, "PARTS", fhir_monitoring.PartSizer())


@pytest.fixture(scope="session", params=ENGINES)
async def engine(request, tmp_path_factory) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        eng = make_engine(f"sqlite+aiosqlite:///{path}")
    else:
        eng = make_engine(await _worker_database_url(_async_url(PG_URL)))
        async with eng.begin() as conn:  # start from an empty schema
            await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
    async with eng.begin() as conn:
        await conn.run_sync(_alembic_upgrade)
    yield eng
    await eng.dispose()


def _length_limits() -> list[tuple[sa.Table, list[tuple[str, int]]]]:
    """Each table's string columns with a declared length (VARCHAR(n))."""
    import telesante.models  # noqa: F401 - every model on the metadata
    from telesante.kit.models import Base

    limits = []
    for table in Base.metadata.sorted_tables:
        columns = [
            (column.name, column.type.length)
            for column in table.columns
            if isinstance(column.type, sa.String) and column.type.length
        ]
        if columns:
            limits.append((table, columns))
    return limits


_LENGTH_LIMITS: list[tuple[sa.Table, list[tuple[str, int]]]] = []


async def _values_longer_than_their_columns(connection) -> list[str]:
    """SQLite stores a string of any length in a VARCHAR(n) column; PostgreSQL refuses it (the request fails). After
    each test on SQLite, the rows it left are checked against the declared lengths, so that such a value is caught on
    both engines, not only when the PostgreSQL run happens to write it (a questionnaire's 29-character code in a
    20-character column was, 2026-12-07)."""
    if not _LENGTH_LIMITS:
        _LENGTH_LIMITS.extend(_length_limits())
    found = []
    for table, columns in _LENGTH_LIMITS:
        longest = (
            await connection.execute(
                sa.select(
                    *(sa.func.coalesce(sa.func.max(sa.func.length(table.c[name])), 0) for name, _ in columns)
                )
            )
        ).one()
        found.extend(
            f"{table.name}.{name}: {length} > {limit}"
            for (name, limit), length in zip(columns, longest, strict=True)
            if length > limit
        )
    return found


@pytest.fixture
async def session(engine: AsyncEngine, request) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction; commits made by the code under test are savepoints. On SQLite, what the
    test leaves in it is checked against the columns' declared lengths (``_values_longer_than_their_columns``)."""
    check_lengths = request.node.get_closest_marker("beyond_column_lengths") is None
    async with engine.connect() as connection:
        transaction = await connection.begin()
        db_session = AsyncSession(
            bind=connection, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
        )
        too_long: list[str] = []
        try:
            yield db_session
        finally:
            if check_lengths and connection.dialect.name == "sqlite" and transaction.is_active:
                # before the session closes: what it wrote and did not commit is still there to see
                with contextlib.suppress(sa.exc.SQLAlchemyError):  # a test that left the connection failed
                    too_long = await _values_longer_than_their_columns(connection)
            await db_session.close()
            await transaction.rollback()
    clock.set_clock(None)
    assert not too_long, f"values longer than their column (PostgreSQL would refuse them): {too_long}"


class _SharedSessionFactory:
    """Stands in for the app's sessionmaker so that requests use the test's session."""

    def __init__(self, db_session: AsyncSession):
        self.db_session = db_session

    def __call__(self):
        return self

    async def __aenter__(self) -> AsyncSession:
        # What the test set up counts as committed before the request (releases the current savepoint), so
        # a request that rolls back undoes only its own work, as it would with its own session.
        await self.db_session.commit()
        return self.db_session

    async def __aexit__(self, *exc) -> bool:
        return False


class _TestDatabase:
    def __init__(self, db_session: AsyncSession, engine: AsyncEngine):
        self.sessionmaker = _SharedSessionFactory(db_session)
        self.engine = engine
        self.url = str(engine.url)

    async def dispose(self) -> None:
        return None


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path, secret_key="test-secret-key-not-for-production", demo=False, dicom_port=0
    )


@pytest.fixture
def app(session, engine, settings):
    return create_app(settings, database=_TestDatabase(session, engine))


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        yield http


@pytest.fixture
def data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="telesante-test-"))
