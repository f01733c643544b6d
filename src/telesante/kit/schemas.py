"""Pydantic helpers: strict input models with French messages, and ValidationError -> InvalidInput."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

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


class InputModel(BaseModel):
    """Base of every *Create / *Update schema: unknown fields are refused, strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
