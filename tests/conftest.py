"""Test harness: every test runs on SQLite *and* PostgreSQL, schema built by ``alembic upgrade head``,
inside a transaction rolled back at the end. Requests go through the real app and the real services."""

from __future__ import annotations

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

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TELESANTE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
ENGINES = [
    e.strip() for e in os.environ.get("TELESANTE_TEST_ENGINES", "sqlite,postgresql").split(",") if e.strip()
]


def _async_url(url: str) -> str:
    return Settings(database_url=url).effective_database_url


def _alembic_upgrade(sync_connection) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")


@pytest.fixture(scope="session", params=ENGINES)
async def engine(request, tmp_path_factory) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.sqlite3"
        eng = make_engine(f"sqlite+aiosqlite:///{path}")
    else:
        eng = make_engine(_async_url(PG_URL))
        async with eng.begin() as conn:  # start from an empty schema
            await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
    async with eng.begin() as conn:
        await conn.run_sync(_alembic_upgrade)
    yield eng
    await eng.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction; commits made by the code under test are savepoints."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        db_session = AsyncSession(
            bind=connection, expire_on_commit=False, autoflush=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield db_session
        finally:
            await db_session.close()
            await transaction.rollback()
    clock.set_clock(None)


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
