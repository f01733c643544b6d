"""The rules' window of readings (``ObservationRepository.since``) is searched by its time range, not through every
reading a patient ever sent: with the time right after the enrolment in the index, the scan starts at the window's
first reading. With the measure in between (the index until migration 2026-12-07-0400), the time could not bound the
scan and each judging read the whole history (docs/performance.md, remote monitoring, tenth session)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from telesante.kit.repository import driver_compiled, sqlite_value
from telesante.monitoring.repository import ObservationRepository

SINCE = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


async def _window_statement(session) -> tuple[str, str]:
    """The window's statement as the repository runs it (compiled by its first use), and the dialect's name."""
    assert await ObservationRepository(session).since([uuid.uuid4()], SINCE) == {}
    connection = await session.connection()
    statement, _ = driver_compiled("observations.since", lambda: None, connection.dialect)
    return statement, connection.dialect.name


async def test_the_rules_window_is_searched_from_its_first_time_not_through_the_whole_history(session):
    statement, dialect = await _window_statement(session)
    connection = await session.connection()
    if dialect == "sqlite":
        plan = (
            await connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement,
                (json.dumps([uuid.uuid4().hex]), sqlite_value(SINCE)),
            )
        ).all()
        searches = [row[-1] for row in plan if "monitoring_observations" in row[-1]]
        assert searches, plan
        # e.g. "SEARCH monitoring_observations USING INDEX ix_… (enrolment_id=? AND effective_at>?)"
        assert all("enrolment_id=? AND effective_at>?" in step for step in searches), searches
        return
    # PostgreSQL: an index scan (the table of a test is too small for the planner to choose one unless told), on an
    # index whose columns are the enrolment then the time: its condition on the time bounds the scan
    await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    await connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
    (plan,) = (
        await connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, ([uuid.uuid4()], SINCE))
    ).one()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    node = plan[0]["Plan"]
    while "Index Name" not in node and node.get("Plans"):
        node = node["Plans"][0]
    columns = (
        await connection.exec_driver_sql(
            "SELECT array_agg(a.attname ORDER BY k.n) FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indexrelid = $1::regclass",
            (node["Index Name"],),
        )
    ).scalar_one()
    assert list(columns[:2]) == ["enrolment_id", "effective_at"], (node["Index Name"], columns)
    assert "effective_at" in node["Index Cond"], node
