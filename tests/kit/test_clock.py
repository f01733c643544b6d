"""Times typed by a person in Paris wall-clock time (HTML datetime-local fields), read into UTC: the one rule
for the hour repeated in October and the hour skipped in March, the year range, the offset kept when given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from telesante.kit import clock


@pytest.mark.parametrize(
    ("typed", "utc"),
    [
        ("2026-12-02T01:30", datetime(2026, 12, 2, 0, 30, tzinfo=UTC)),  # winter: UTC+1
        ("2026-07-14T10:00", datetime(2026, 7, 14, 8, 0, tzinfo=UTC)),  # summer: UTC+2
        ("2026-07-14T10:00:30", datetime(2026, 7, 14, 8, 0, 30, tzinfo=UTC)),  # seconds are allowed
        # 25 October 2026, 02:00–02:59 happens twice: the first time (summer time, the earlier instant)
        ("2026-10-25T01:59", datetime(2026, 10, 24, 23, 59, tzinfo=UTC)),
        ("2026-10-25T02:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("2026-10-25T03:00", datetime(2026, 10, 25, 2, 0, tzinfo=UTC)),
        # 29 March 2026, 02:00–02:59 never shows: read with the winter offset (02:30 is 03:30 summer time)
        ("2026-03-29T01:59", datetime(2026, 3, 29, 0, 59, tzinfo=UTC)),
        ("2026-03-29T02:30", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        ("2026-03-29T03:00", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    ],
)
def test_a_paris_wall_clock_time_in_utc(typed, utc):
    parsed = clock.parse_paris(typed)
    assert parsed == utc and parsed.utcoffset() == timedelta(0)
    assert clock.from_paris(datetime.fromisoformat(typed)) == utc


def test_an_offset_given_is_kept():
    assert clock.parse_paris("2026-10-25T02:30+01:00") == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    given = datetime(2026, 12, 2, 1, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert clock.from_paris(given) == datetime(2026, 12, 2, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("02/12/2026 01:30", "date et heure attendues (AAAA-MM-JJTHH:MM)"),
        ("2026-12-02T25:00", "date et heure attendues (AAAA-MM-JJTHH:MM)"),
        ("demain", "date et heure attendues (AAAA-MM-JJTHH:MM)"),
        ("0001-01-01T00:00", "date attendue entre 2000 et 2100"),  # would overflow in UTC
        ("1999-12-31T23:59", "date attendue entre 2000 et 2100"),
        ("2101-01-01T00:00", "date attendue entre 2000 et 2100"),
    ],
)
def test_what_is_not_a_date_time_of_the_years_in_use_is_refused_in_french(typed, message):
    with pytest.raises(ValueError) as error:
        clock.parse_paris(typed)
    assert str(error.value) == message
