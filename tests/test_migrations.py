"""Migrations that move data: run them on rows written under the previous revision, on both engines.

SQLite runs on a fresh file; PostgreSQL in a throw-away schema inside a transaction that is rolled back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta

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


async def test_an_enrolments_last_reading_is_read_from_its_readings_and_written_back_by_the_downgrade(
    empty_database,
):
    """Migration 6a7b0e01a010 drops ``monitoring_enrolments.last_reading_at`` (read from the readings since,
    ``Enrolment.last_reading_at``); its downgrade adds the column back filled with each enrolment's last reading."""
    from telesante.monitoring.models import Enrolment, Observation

    connection = empty_database
    await connection.run_sync(_migrate("6a7b0e01a010"))
    columns = await connection.run_sync(
        lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("monitoring_enrolments")}
    )
    assert "colour" in columns and "last_reading_at" not in columns
    # rows without their patient, programme and accounts: the keys are not what is tested
    if connection.dialect.name == "sqlite":  # read outside a transaction only: sent by the driver between two
        await connection.commit()
        raw = await connection.get_raw_connection()
        await raw.driver_connection.execute("PRAGMA foreign_keys = OFF")
    else:
        await connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    now = clock.now()
    with_readings, without = uuid.uuid4(), uuid.uuid4()
    for enrolment_id in (with_readings, without):
        await connection.execute(
            sa.insert(Enrolment.__table__).values(
                id=enrolment_id,
                patient_id=uuid.uuid4(),
                programme_id=uuid.uuid4(),
                organisation_id=uuid.uuid4(),
                programme_code="insuffisance_cardiaque",
                status="active",
                indication="IC",
                prescriber_name="Dr X",
                overrides={},
                conventional_follow_up_offered=False,
                refusal_reason="",
                pin_hash="",
                pin_failures=0,
                colour="green",
                reviewed_by_name="",
                created_at=now,
                created_by_account_id=uuid.uuid4(),
                created_by_name="X",
                end_reason="",
            )
        )
    last = now.replace(microsecond=0) - timedelta(hours=2)
    for hours_before, key in ((0, "a"), (26, "b")):
        await connection.execute(
            sa.insert(Observation.__table__).values(
                id=uuid.uuid4(),
                enrolment_id=with_readings,
                patient_id=uuid.uuid4(),
                measure="weight",
                code="29463-7",
                value=70.0,
                unit="kg",
                sent_value=70.0,
                sent_unit="kg",
                effective_at=last - timedelta(hours=hours_before),
                received_at=now,
                source="device",
                dedup_key=key,
                entered_by_name="",
            )
        )
    read = await connection.execute(
        sa.select(Enrolment.id, Enrolment.last_reading_at).where(Enrolment.id.in_([with_readings, without]))
    )
    assert dict(read.all()) == {with_readings: last, without: None}
    await connection.run_sync(_migrate("6a7b0e01a009", down=True))
    stored = sa.table(
        "monitoring_enrolments", sa.column("id", sa.Uuid), sa.column("last_reading_at", UTCDateTime())
    )
    written = await connection.execute(sa.select(stored.c.id, stored.c.last_reading_at))
    assert dict(written.all()) == {with_readings: last, without: None}
