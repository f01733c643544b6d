"""SQLite through aiosqlite with one thread hop per statement.

aiosqlite runs each SQLite connection in a thread of its own; every call from the event loop is a hop to that
thread and back (a queue, a wake-up of the thread, a wake-up of the loop). SQLAlchemy's adapter makes four hops per
statement: open a cursor, execute, fetch the rows, close the cursor. A stroke alert is some fifty statements, so
two hundred hops, each costing the event loop a wake-up and a GIL hand-over.

``OneHopDBAPI`` is SQLAlchemy's aiosqlite DBAPI adapter whose cursors do all four steps in **one** call on the
connection's thread: the statement, its rows, ``rowcount`` and ``lastrowid`` come back together. Nothing else
changes: same connections, same thread, same SQL, same errors (the ``sqlite3`` exceptions, which aiosqlite also
raises). Server-side cursors (``stream()``) keep SQLAlchemy's own class.

It relies on two things of the installed versions: SQLAlchemy 2.1's ``AsyncAdapt_dbapi_cursor`` layout, and
aiosqlite's ``Connection._execute`` (run a function on the connection's thread). ``available()`` says whether they
are there; when they are not, ``make_engine`` keeps the stock adapter (and ``tests/test_db.py`` fails, so that an
upgrade is noticed rather than silently slower).
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

try:  # SQLAlchemy 2.1
    import aiosqlite
    from sqlalchemy.dialects.sqlite.aiosqlite import (
        AsyncAdapt_aiosqlite_connection,
        AsyncAdapt_aiosqlite_cursor,
        AsyncAdapt_aiosqlite_dbapi,
    )
    from sqlalchemy.util.concurrency import await_

    _SLOTS = {slot for base in AsyncAdapt_aiosqlite_cursor.__mro__ for slot in getattr(base, "__slots__", ())}
    _LAYOUT = (
        hasattr(aiosqlite.Connection, "_execute")
        and {
            "_adapt_connection",
            "_connection",
            "_cursor",
            "_rows",
            "_soft_closed_memoized",
        }
        <= _SLOTS
    )
except ImportError:  # pragma: no cover - another SQLAlchemy or aiosqlite
    _LAYOUT = False


def available() -> bool:
    return bool(_LAYOUT)


def _run(connection: Any, operation: str, parameters: Any, many: bool) -> tuple[Any, list, int, int | None]:
    """On the connection's thread: the whole statement, rows included."""
    cursor: sqlite3.Cursor = connection._conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


if _LAYOUT:

    class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
        """A client-side cursor whose statement is one call on the connection's thread."""

        __slots__ = ("_description", "_rowcount", "_lastrowid", "_arraysize")

        def __init__(self, adapt_connection: Any):
            # no driver cursor is opened here (that was a hop of its own): the thread opens and closes one per
            # statement
            self._adapt_connection = adapt_connection
            self._connection = adapt_connection._connection
            self._cursor = None
            self._soft_closed_memoized = {}
            self._rows = collections.deque()
            self._description = None
            self._rowcount = -1
            self._lastrowid = None
            self._arraysize = 1  # sqlite3's default: fetchmany() without a size returns one row

        @property
        def description(self) -> Any:
            return self._description

        @property
        def rowcount(self) -> int:
            return self._rowcount

        @property
        def lastrowid(self) -> Any:
            return self._lastrowid

        @property
        def arraysize(self) -> int:
            return self._arraysize

        @arraysize.setter
        def arraysize(self, value: int) -> None:
            self._arraysize = value

        async def _async_soft_close(self) -> None:
            return None  # nothing is open on the driver's side

        def close(self) -> None:
            self._rows.clear()

        def execute(self, operation: Any, parameters: Any = None) -> Any:
            return self._wait(operation, parameters, False)

        def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
            return self._wait(operation, seq_of_parameters, True)

        def _wait(self, operation: Any, parameters: Any, many: bool) -> Any:
            try:
                return await_(self._statement(operation, parameters, many))
            except Exception as error:
                self._adapt_connection._handle_exception(error)

        async def _statement(self, operation: Any, parameters: Any, many: bool) -> None:
            async with self._adapt_connection._execute_mutex:
                connection = self._connection
                outcome = await connection._execute(_run, connection, operation, parameters, many)
            self._description, rows, self._rowcount, self._lastrowid = outcome
            self._rows = collections.deque(rows)

        def nextset(self) -> None:
            return None  # sqlite3 has no multiple result sets

        def setinputsizes(self, *inputsizes: Any) -> None:
            return None  # a no-op in sqlite3 too

    class OneHopConnection(AsyncAdapt_aiosqlite_connection):
        __slots__ = ()
        _cursor_cls = OneHopCursor

    class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
        """Pass as ``module=`` to ``create_async_engine`` for a ``sqlite+aiosqlite`` URL."""

        def connect(self, *arg: Any, **kw: Any) -> Any:
            connection = super().connect(*arg, **kw)
            connection.__class__ = OneHopConnection  # same slots: only the cursor class differs
            return connection


def dbapi() -> Any | None:
    """The one-hop DBAPI adapter, or None when the installed versions do not have what it relies on."""
    if not _LAYOUT:
        return None
    return OneHopDBAPI(aiosqlite, sqlite3)
