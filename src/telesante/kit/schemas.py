"""Pydantic helpers: strict input models with French messages, and ValidationError -> InvalidInput."""

from __future__ import annotations

from datetime import date
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from telesante.kit.errors import InvalidInput

S = TypeVar("S", bound=BaseModel)

_MESSAGES = {
    "missing": "champ obligatoire",
    "string_too_short": "trop court",
    "string_too_long": "trop long (au plus {max_length} caractères)",
    "string_type": "doit être un texte",
    "int_parsing": "doit être un nombre entier",
    "int_type": "doit être un nombre entier",
    "float_parsing": "doit être un nombre",
    "float_type": "doit être un nombre",
    "bool_parsing": "doit valoir vrai ou faux",
    "bool_type": "doit valoir vrai ou faux",
    "date_from_datetime_parsing": "date attendue au format AAAA-MM-JJ",
    "date_parsing": "date attendue au format AAAA-MM-JJ",
    "date_type": "date attendue au format AAAA-MM-JJ",
    "datetime_parsing": "date et heure attendues au format ISO 8601",
    "datetime_type": "date et heure attendues au format ISO 8601",
    "uuid_parsing": "identifiant invalide",
    "uuid_type": "identifiant invalide",
    "enum": "valeur inconnue (attendu : {expected})",
    "literal_error": "valeur inconnue (attendu : {expected})",
    "greater_than_equal": "doit être supérieur ou égal à {ge}",
    "less_than_equal": "doit être inférieur ou égal à {le}",
    "greater_than": "doit être supérieur à {gt}",
    "less_than": "doit être inférieur à {lt}",
    "value_error": "{error}",
    "extra_forbidden": "champ inconnu",
    "json_invalid": "JSON invalide",
    "model_attributes_type": "objet JSON attendu",
    "model_type": "objet JSON attendu",
    "dict_type": "objet JSON attendu",
    "list_type": "liste attendue",
    "too_long": "trop d'éléments",
    "value_not_a_valid_email": "adresse électronique invalide",
}


# Every date an input carries lies within these years. A year such as 0001 or 9999 overflows as soon as it is moved to
# UTC or a day on (a 500 found by schemathesis on a query parameter, 2026-12-05), and no clinical or administrative date
# lies outside them (a birth date, a consent, an appointment). Domains bound further where they must (appointments and
# agendas: kit.clock.FIRST_YEAR–LAST_YEAR).
INPUT_FIRST_YEAR, INPUT_LAST_YEAR = 1800, 2200


class InputModel(BaseModel):
    """Base of every *Create / *Update schema: unknown fields are refused, strings are trimmed, dates lie within
    ``INPUT_FIRST_YEAR``–``INPUT_LAST_YEAR``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="after")
    def _dates_within_years(self) -> Self:
        # After the fields' own validators: a domain's rule (an appointment between 2000 and 2100, a birth date after
        # 1880) speaks first; this one catches the dates no rule bounds. Raised as the field's own error (nested
        # models prefix it with their place: ``visits.1.day``).
        errors: list[InitErrorDetails] = []
        for name, value in self:
            for item in value if isinstance(value, list | tuple | set | frozenset) else (value,):
                if isinstance(item, date) and not INPUT_FIRST_YEAR <= item.year <= INPUT_LAST_YEAR:
                    message = f"date hors des années acceptées ({INPUT_FIRST_YEAR}–{INPUT_LAST_YEAR})"
                    error = PydanticCustomError("value_error", "{error}", {"error": message})
                    errors.append(InitErrorDetails(type=error, loc=(name,), input=item))
                    break
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def french_message(error: dict[str, Any]) -> str:
    template = _MESSAGES.get(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if error.get("type") == "value_error":
        message = str(ctx.get("error", error.get("msg", "")))
        if message.startswith("value is not a valid email address"):
            return "adresse électronique invalide"
        return message.removeprefix("Value error, ")
    if template is None:
        return "valeur invalide"
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template.split("{")[0].strip() or "valeur invalide"


def field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form", "cookie")]
    return ".".join(parts) or "corps"


def errors_to_fields(errors: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"field": field_name(e.get("loc", ())), "message": french_message(e)} for e in errors]


def parse_input(schema: type[S], data: dict[str, Any]) -> S:
    """Validate form data into a schema, raising InvalidInput naming the first bad field."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        fields = errors_to_fields(exc.errors())
        first = fields[0]
        raise InvalidInput(
            f"{first['field']} : {first['message']}", field=first["field"], extra={"errors": fields}
        ) from None
