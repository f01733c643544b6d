"""Forms as data: each offer's structured form is a versioned definition (YAML files in ``form_definitions/``,
``<code>.v<version>.yaml``), rendered by the UI, validated here field by field, stored with the request (code,
version, normalised answers) and mapped to FHIR (Questionnaire / QuestionnaireResponse).

A definition never changes once published: a new version is a new file, and a request keeps the version it was
filled with. ``validate_answers`` turns raw form input (strings from HTML forms or JSON values) into typed values,
computes derived fields (e.g. the Glasgow total) and reports every faulty field at once."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from telesante.kit import clock
from telesante.kit.errors import InvalidInput, NotFound

DEFINITIONS_DIR = Path(__file__).parent / "form_definitions"
_FILE_NAME = re.compile(r"^(?P<code>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.yaml$")

FieldType = Literal[
    "text",
    "textarea",
    "integer",
    "decimal",
    "date",
    "datetime",
    "choice",
    "multichoice",
    "boolean",
    "computed",
    "attachments",
]
ATTACHMENT_TYPES = ("application/pdf", "image/jpeg", "image/png")
NONE_CODE = "aucun"  # in a multiple choice, "none" excludes every other answer


class _Strict(BaseModel):
    """A misspelt key in a definition file (or a YAML comma splitting a label) is an error, not a silent drop."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Choice(_Strict):
    code: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    score: int | None = None  # scored scales (e.g. GCS components): the points this answer is worth


class Condition(_Strict):
    """A field is required (or shown) only when another field's answer is (not) among some codes."""

    field: str
    in_: list[Any] | None = Field(default=None, alias="in")
    not_in: list[Any] | None = None

    def holds(self, answers: dict[str, Any]) -> bool:
        value = answers.get(self.field)
        values = value if isinstance(value, list) else [value]
        if self.in_ is not None:
            return any(v in self.in_ for v in values)
        if self.not_in is not None:
            return value not in (None, "", []) and all(v not in self.not_in for v in values)
        return value not in (None, "", [])


class FormField(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    type: FieldType
    required: bool = False
    required_if: Condition | None = None
    help: str = ""
    unit: str = ""
    min: float | None = None
    max: float | None = None
    max_length: int = 2000
    choices: list[Choice] = []
    # computed: the sum of the scores of these choice fields (e.g. GCS = E + V + M)
    sum_of: list[str] = []
    # attachments: how many files of which types the request must carry
    accept: list[str] = list(ATTACHMENT_TYPES)
    fhir_code: str | None = None  # LOINC code when one exists (e.g. 9269-2 GCS total)

    @model_validator(mode="after")
    def _coherent(self) -> FormField:
        if self.type in ("choice", "multichoice") and not self.choices:
            raise ValueError(f"{self.name}: a choice field needs choices")
        if self.type == "computed" and not self.sum_of:
            raise ValueError(f"{self.name}: a computed field needs sum_of")
        if self.type == "attachments" and not set(self.accept) <= set(ATTACHMENT_TYPES):
            raise ValueError(f"{self.name}: accept must be among {ATTACHMENT_TYPES}")
        return self

    def choice_label(self, code: str) -> str:
        return next((c.label for c in self.choices if c.code == code), code)


class Section(_Strict):
    title: str
    fields: list[FormField]


class FormDefinition(_Strict):
    code: str
    version: int
    title: str
    description: str = ""
    sources: list[str] = []
    sections: list[Section]
    # The expert's structured answer (e.g. the coded decision of a head-trauma opinion).
    answer: list[FormField] = []

    @model_validator(mode="after")
    def _unique_names(self) -> FormDefinition:
        for group in (self.fields, self.answer):
            names = [f.name for f in group]
            duplicated = {n for n in names if names.count(n) > 1}
            if duplicated:
                raise ValueError(f"duplicate field names {sorted(duplicated)}")
            known = set(names)
            for f in group:
                missing = {*f.sum_of, *([f.required_if.field] if f.required_if else [])} - known
                if missing:
                    raise ValueError(f"{f.name} refers to unknown fields {sorted(missing)}")
        return self

    @property
    def key(self) -> str:
        return f"{self.code}.v{self.version}"

    @property
    def fields(self) -> list[FormField]:
        return [f for s in self.sections for f in s.fields]

    def field(self, name: str) -> FormField | None:
        return next((f for f in (*self.fields, *self.answer) if f.name == name), None)

    def attachment_rules(self) -> list[FormField]:
        return [f for f in self.fields if f.type == "attachments"]


# --- registry ------------------------------------------------------------------------------------------------


@cache
def _registry() -> dict[tuple[str, int], FormDefinition]:
    forms: dict[tuple[str, int], FormDefinition] = {}
    for path in sorted(DEFINITIONS_DIR.glob("*.yaml")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise RuntimeError(f"{path.name}: form files are named <code>.v<version>.yaml")
        try:
            definition = FormDefinition.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError) as exc:
            raise RuntimeError(f"{path.name}: invalid form definition: {exc}") from exc
        if (definition.code, definition.version) != (match["code"], int(match["version"])):
            raise RuntimeError(f"{path.name}: code/version inside the file do not match its name")
        forms[(definition.code, definition.version)] = definition
    return forms


def all_forms() -> list[FormDefinition]:
    return list(_registry().values())


def latest_form(code: str) -> FormDefinition:
    versions = [f for (c, _), f in _registry().items() if c == code]
    if not versions:
        raise NotFound(f"Formulaire inconnu : « {code} ».")
    return max(versions, key=lambda f: f.version)


def get_form(code: str, version: int) -> FormDefinition:
    try:
        return _registry()[(code, version)]
    except KeyError:
        raise NotFound(f"Formulaire inconnu : « {code} » version {version}.") from None


def form_codes() -> set[str]:
    return {code for code, _ in _registry()}


# --- validation ----------------------------------------------------------------------------------------------


class FormErrors(InvalidInput):
    """Every faulty field of a form answer, each with a French message (the first one is the headline)."""

    def __init__(self, errors: dict[str, str]):
        first_field, first_message = next(iter(errors.items()))
        super().__init__(
            first_message,
            field=first_field,
            extra={"errors": [{"field": k, "message": v} for k, v in errors.items()]},
        )
        self.errors = errors


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or (isinstance(value, str) and not value.strip())


def _convert(f: FormField, value: Any) -> Any:
    """One answer to its typed, JSON-storable form; raises ValueError with the French reason."""
    if f.type in ("text", "textarea"):
        text = str(value).strip()
        if len(text) > f.max_length:
            raise ValueError(f"{f.max_length} caractères au plus")
        return text
    if f.type in ("integer", "decimal"):
        if isinstance(value, bool):
            raise ValueError("nombre attendu")
        try:
            number = Decimal(str(value).strip().replace(",", "."))
        except InvalidOperation:
            raise ValueError("nombre attendu" + (f" (en {f.unit})" if f.unit else "")) from None
        if not number.is_finite():
            raise ValueError("nombre attendu")
        if f.type == "integer":
            if number != number.to_integral_value():
                raise ValueError("nombre entier attendu")
            result: int | float = int(number)
        else:
            result = float(number)
        if f.min is not None and result < f.min:
            raise ValueError(f"valeur minimale {_number(f.min)}{' ' + f.unit if f.unit else ''}")
        if f.max is not None and result > f.max:
            raise ValueError(f"valeur maximale {_number(f.max)}{' ' + f.unit if f.unit else ''}")
        return result
    if f.type == "date":
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError("date attendue (AAAA-MM-JJ)") from None
    if f.type == "datetime":  # without an offset (typed in a form): Paris wall-clock time; stored in UTC
        return clock.parse_paris(str(value)).isoformat(timespec="minutes")
    if f.type == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "oui", "1", "on", "yes"):
            return True
        if text in ("false", "non", "0", "no", "off"):
            return False
        raise ValueError("oui ou non attendu")
    codes = [c.code for c in f.choices]
    if f.type == "choice":
        if str(value) not in codes:
            raise ValueError("choix non prévu (attendu : " + ", ".join(c.label for c in f.choices) + ")")
        return str(value)
    if f.type == "multichoice":
        values = value if isinstance(value, list) else [value]
        unknown = [str(v) for v in values if str(v) not in codes]
        if unknown:
            raise ValueError("choix non prévu : " + ", ".join(unknown))
        if NONE_CODE in values and len(set(map(str, values))) > 1:
            raise ValueError(f"« {f.choice_label(NONE_CODE)} » ne peut pas être coché avec d'autres choix")
        return [c for c in codes if c in {str(v) for v in values}]
    raise ValueError("champ non modifiable")  # computed / attachments are not answered directly


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value).replace(".", ",")


def validate_answers(
    fields: list[FormField],
    raw: dict[str, Any],
    *,
    attachment_types: list[str] | None = None,
    complete: bool = True,
) -> dict[str, Any]:
    """Typed answers for ``fields`` from ``raw``; every error at once (FormErrors). Unknown keys are refused,
    so that a client cannot store what the definition does not hold. ``attachment_types`` lists the content type
    of each file attached to the request (for ``attachments`` rules); None skips those rules. ``complete=False``
    (a draft) checks the values given but not what is missing."""
    errors: dict[str, str] = {}
    by_name = {f.name: f for f in fields}
    for name in raw:
        if name not in by_name:
            errors[name] = f"Champ inconnu dans ce formulaire : « {name} »."
    answers: dict[str, Any] = {}
    for f in fields:
        if f.type in ("computed", "attachments"):
            continue
        value = raw.get(f.name)
        if _empty(value) or (f.type == "boolean" and value is None):
            continue
        try:
            answers[f.name] = _convert(f, value)
        except ValueError as exc:
            errors[f.name] = f"« {f.label} » : {exc}."
    for f in fields:
        if f.type == "computed":
            parts = [answers.get(n) for n in f.sum_of]
            if all(p is not None for p in parts):
                answers[f.name] = sum(
                    next(c.score for c in by_name[n].choices if c.code == p) or 0
                    for n, p in zip(f.sum_of, parts, strict=True)
                )
            continue
        needed = complete and (f.required or (f.required_if is not None and f.required_if.holds(answers)))
        if f.type == "attachments":
            if needed and attachment_types is not None:
                matching = [t for t in attachment_types if t in f.accept]
                wanted = int(f.min or 1)
                if len(matching) < wanted:
                    errors[f.name] = f"« {f.label} » : au moins {wanted} fichier(s) à joindre."
            continue
        if needed and f.name not in answers and f.name not in errors:
            errors[f.name] = f"« {f.label} » : champ obligatoire."
    if errors:
        raise FormErrors(errors)
    return answers


def display_answers(fields: list[FormField], answers: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, French text) of each answered field, in form order: for pages, the PDF report and FHIR text."""
    shown: list[tuple[str, str]] = []
    for f in fields:
        if f.name not in answers:
            continue
        value = answers[f.name]
        if f.type == "choice":
            text = f.choice_label(value)
        elif f.type == "multichoice":
            text = ", ".join(f.choice_label(v) for v in value)
        elif f.type == "boolean":
            text = "oui" if value else "non"
        elif f.type == "date":
            text = date.fromisoformat(value).strftime("%d/%m/%Y")
        elif f.type == "datetime":
            text = clock.format_paris(datetime.fromisoformat(value))
        elif isinstance(value, float):
            text = _number(value)
        else:
            text = str(value)
        shown.append((f.label, f"{text} {f.unit}".strip() if f.unit and f.type != "computed" else text))
    return shown
