"""Small helpers shared by every pages.py to read HTML forms and word their errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from telesante.kit.errors import DomainError


def form_values(form, names: Iterable[str]) -> dict[str, str]:
    """The submitted, trimmed values of these fields; empty ones are left out so schema defaults apply."""
    values: dict[str, str] = {}
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            values[name] = value.strip()
    return values


def labelled_message(exc: DomainError, labels: Mapping[str, str]) -> str:
    """French message naming the field by its label (parse_input names it by its code name)."""
    errors = exc.extra.get("errors")
    if not errors:
        return exc.message
    label = labels.get(exc.field or "")
    if label:
        return f"{label} : {errors[0]['message']}"
    return errors[0]["message"] if exc.field == "corps" else exc.message
