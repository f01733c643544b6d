"""The test harness itself: what keeps a parallel run (pytest-xdist, ``make test``) from passing on tests it never
ran, and the per-worker PostgreSQL database."""

from __future__ import annotations

import pytest

from tests import conftest


def test_a_parallel_run_whose_tests_share_an_id_stops_with_the_ids_named():
    ids = ["tests/a.py::test_one", "tests/b.py::test_case", "tests/b.py::test_case", "tests/a.py::test_two"]
    with pytest.raises(pytest.exit.Exception) as stopped:
        conftest.pytest_xdist_node_collection_finished(None, ids)
    assert "tests/b.py::test_case" in str(stopped.value) and "test_one" not in str(stopped.value)
    assert stopped.value.returncode == pytest.ExitCode.USAGE_ERROR


def test_distinct_ids_run_in_parallel():
    assert (
        conftest.pytest_xdist_node_collection_finished(None, ["tests/a.py::t[1]", "tests/a.py::t[2]"]) is None
    )


async def test_outside_pytest_xdist_the_configured_database_is_used(monkeypatch):
    monkeypatch.setattr(conftest, "WORKER", "")
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    assert await conftest._worker_database_url(url) == url
