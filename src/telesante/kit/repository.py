"""Base class for repositories: the only place where queries are written."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from asyncpg.pgproto.pgproto import UUID as DriverUUID
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.kit.models import Base

M = TypeVar("M", bound=Base)


def column_arrays(table: sa.Table, names: Sequence[str], constants: Sequence[str] = ()) -> sa.Select:
    """PostgreSQL: ``SELECT $1, …, rows.a, rows.b … FROM unnest($3::type[], $4::type[], …) AS rows(a, b, …)``: rows
    given as one array per column (parameter ``rows_<name>`` for each of ``names``), and the values shared by every
    row once each (parameter ``shared_<name>`` for each of ``constants``), for ``INSERT … SELECT`` (columns: the
    constants', then the rows') and ``UPDATE … FROM``. Run by ``RepositoryBase.driver_execute(rows=…)``, which sends
    the arrays (``array_parameters``).

    A list of rows sent as an executemany is executed by PostgreSQL once per row (asyncpg), and as multi-row VALUES
    it is a different statement for every number of rows (parsed and planned again) with one parameter per value.
    Here the statement's text is the same whatever the number of rows, and each column is one parameter: measured
    for a device batch's readings, audit rows and triage states (docs/performance.md, remote monitoring)."""
    arrays = [
        sa.bindparam(f"rows_{name}", type_=postgresql.ARRAY(_unbounded(table.c[name].type))) for name in names
    ]
    source = sa.func.unnest(*arrays).table_valued(*names, name="rows").render_derived()
    shared = [
        sa.bindparam(f"shared_{name}", type_=_unbounded(table.c[name].type)).label(name) for name in constants
    ]
    return sa.select(*shared, *(source.c[name] for name in names))


def array_parameters(
    rows: Sequence[dict[str, Any]], constants: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The parameters of a ``column_arrays`` statement: one list per column of the rows, each constant once."""
    names = list(rows[0])
    given: dict[str, Any] = {f"rows_{name}": [row[name] for row in rows] for name in names}
    given.update({f"shared_{name}": value for name, value in (constants or {}).items()})
    return given


def _unbounded(type_: Any) -> Any:
    """A string type without its length, for a parameter's cast: PostgreSQL cuts a value too long for an explicit
    ``::VARCHAR(n)`` without a word, where storing it in the column (an assignment) refuses it. Enumerations keep their
    type (their values are checked against the members)."""
    if isinstance(type_, sa.String) and not isinstance(type_, sa.Enum) and type_.length is not None:
        return sa.String()
    return type_


def among(column: sa.ColumnElement, values: Sequence[Any], dialect: str) -> sa.ColumnElement[bool]:
    """``column IN (values)`` with one parameter and one statement text whatever the number of values: on PostgreSQL
    ``column = ANY($1)`` (an ``IN`` list is rendered, and prepared by PostgreSQL, again for every length); on SQLite
    ``column IN (SELECT value FROM json_each(?))``, the values as one JSON array in their stored form
    (``sqlite_list``), instead of a parameter per value, each through its type's processor."""
    if dialect == "postgresql":
        return column == sa.any_(
            sa.bindparam(None, list(values), type_=postgresql.ARRAY(_unbounded(column.type)))
        )
    if dialect == "sqlite":
        return column.in_(
            sa.select(sa.column("value")).select_from(
                sa.func.json_each(sa.bindparam(None, sqlite_list(values), type_=sa.String))
            )
        )
    return column.in_(values)


def among_named(column: sa.ColumnElement, name: str, dialect: str) -> sa.ColumnElement[bool]:
    """``among`` for a statement run by ``RepositoryBase.driver_execute``: the values are the parameter ``name``, given
    by ``among_values``. PostgreSQL: ``column = ANY($n::type[])``; SQLite: ``column IN (SELECT value FROM
    json_each(?))``."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(_unbounded(column.type))))
    return column.in_(sa.select(sa.column("value")).select_from(sa.func.json_each(sa.bindparam(name))))


def among_values(values: Sequence[Any], dialect: str) -> Any:
    """The parameter of an ``among_named`` condition: the values as a list (PostgreSQL) or one JSON array
    (``sqlite_list``)."""
    return list(values) if dialect == "postgresql" else sqlite_list(values)


# --- A device batch's statements straight to the driver ------------------------------------------------------------
#
# A device batch writes hundreds of rows (readings, audit rows, triage states). Through SQLAlchemy, each value of each
# row goes through its type's bind processors (a UUID to its hex digits, an aware datetime to naive UTC, then to
# text) and each row through the statement's parameter machinery: a sixth of the server's Python time in a batch
# (py-spy, docs/performance.md). Here the statement is built and compiled by SQLAlchemy once, the values are
# converted by ``sqlite_value`` (the forms the column types store, checked by ``tests/kit/test_sqlite_rows.py``) and
# the rows go to the driver's ``executemany`` (one prepared statement). On PostgreSQL the same holds for every
# statement of a batch (each one's execution through SQLAlchemy cost 0.4–0.8 ms of CPU before asyncpg's share, on a
# 2.4 GHz host): ``pg_value`` and one array per column (``column_arrays``), checked by ``tests/kit/test_driver_rows.py``.


def sqlite_value(value: Any) -> Any:
    """A value as this project's column types store it on SQLite: a UUID as its 32 hex digits (``kit.models.Uuid``),
    an aware datetime as naive UTC text with microseconds (``UTCDateTime``; a naive one is refused, as there), an
    enum as its value (``str_enum``), a date as ISO text, a boolean as 0/1; a string, a number or None as it is."""
    kind = type(value)
    if kind is str or kind is float or kind is int or value is None:
        return value
    if kind is uuid.UUID:
        return value.hex
    if kind is datetime:
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use telesante.kit.clock.now()")
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.isoformat(" ", "microseconds")[:26]  # without its "+00:00" (cheaper than a naive copy)
    if kind is bool:
        return int(value)
    if isinstance(value, enum.Enum):
        return value.value
    if kind is date:
        return value.isoformat()
    return value


def sqlite_time(text: str | None) -> datetime | None:
    """A time as ``sqlite_value`` and ``UTCDateTime`` store it on SQLite (naive UTC text) as an aware UTC datetime:
    one C call (``datetime.fromisoformat`` reads the offset appended), where ``.replace(tzinfo=UTC)`` after it costs
    five times as much (a keyword call; 0.8 µs against 0.14 µs per time on Python 3.11, and a rules window reads
    thousands)."""
    return None if text is None else datetime.fromisoformat(text + "+00:00")


def sqlite_list(values: Sequence[Any]) -> str:
    """Values as one JSON array, for ``… IN (SELECT value FROM json_each(:values))``: one parameter and one statement
    text whatever the number of values (as ``among`` on PostgreSQL), converted by ``sqlite_value``."""
    return orjson.dumps([sqlite_value(value) for value in values]).decode()


def pg_value(value: Any) -> Any:
    """A value as asyncpg sends it for this project's column types: a UUID, a number, a string or an aware datetime as
    it is (a naive one is refused, as ``UTCDateTime`` does), an enum as its value; in a list (an array parameter),
    each element so."""
    kind = type(value)
    if kind in _PG_PLAIN or value is None:
        return value
    if kind is list:
        first = next((element for element in value if element is not None), None)
        if first is None or type(first) in _PG_PLAIN:
            return value
        return [pg_value(element) for element in value]
    if kind is datetime:
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use telesante.kit.clock.now()")
        return value
    if isinstance(value, enum.Enum):
        return value.value
    return value


# sent as they are (``pg_value``), array elements too. ``DriverUUID``: asyncpg's own UUID (a ``uuid.UUID``), in which
# PostgreSQL's rows give ids, then often sent back (an enrolment's id read with the batch's patients, then in each of
# its statements): without it, a list of them was converted element by element, about 0.5 µs each
_PG_PLAIN = frozenset({str, float, int, uuid.UUID, DriverUUID})

_COMPILED: dict[tuple[str, Hashable], tuple[str, tuple[str, ...]]] = {}


def driver_compiled(
    key: Hashable, build: Callable[[], Any], dialect: Any, columns: Sequence[str] | None = None
) -> tuple[str, tuple[str, ...]]:
    """The SQL text of the statement ``build()`` makes, compiled once per ``key`` and dialect, and the names of its
    parameters in order; ``columns``: an INSERT's columns, each given by the parameter of its name."""
    found = _COMPILED.get((dialect.name, key))
    if found is None:
        compiled = build().compile(dialect=dialect, column_keys=list(columns) if columns else None)
        found = _COMPILED[(dialect.name, key)] = (compiled.string, tuple(compiled.positiontup or ()))
    return found


def sqlite_rows(
    order: Sequence[str], rows: Sequence[dict[str, Any]], constants: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """One tuple of driver values per row, in the statement's parameter ``order``: each name from ``constants`` (the
    values every row shares, converted once) or else from the row."""
    constants = constants or {}
    shared = {name: sqlite_value(value) for name, value in constants.items()}
    picks = [(name in shared, shared.get(name, name)) for name in order]
    plain = _PLAIN
    return [
        tuple(
            value if fixed else given if type(given := row[value]) in plain else sqlite_value(given)
            for fixed, value in picks
        )
        for row in rows
    ]


_PLAIN = frozenset({str, float, int, type(None)})  # stored as they are (``sqlite_value``), tested first


class RepositoryBase(Generic[M]):
    model: type[M]

    def __init__(self, session: AsyncSession):
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def core_rows(self, stmt: sa.Select) -> list[sa.Row]:
        """The rows of a column-only SELECT run on the session's connection without the ORM's result machinery (a
        third less CPU for the thousands of rows of a device batch's readings window, measured on PostgreSQL) and
        without autoflush: only for tables whose rows this code never leaves pending in the session."""
        return list((await (await self.session.connection()).execute(stmt)).all())

    async def driver_execute(
        self,
        key: Hashable,
        build: Callable[[], Any],
        values: dict[str, Any] | None = None,
        *,
        rows: Sequence[dict[str, Any]] | None = None,
        constants: dict[str, Any] | None = None,
        columns: Sequence[str] | None = None,
    ) -> list[tuple[Any, ...]]:
        """The statement ``build()`` makes, compiled once per ``key`` (``driver_compiled``), run by the driver on the
        session's connection (in its transaction) with ``values``, its named parameters. ``rows``: on SQLite an
        executemany of one prepared statement (each parameter from ``constants`` or else from the row; ``columns``: an
        INSERT's columns); on PostgreSQL a ``column_arrays`` statement, the rows sent as one array per column.
        Returns its rows as the driver gives them: on SQLite text for UUIDs and times; on PostgreSQL UUIDs, aware UTC
        datetimes, JSON decoded, an enum's column as its text. No autoflush: only for rows this code never leaves
        pending in the session.

        A hot statement (a device batch's) spends in SQLAlchemy's execution (cache key, compiled form, processors of
        each parameter and value) about twice what the driver does; here it pays the driver only (measured,
        docs/performance.md)."""
        connection = await self.session.connection()
        statement, order = driver_compiled(key, build, connection.dialect, columns)
        if connection.dialect.name == "postgresql":
            given = dict(values or {})
            if rows is not None:
                if not rows:
                    return []
                given.update(array_parameters(rows, constants))
            result = await connection.exec_driver_sql(
                statement, tuple(pg_value(given[name]) for name in order)
            )
            return list(result.all()) if result.returns_rows else []
        if rows is not None:
            if not rows:
                return []
            parameters: Any = sqlite_rows(order, rows, constants)
        else:
            given = values or {}
            parameters = tuple(sqlite_value(given[name]) for name in order)
        result = await connection.exec_driver_sql(statement, parameters)
        return list(result.all()) if result.returns_rows else []

    async def get(self, id_: uuid.UUID, *options: Any) -> M | None:
        return await self.session.get(self.model, id_, options=list(options) or None)

    async def add(self, obj: M) -> M:
        self.session.add(obj)
        await self.session.flush()
        return obj

    def stage(self, obj: M) -> M:
        """Add without flushing: the caller flushes once for many (a batch's alerts)."""
        self.session.add(obj)
        return obj

    async def scalar(self, stmt: sa.Select) -> Any:
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def all(self, stmt: sa.Select) -> list[Any]:
        return list((await self.session.execute(stmt)).scalars().all())

    async def count(self, stmt: sa.Select) -> int:
        count_stmt = sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
        return int((await self.session.execute(count_stmt)).scalar_one())
