"""Input models: every date they carry lies within the accepted years (no overflow further on), named when not."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from telesante.kit.errors import InvalidInput
from telesante.kit.schemas import INPUT_FIRST_YEAR, INPUT_LAST_YEAR, InputModel, parse_input


class _Visit(InputModel):
    day: date
    at: datetime | None = None
    others: list[date] = []


class _Plan(InputModel):
    visits: list[_Visit]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"day": "0001-01-01"}, "day"),
        ({"day": "9999-12-31"}, "day"),
        ({"day": "2026-12-05", "at": "0001-01-01T00:00:00+01:00"}, "at"),
        ({"day": "2026-12-05", "at": "9999-12-31T23:59:59-05:00"}, "at"),
        ({"day": "2026-12-05", "others": ["2026-12-06", "1799-12-31"]}, "others"),
    ],
)
def test_a_date_outside_the_accepted_years_is_refused_naming_its_field(data, field):
    with pytest.raises(InvalidInput) as refused:
        parse_input(_Visit, data)
    assert refused.value.field == field
    assert f"{INPUT_FIRST_YEAR}–{INPUT_LAST_YEAR}" in refused.value.message


def test_dates_within_the_years_and_nested_models_are_checked_alike():
    visit = parse_input(
        _Visit, {"day": f"{INPUT_FIRST_YEAR}-01-01", "at": datetime(2200, 12, 31, tzinfo=UTC).isoformat()}
    )
    assert visit.day == date(INPUT_FIRST_YEAR, 1, 1) and visit.at.year == INPUT_LAST_YEAR
    assert parse_input(_Visit, {"day": "2026-12-05", "at": None}).at is None
    with pytest.raises(InvalidInput) as refused:
        parse_input(_Plan, {"visits": [{"day": "2026-12-05"}, {"day": "2201-01-01"}]})
    assert refused.value.field == "visits.1.day"
