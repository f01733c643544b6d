"""Small helpers shared by every pages.py to read HTML forms and word their errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from telesante.kit import clock
from telesante.kit.errors import DomainError, InvalidInput


def form_values(form, names: Iterable[str]) -> dict[str, str]:
    """The submitted, trimmed values of these fields; empty ones are left out so schema defaults apply."""
    values: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            values[name] = value.strip()
    return values


def paris_datetime(value: object, field: str) -> datetime | None:
    """An ``<input type="datetime-local">`` value, typed in Paris wall-clock time, in UTC (DST rules and year range:
    ``clock.from_paris``); ``None`` when blank. Bad input raises ``InvalidInput`` naming the field, shaped as
    ``parse_input`` shapes it (so ``labelled_message`` can put the field's label in front)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return clock.parse_paris(value)
    except ValueError as exc:
        message = str(exc)
        raise InvalidInput(
            f"{field} : {message}", field=field, extra={"errors": [{"field": field, "message": message}]}
        ) from None


def labelled_message(exc: DomainError, labels: Mapping[str, str]) -> str:
    """French message naming the field by its label (parse_input names it by its code name)."""
    errors = exc.extra.get("errors")
    if not errors:
        return exc.message
    label = labels.get(exc.field or "")
    if label:
        return f"{label} : {errors[0]['message']}"
    return errors[0]["message"] if exc.field == "corps" else exc.message
