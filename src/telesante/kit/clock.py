"""The one clock of the application: UTC-aware, replaceable in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")

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
