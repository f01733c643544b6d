"""Migrations that move data: run them on rows written under the previous revision, on both engines.

SQLite runs on a fresh file; PostgreSQL in a throw-away schema inside a transaction that is rolled back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telesante.db import make_engine
from telesante.directory.models import Organisation
from telesante.kit import clock
from telesante.kit.models import UTCDateTime
from telesante.patients.models import Patient
from tests.conftest import ROOT

BEFORE_SORT_KEYS = "aa03906bc2c7"
SORT_KEYS = "5b1e7c2d9f40"

care = sa.table(
    "care_relationships",
    sa.column("id", sa.Uuid),
    sa.column("patient_id", sa.Uuid),
    sa.column("organisation_id", sa.Uuid),
    sa.column("kind", sa.String),
    sa.column("source_ref", sa.String),
    sa.column("created_at", UTCDateTime()),
    sa.column("search_birth_family", sa.String),
    sa.column("search_used_family", sa.String),
)


def _migrate(revision: str, down: bool = False) -> Callable[[Connection], None]:
    def run(sync_connection: Connection) -> None:
        config = Config(str(ROOT / "alembic.ini"))
        config.attributes["connection"] = sync_connection
        (command.downgrade if down else command.upgrade)(config, revision)

    return run


@pytest.fixture
async def empty_database(engine: AsyncEngine, tmp_path) -> AsyncIterator[AsyncConnection]:
    if engine.dialect.name == "sqlite":
        fresh = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'migrations.sqlite3'}")
        async with fresh.connect() as connection:
            yield connection
        await fresh.dispose()
        return
    async with engine.connect() as connection:
        transaction = await connection.begin()
        await connection.execute(sa.text("CREATE SCHEMA migration_test"))
        await connection.execute(sa.text("SET LOCAL search_path TO migration_test"))
        try:
            yield connection
        finally:
            await transaction.rollback()


def _patient(family: str, used: str, given: str, born: date) -> dict:
    return {
        "id": uuid.uuid4(),
        "birth_family_name": family,
        "birth_given_names": given,
        "first_given_name": given.split(" ")[0],
        "birth_date": born,
        "sex": "F",
        "birth_place_insee": "35238",
        "used_family_name": used,
        "search_birth_family": family,
        "search_used_family": used or family,
        "search_given": given,
        "identity_status": "provisoire",
    }


async def test_sort_keys_migration_fills_existing_care_relationships(empty_database):
    connection = empty_database
    await connection.run_sync(_migrate(BEFORE_SORT_KEYS))
    organisation_id = uuid.uuid4()
    await connection.execute(
        sa.insert(Organisation.__table__).values(
            id=organisation_id,
            finess="350000014",
            name="CH de Fougères",
            type="ch",
            commune_insee="35115",
            departement="35",
        )
    )
    married = _patient("MARTIN", "LE GOFF", "ALICE MARIE", date(1950, 4, 2))
    single = _patient("KERVELLA", "", "YVES", date(1987, 11, 30))
    await connection.execute(sa.insert(Patient.__table__), [married, single])
    # Rows as the previous revision wrote them: the used key repeats the birth name when there is no used name.
    await connection.execute(
        sa.insert(care),
        [
            {
                "id": uuid.uuid4(),
                "patient_id": p["id"],
                "organisation_id": organisation_id,
                "kind": "registered",
                "source_ref": "",
                "created_at": clock.now(),
                "search_birth_family": p["search_birth_family"],
                "search_used_family": p["search_used_family"],
            }
            for p in (married, single)
        ],
    )

    await connection.run_sync(_migrate(SORT_KEYS))
    rows = (
        await connection.execute(
            sa.text(
                "SELECT patient_id, search_birth_family, search_used_family, search_given, birth_date "
                "FROM care_relationships"
            )
        )
    ).all()
    keys = {uuid.UUID(str(r[0])): tuple(r[1:4]) + (date.fromisoformat(str(r[4])),) for r in rows}
    assert keys == {
        married["id"]: ("MARTIN", "LE GOFF", "ALICE MARIE", date(1950, 4, 2)),
        single["id"]: ("KERVELLA", "", "YVES", date(1987, 11, 30)),
    }

    await connection.run_sync(_migrate(BEFORE_SORT_KEYS, down=True))
    used = {
        uuid.UUID(str(r[0])): r[1]
        for r in await connection.execute(
            sa.text("SELECT patient_id, search_used_family FROM care_relationships")
        )
    }
    assert used == {married["id"]: "LE GOFF", single["id"]: "KERVELLA"}


async def test_the_enrolments_keep_room_for_their_triage_updates_on_postgresql(empty_database):
    """Migration 6a7b0e01a005: PostgreSQL leaves 30 % of each page of the enrolments free (HOT updates of the triage
    state); the downgrade takes the setting back; SQLite, which has no such setting, migrates through unchanged."""
    connection = empty_database
    await connection.run_sync(_migrate("6a7b0e01a005"))
    columns = await connection.run_sync(
        lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("monitoring_enrolments")}
    )
    assert {"colour", "last_reading_at"} <= columns
    if connection.dialect.name != "postgresql":
        await connection.run_sync(_migrate("6a7b0e01a004", down=True))
        return
    options = sa.text("SELECT reloptions FROM pg_class WHERE oid = 'monitoring_enrolments'::regclass")
    assert (await connection.execute(options)).scalar_one() == ["fillfactor=70"]
    await connection.run_sync(_migrate("6a7b0e01a004", down=True))
    assert (await connection.execute(options)).scalar_one() is None
