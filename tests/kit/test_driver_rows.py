"""``RepositoryBase.driver_execute`` on both engines: rows sent by the driver (on PostgreSQL one array per column,
``column_arrays``; on SQLite an executemany) are stored exactly as SQLAlchemy stores them through the column types,
and read back by the driver as the same values. The monitoring ingest's hot statements go this way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from telesante.kit.repository import RepositoryBase, among_named, column_arrays, pg_value, sqlite_list
from tests.kit.test_sqlite_rows import ROWS, Colour

metadata = sa.MetaData()


def _table(name: str) -> sa.Table:
    from tests.kit.test_sqlite_rows import sample

    return sample.to_metadata(metadata, name=name)


by_sqlalchemy, by_driver = _table("driver_sample_a"), _table("driver_sample_b")


def _text_of(table: sa.Table) -> sa.Select:
    """Each stored value as the database prints it (what the table holds, not what a driver makes of it)."""
    return sa.select(*(sa.cast(column, sa.Text) for column in table.columns)).order_by(table.c.label)


@pytest.fixture
async def tables(session):
    connection = await session.connection()
    await connection.run_sync(metadata.create_all)
    yield
    await connection.run_sync(metadata.drop_all)


async def test_rows_sent_by_the_driver_are_stored_and_read_as_sqlalchemy_does(session, tables):
    await session.execute(sa.insert(by_sqlalchemy), ROWS)
    repo = RepositoryBase(session)
    shared = {"count": 5}  # a value every row shares, given once
    rows = [{key: value for key, value in row.items() if key != "count"} for row in ROWS]
    names = ("count", *rows[0])
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await repo.driver_execute(
            ("test.driver_rows", names),
            lambda: sa.insert(by_driver).from_select(
                names, column_arrays(by_driver, list(rows[0]), ["count"])
            ),
            rows=rows,
            constants=shared,
        )
    else:
        await repo.driver_execute(
            ("test.driver_rows", names),
            lambda: sa.insert(by_driver),
            rows=rows,
            constants=shared,
            columns=names,
        )
    await session.execute(sa.update(by_sqlalchemy).values(count=5))
    expected = (await session.execute(_text_of(by_sqlalchemy))).all()
    assert (await session.execute(_text_of(by_driver))).all() == expected and len(expected) == 2
    # read back through SQLAlchemy: the Python values given (aware UTC times, UUIDs, enums)
    read = (await session.execute(sa.select(by_driver).order_by(by_driver.c.label.desc()))).all()
    assert read[0].at == datetime(2026, 12, 6, 8, 30, 15, 123456, tzinfo=UTC) and read[0].colour is Colour.RED
    assert read[1].other is None and read[1].count == 5

    # a SELECT by the driver, its values one parameter: on PostgreSQL UUIDs and aware UTC times come back as such
    wanted = [ROWS[0]["id"], uuid.uuid4()]
    if dialect == "postgresql":
        found = await repo.driver_execute(
            "test.driver_select",
            lambda: sa.select(by_driver.c.id, by_driver.c.at, by_driver.c.colour).where(
                among_named(by_driver.c.id, "ids", "postgresql"), by_driver.c.colour == sa.bindparam("colour")
            ),
            {"ids": wanted, "colour": Colour.RED},
        )
        assert found == [(ROWS[0]["id"], datetime(2026, 12, 6, 8, 30, 15, 123456, tzinfo=UTC), "red")]
        assert found[0][1].tzinfo is not None
    else:
        found = await repo.driver_execute(
            "test.driver_select",
            lambda: sa.select(by_driver.c.id).where(
                by_driver.c.id.in_(
                    sa.select(sa.column("value")).select_from(sa.func.json_each(sa.bindparam("ids")))
                )
            ),
            {"ids": sqlite_list(wanted)},
        )
        assert found == [(ROWS[0]["id"].hex,)]


def test_values_for_postgresql_arrays_and_parameters():
    assert pg_value([Colour.RED, None, Colour.GREEN]) == ["red", None, "green"]
    same = [uuid.uuid4(), None]
    assert pg_value(same) is same  # plain elements: the list as it is, not copied
    assert pg_value(Colour.GREEN) == "green" and pg_value(True) is True
    with pytest.raises(ValueError, match="naive"):
        pg_value(datetime(2026, 12, 6, 9, 30))


def test_column_arrays_is_one_parameter_per_column_whatever_the_number_of_rows():
    statement = sa.insert(by_driver).from_select(
        ["count", "id", "label"], column_arrays(by_driver, ["id", "label"], ["count"])
    )
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    assert list(compiled.positiontup) == ["shared_count", "rows_id", "rows_label"]
    assert "unnest($2::UUID[], $3::VARCHAR[])" in compiled.string
