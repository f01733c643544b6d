"""Times go into the database in UTC and come back aware, in UTC, on both engines, whatever the PostgreSQL session's
time zone (on asyncpg the driver's value is taken as it is: kit.models.UTCDateTime)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from telesante.directory.models import Organisation
from telesante.kit.models import _aware_utc
from tests.factories import make_organisation


async def test_times_come_back_aware_in_utc_whatever_the_session_time_zone(session):
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.text("SET LOCAL TIME ZONE 'Pacific/Chatham'"))  # UTC+13:45 in December
    organisation = await make_organisation(session, "CH de Lannion")
    paris_winter = datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1)))
    await session.execute(
        sa.update(Organisation).where(Organisation.id == organisation.id).values(created_at=paris_winter)
    )
    session.expunge_all()
    [(created,)] = (
        await session.execute(sa.select(Organisation.created_at).where(Organisation.id == organisation.id))
    ).all()
    assert created == datetime(2026, 12, 6, 8, 30, 15, 123456, tzinfo=UTC)
    assert created.utcoffset() == timedelta(0) and created.tzinfo is UTC
    core = await (await session.connection()).execute(
        sa.select(Organisation.created_at).where(Organisation.id == organisation.id)
    )
    assert core.scalar_one() == created


def test_a_value_without_zone_is_taken_as_utc():
    assert _aware_utc(None) is None
    naive = datetime(9999, 12, 31, 23, 59, 59)  # asyncpg's "infinity"
    assert _aware_utc(naive) == naive.replace(tzinfo=UTC)
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    assert _aware_utc(aware) is aware


async def test_a_naive_time_is_refused_on_the_way_in(session):
    organisation = await make_organisation(session, "CH de Paimpol")
    with pytest.raises(sa.exc.StatementError, match="naive datetime refused"):
        await session.execute(
            sa.update(Organisation)
            .where(Organisation.id == organisation.id)
            .values(created_at=datetime(2026, 1, 1))
        )
