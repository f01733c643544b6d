"""Shift times without an offset (the rota form's datetime-local fields, or an API client) are Paris wall-clock
time, read by the shared rule of clock.from_paris on the days the clocks change; far years are named."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from telesante.kit.errors import InvalidInput
from telesante.kit.schemas import parse_input
from telesante.oncall.schemas import ShiftCreate

WHO = str(uuid.uuid4())


def test_a_night_shift_over_the_october_change_lasts_thirteen_hours():
    shift = parse_input(
        ShiftCreate, {"professional_id": WHO, "starts_at": "2026-10-24T20:00", "ends_at": "2026-10-25T08:00"}
    )
    assert shift.starts_at == datetime(2026, 10, 24, 18, 0, tzinfo=UTC)
    assert shift.ends_at == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "utc"),
    [
        (
            "2026-10-25T02:30",
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ),  # twice that night: the first, summer time
        (
            "2026-03-29T02:30",
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        ),  # never shown: winter offset (03:30 CEST)
        ("2026-03-29T02:30+02:00", datetime(2026, 3, 29, 0, 30, tzinfo=UTC)),  # an offset given is kept
    ],
)
def test_the_hour_that_repeats_or_is_skipped(typed, utc):
    shift = parse_input(
        ShiftCreate, {"professional_id": WHO, "starts_at": typed, "ends_at": "2026-12-01T08:00"}
    )
    assert shift.starts_at == utc


def test_a_far_year_is_named():
    with pytest.raises(InvalidInput) as error:
        parse_input(
            ShiftCreate,
            {"professional_id": WHO, "starts_at": "0001-01-01T00:00", "ends_at": "2026-12-01T08:00"},
        )
    assert error.value.field == "starts_at"
    assert error.value.message == "starts_at : date attendue entre 2000 et 2100"
