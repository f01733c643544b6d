"""Base class for repositories: the only place where queries are written."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.kit.models import Base

M = TypeVar("M", bound=Base)


def column_arrays(
    table: sa.Table, rows: Sequence[dict[str, Any]], constants: dict[str, Any] | None = None
) -> sa.Select:
    """PostgreSQL: ``SELECT $1, …, rows.a, rows.b … FROM unnest($3::type[], $4::type[], …) AS rows(a, b, …)``: the
    rows given as one array per column (the columns of the first row), and the values shared by every row
    (``constants``) once each, for ``INSERT … SELECT`` (columns: the constants', then the rows') and ``UPDATE … FROM``.

    A list of rows sent as an executemany is executed by PostgreSQL once per row (asyncpg), and as multi-row VALUES
    it is a different statement for every number of rows (parsed and planned again) with one parameter per value.
    Here the statement's text is the same whatever the number of rows, and each column is one parameter: measured
    for a device batch's readings, audit rows and triage states (docs/performance.md, remote monitoring)."""
    constants = constants or {}
    names = list(rows[0])
    arrays = [
        sa.bindparam(
            f"rows_{name}",
            [row[name] for row in rows],
            type_=postgresql.ARRAY(_unbounded(table.c[name].type)),
        )
        for name in names
    ]
    source = sa.func.unnest(*arrays).table_valued(*names, name="rows").render_derived()
    shared = [
        sa.bindparam(f"shared_{name}", value, type_=_unbounded(table.c[name].type)).label(name)
        for name, value in constants.items()
    ]
    return sa.select(*shared, *(source.c[name] for name in names))


def _unbounded(type_: Any) -> Any:
    """A string type without its length, for a parameter's cast: PostgreSQL cuts a value too long for an explicit
    ``::VARCHAR(n)`` without a word, where storing it in the column (an assignment) refuses it. Enumerations keep their
    type (their values are checked against the members)."""
    if isinstance(type_, sa.String) and not isinstance(type_, sa.Enum) and type_.length is not None:
        return sa.String()
    return type_


def among(column: sa.ColumnElement, values: Sequence[Any], dialect: str) -> sa.ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY($1)``: one parameter and one statement text whatever the
    number of values (an ``IN`` list is rendered, and prepared by PostgreSQL, again for every length)."""
    if dialect == "postgresql":
        return column == sa.any_(
            sa.bindparam(None, list(values), type_=postgresql.ARRAY(_unbounded(column.type)))
        )
    return column.in_(values)


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
