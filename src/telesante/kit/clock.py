"""The one clock of the application: UTC-aware, replaceable in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
# Dates typed by a person are real ones: a year outside these is a typo (and year 1 would overflow in UTC).
FIRST_YEAR, LAST_YEAR = 2000, 2100

_source: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """Current time, always timezone-aware UTC."""
    return _source()


def set_clock(source: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests). ``None`` restores the system clock."""
    global _source
    _source = source or (lambda: datetime.now(UTC))


def as_utc(value: datetime) -> datetime:
    """Databases such as SQLite give naive datetimes back: they are UTC by construction."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_paris(value: datetime) -> datetime:
    return as_utc(value).astimezone(PARIS)


def format_paris(value: datetime | None, with_seconds: bool = False) -> str:
    if value is None:
        return ""
    fmt = "%d/%m/%Y %H:%M:%S" if with_seconds else "%d/%m/%Y %H:%M"
    return to_paris(value).strftime(fmt)


def from_paris(value: datetime) -> datetime:
    """A date-time typed by a person, in UTC. Without an offset (an HTML ``datetime-local`` field never has one)
    it is Paris wall-clock time; with one, that offset is kept.

    Around the changes of time the wall clock is read as Python reads it (``fold=0``), on purpose:
    - the hour repeated on the last Sunday of October (02:00–02:59 twice) is its first occurrence, still summer
      time — the earlier instant, the cautious reading for the onset of symptoms;
    - the hour skipped on the last Sunday of March (02:00–02:59 never shown) is read with the winter offset, as a
      clock not yet put forward shows it: 02:30 is 01:30 UTC, i.e. 03:30 summer time.

    Raises ``ValueError`` with a French message (for pydantic or a page to name the field) when the year is not
    between ``FIRST_YEAR`` and ``LAST_YEAR``.
    """
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"date attendue entre {FIRST_YEAR} et {LAST_YEAR}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=PARIS)
    return as_utc(value)


def parse_paris(text: str) -> datetime:
    """The value of an HTML ``datetime-local`` field (``2026-12-02T01:30``, seconds optional), Paris wall-clock
    time, in UTC (see ``from_paris``). Raises ``ValueError`` with a French message."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("date et heure attendues (AAAA-MM-JJTHH:MM)") from None
    return from_paris(value)
