"""Rows sent to SQLite's driver directly (``kit.repository.sqlite_value``, ``sqlite_rows``, ``among``) are stored
exactly as SQLAlchemy stores them through the column types: same SQLite type, same bytes, for every type a device
batch writes (UUIDs, aware times, enums, booleans, numbers, text, NULL)."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from telesante.kit.models import UTCDateTime, Uuid, str_enum, uuid7
from telesante.kit.repository import among, driver_compiled, sqlite_list, sqlite_rows, sqlite_value


class Colour(enum.StrEnum):
    RED = "red"
    GREEN = "green"


metadata = sa.MetaData()
sample = sa.Table(
    "sample",
    metadata,
    sa.Column("id", Uuid, primary_key=True),
    sa.Column("other", Uuid, nullable=True),
    sa.Column("at", UTCDateTime(), nullable=True),
    sa.Column("colour", str_enum(Colour, 10)),
    sa.Column("flag", sa.Boolean),
    sa.Column("value", sa.Float),
    sa.Column("count", sa.Integer),
    sa.Column("day", sa.Date, nullable=True),
    sa.Column("label", sa.String(50)),
)
COLUMNS = [column.name for column in sample.columns]

PARIS_WINTER = timezone(timedelta(hours=1))
ROWS = [
    {
        "id": uuid7(),
        "other": uuid.uuid4(),
        "at": datetime(2026, 12, 6, 9, 30, 15, 123456, tzinfo=PARIS_WINTER),
        "colour": Colour.RED,
        "flag": True,
        "value": 72.4,
        "count": 3,
        "day": date(2026, 12, 6),
        "label": "Balance connectée « SCALE-000001 »",
    },
    {
        "id": uuid.uuid4(),
        "other": None,
        "at": datetime(
            2026, 12, 6, 8, 0, tzinfo=UTC
        ),  # no microseconds: still written with them, as SQLAlchemy does
        "colour": Colour.GREEN,
        "flag": False,
        "value": 70.0,
        "count": 0,
        "day": None,
        "label": "",
    },
]


def _stored(engine: sa.Engine, key: uuid.UUID) -> list[tuple]:
    """Each column's SQLite type and its value as SQL text (``typeof``, ``quote``): what the file holds."""
    parts = [f(c) for c in sample.columns for f in (sa.func.typeof, sa.func.quote)]
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.select(*parts).where(sample.c.id == key))]


@pytest.fixture
def engines(tmp_path):
    """The same empty table in two files: one written by SQLAlchemy, one by the driver."""
    made = []
    for name in ("sqlalchemy", "driver"):
        engine = sa.create_engine(f"sqlite:///{tmp_path / name}.db")
        metadata.create_all(engine)
        made.append(engine)
    yield made
    for engine in made:
        engine.dispose()


def test_driver_rows_are_stored_as_sqlalchemy_stores_them(engines):
    through_sqlalchemy, through_driver = engines
    with through_sqlalchemy.begin() as connection:
        connection.execute(sa.insert(sample), ROWS)
    statement, order = driver_compiled(
        ("test.sample", tuple(COLUMNS)), lambda: sa.insert(sample), through_driver.dialect, COLUMNS
    )
    assert list(order) == COLUMNS
    shared = {"count": 5}  # a value every row shares, given once
    rows = [{key: value for key, value in row.items() if key != "count"} for row in ROWS]
    with through_driver.begin() as connection:
        connection.exec_driver_sql(statement, sqlite_rows(order, rows, shared))
    with through_sqlalchemy.begin() as connection:
        connection.execute(sa.update(sample).values(count=5))
    for row in ROWS:
        expected, found = _stored(through_sqlalchemy, row["id"]), _stored(through_driver, row["id"])
        assert found == expected and found
    # and read back through SQLAlchemy, the same Python values (aware UTC times, UUIDs, enums)
    with through_driver.connect() as connection:
        read = connection.execute(sa.select(sample).order_by(sample.c.label.desc())).all()
    assert read[0].at == datetime(2026, 12, 6, 8, 30, 15, 123456, tzinfo=UTC)
    assert read[0].colour is Colour.RED and read[0].other == ROWS[0]["other"] and read[0].flag is True
    assert read[1].at == datetime(2026, 12, 6, 8, 0, tzinfo=UTC) and read[1].other is None


def test_an_unknown_parameter_or_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="naive"):
        sqlite_value(datetime(2026, 12, 6, 9, 30))
    with pytest.raises(KeyError, match="label"):
        sqlite_rows(["id", "label"], [{"id": uuid.uuid4()}])


def test_among_on_sqlite_finds_the_same_rows_as_an_in_list(engines):
    engine = engines[0]
    with engine.begin() as connection:
        connection.execute(sa.insert(sample), ROWS)
        for wanted in ([ROWS[0]["id"]], [ROWS[0]["id"], ROWS[1]["id"], uuid.uuid4()], [uuid.uuid4()]):
            found = {
                key
                for (key,) in connection.execute(
                    sa.select(sample.c.id).where(among(sample.c.id, wanted, "sqlite"))
                )
            }
            assert found == set(wanted) & {row["id"] for row in ROWS}
        by_colour = connection.execute(
            sa.select(sample.c.id).where(among(sample.c.colour, [Colour.GREEN], "sqlite"))
        ).all()
        assert [key for (key,) in by_colour] == [ROWS[1]["id"]]
    assert sqlite_list([ROWS[0]["id"], Colour.RED, None]) == f'["{ROWS[0]["id"].hex}","red",null]'
