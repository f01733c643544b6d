"""Remote monitoring over FHIR R4: devices and their gateways post Observations (``POST /fhir/Observation``) or batch
Bundles of them (``POST /fhir``, type ``batch``), with LOINC codes and UCUM units; the blood-pressure panel (85354-9)
carries systolic and diastolic as components.

A batch is not all-or-nothing: each entry gets its own response — ``201 Created`` (with its location), ``200 OK``
(the same reading was already stored) or ``422`` with an OperationOutcome naming the entry, the element and why.
Within one entry, a blood-pressure panel is stored whole or not at all.

What an Observation must carry:
- ``subject``: ``Patient/<id>`` of a patient enrolled in a programme of the sender's team;
- ``code``: a LOINC coding of a measure followed (``monitoring.clinical.MEASURES``) or the BP panel, or a code of
  ``urn:telesante:telesurveillance`` (hours of ventilation, the questionnaires' symptoms);
- ``valueQuantity`` with a UCUM ``code`` (or ``unit``), or for the panel a ``component`` per pressure; a
  questionnaire's symptom carries ``valueBoolean`` (true: worse than usual);
- ``effectiveDateTime`` (or ``effectiveInstant``, ``effectivePeriod.start``) with a time zone;
- optionally ``device`` (``identifier.value`` = the serial number, or ``Device/<id>``), which must be lent to this
  patient, and ``identifier``, the device's id of the reading (a reading sent twice is then stored once).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.auth.principal import Principal
from telesante.db import commit_part
from telesante.fhir import workflow
from telesante.fhir.tele_requests import InvalidResource, _expect, _json
from telesante.kit import clock, cooperative
from telesante.kit.errors import NotFound
from telesante.kit.schemas import french_message
from telesante.monitoring import clinical
from telesante.monitoring import service as monitoring
from telesante.monitoring.clinical import BLOOD_PRESSURE_PANEL, LOINC, SYSTEMS, UCUM, ReadingRefused
from telesante.monitoring.models import Observation as StoredObservation
from telesante.monitoring.models import ReadingSource

OBSERVATION_PREFIX = "tls-"
_ID = re.compile(r"^tls-([0-9a-f]{32})$")
_PANEL_PARTS = ("8480-6", "8462-4")
_ACCEPTED_STATUS = {"final", "amended", "corrected", "preliminary"}
_ELEMENTS = {
    "code": "code",
    "unit": "valueQuantity.code",
    "value": "valueQuantity.value",
    "effective": "effectiveDateTime",
    "subject": "subject",
    "device": "device",
    "status": "status",
    "resourceType": "resourceType",
}
_STATUS_TEXT = {201: "201 Created", 200: "200 OK", 422: "422 Unprocessable Entity", 400: "400 Bad Request"}


def observation_id(id_: uuid.UUID) -> str:
    return f"{OBSERVATION_PREFIX}{id_.hex}"


@dataclass
class _Parsed:
    items: list[monitoring.ReadingItem]
    problem: tuple[str, str] | None = None  # (message, element)


def _problem(message: str, element: str) -> _Parsed:
    return _Parsed([], (message, element))


def _effective(resource: Observation) -> datetime | None:
    if resource.effectiveDateTime is not None:
        value = resource.effectiveDateTime
    elif resource.effectiveInstant is not None:
        value = resource.effectiveInstant
    elif resource.effectivePeriod is not None and resource.effectivePeriod.start is not None:
        value = resource.effectivePeriod.start
    else:
        return None
    if not isinstance(value, datetime):  # a date alone (2026-12-01) places no reading in the day
        raise ReadingRefused(
            "Date de la mesure sans heure : date et heure avec fuseau attendues.", field="effective"
        )
    return value


def _loinc(concept) -> str | None:
    for coding in (concept.coding if concept is not None else None) or []:
        if coding.system == LOINC and coding.code:
            return coding.code
    return None


def _coding(concept) -> tuple[str, str] | None:
    """The first coding of a system we know (LOINC, then Télésanté's own codes)."""
    codings = [c for c in (concept.coding if concept is not None else None) or [] if c.code]
    for system in SYSTEMS:
        for coding in codings:
            if coding.system == system:
                return system, coding.code
    return None


def _quantity(quantity) -> tuple[Any, str | None]:
    if quantity is None or quantity.value is None:
        raise ReadingRefused("Valeur absente : valueQuantity.value attendu.", field="value")
    if quantity.system not in (None, UCUM):
        raise ReadingRefused(f"Unité hors UCUM (système « {quantity.system} ») : UCUM attendu.", field="unit")
    return quantity.value, quantity.code or quantity.unit


# --- the common shape of a device's Observation, read without building the full model ------------------------------
#
# fhir.resources validates every element of an Observation in about 100 µs; a gateway posts thousands per batch, all
# of the same simple shape. An Observation made only of the elements below, each of the expected JSON type and FHIR
# lexical form (code, uri, dateTime with seconds and a zone, decimal), is read directly into the attributes
# ``parse_observation`` uses; anything else (another element, another form, a doubt) goes through fhir.resources,
# which accepts it or names what is wrong. The test ``test_plain_reading_agrees_with_fhir_resources`` checks that
# whatever this path accepts, fhir.resources accepts too and reads the same. (docs/adr/0004-…)

_PLAIN_KEYS = frozenset(
    {
        "resourceType",
        "status",
        "identifier",
        "category",
        "code",
        "subject",
        "device",
        "effectiveDateTime",
        "valueQuantity",
        "component",
    }
)
_CODE = re.compile(r"^[^\s]+( [^\s]+)*$")
_URI = re.compile(r"^\S+$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
_REFERENCE = re.compile(r"^\S+$")


def _string(value: Any) -> bool:
    return isinstance(value, str) and value != "" and value.strip() == value


def _plain_coding(value: Any) -> SimpleNamespace | None:
    if not isinstance(value, dict) or not value or not set(value) <= {"system", "code", "display"}:
        return None
    system, code, display = value.get("system"), value.get("code"), value.get("display")
    if system is not None and not (isinstance(system, str) and _URI.match(system)):
        return None
    if code is not None and not (isinstance(code, str) and _CODE.match(code)):
        return None
    if display is not None and not _string(display):
        return None
    return SimpleNamespace(system=system, code=code, display=display)


def _plain_concept(value: Any) -> SimpleNamespace | None:
    if not isinstance(value, dict) or not value or not set(value) <= {"coding", "text"}:
        return None
    coding = value.get("coding")
    if coding is not None and (not isinstance(coding, list) or not coding):
        return None
    codings = [_plain_coding(c) for c in coding or []]
    if any(c is None for c in codings) or ("text" in value and not _string(value["text"])):
        return None
    return SimpleNamespace(coding=codings or None, text=value.get("text"))


def _plain_quantity(value: Any) -> SimpleNamespace | None:
    if not isinstance(value, dict) or not value or not set(value) <= {"value", "unit", "system", "code"}:
        return None
    number = value.get("value")
    if number is not None and (
        isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number)
    ):
        return None
    unit, system, code = value.get("unit"), value.get("system"), value.get("code")
    if unit is not None and not _string(unit):
        return None
    if system is not None and not (isinstance(system, str) and _URI.match(system)):
        return None
    if code is not None and not (isinstance(code, str) and _CODE.match(code)):
        return None
    return SimpleNamespace(value=number, unit=unit, system=system, code=code)


def plain_observation(data: dict[str, Any]) -> SimpleNamespace | None:
    """A device Observation of the common shape, read directly (None: let fhir.resources read it)."""
    if not set(data) <= _PLAIN_KEYS or data.get("status") not in _ACCEPTED_STATUS:
        return None
    code = _plain_concept(data.get("code"))
    if code is None:
        return None
    subject = data.get("subject")
    if not (
        isinstance(subject, dict)
        and set(subject) == {"reference"}
        and isinstance(subject["reference"], str)
        and _REFERENCE.match(subject["reference"])
    ):
        return None
    when = data.get("effectiveDateTime")
    if when is not None:
        if not (isinstance(when, str) and _DATETIME.match(when)):
            return None
        try:
            when = datetime.fromisoformat(when)
        except ValueError:  # 13th month, 31 February: fhir.resources names the error
            return None
    device = None
    if "device" in data:
        raw = data["device"]
        if not isinstance(raw, dict) or not raw or not set(raw) <= {"identifier", "reference"}:
            return None
        identifier = raw.get("identifier")
        if identifier is not None and not (
            isinstance(identifier, dict)
            and identifier
            and set(identifier) <= {"system", "value"}
            and all(_string(v) for v in identifier.values())
        ):
            return None
        if "reference" in raw and not (
            isinstance(raw["reference"], str) and _REFERENCE.match(raw["reference"])
        ):
            return None
        device = SimpleNamespace(
            identifier=SimpleNamespace(value=identifier.get("value"), system=identifier.get("system"))
            if identifier
            else None,
            reference=raw.get("reference"),
        )
    identifiers = data.get("identifier")
    if identifiers is not None:
        if (
            not isinstance(identifiers, list)
            or not identifiers
            or not all(
                isinstance(i, dict)
                and i
                and set(i) <= {"system", "value"}
                and all(_string(v) for v in i.values())
                for i in identifiers
            )
        ):
            return None
        identifiers = [SimpleNamespace(system=i.get("system"), value=i.get("value")) for i in identifiers]
    if "category" in data:
        if not isinstance(data["category"], list) or not data["category"]:
            return None
        if any(_plain_concept(c) is None for c in data["category"]):
            return None
    quantity = None
    if "valueQuantity" in data:
        quantity = _plain_quantity(data["valueQuantity"])
        if quantity is None:
            return None
    components = None
    if "component" in data:
        if not isinstance(data["component"], list) or not data["component"]:
            return None
        components = []
        for raw in data["component"]:
            if not isinstance(raw, dict) or set(raw) != {"code", "valueQuantity"}:
                return None
            part_code, part_quantity = _plain_concept(raw["code"]), _plain_quantity(raw["valueQuantity"])
            if part_code is None or part_quantity is None:
                return None
            components.append(SimpleNamespace(code=part_code, valueQuantity=part_quantity))
    return SimpleNamespace(
        status=data["status"],
        subject=SimpleNamespace(reference=subject["reference"]),
        device=device,
        identifier=identifiers,
        code=code,
        effectiveDateTime=when,
        effectiveInstant=None,
        effectivePeriod=None,
        valueQuantity=quantity,
        component=components,
    )


def parse_observation(data: Any, index: int, first_item: int) -> _Parsed:
    """One posted Observation as readings (two for the blood-pressure panel), or the reason it is refused."""
    if not isinstance(data, dict) or data.get("resourceType") != "Observation":
        return _problem("Une ressource Observation est attendue.", "resourceType")
    resource = plain_observation(data)
    try:
        if resource is None:
            resource = Observation.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ())) or "Observation"
        return _problem(f"Observation invalide — {where} : {french_message(error)}.", where)
    if resource.status not in _ACCEPTED_STATUS:
        return _problem(
            f"Statut « {resource.status} » : seules les mesures final, amended, corrected ou preliminary sont reçues.",
            "status",
        )
    patient_id = workflow.reference_id(resource.subject.reference if resource.subject else None, "Patient")
    if patient_id is None:
        return _problem("subject : référence Patient/<id> attendue.", "subject")
    serial = None
    if resource.device is not None:
        if resource.device.identifier is not None and resource.device.identifier.value:
            serial = resource.device.identifier.value
        elif resource.device.reference:
            serial = f"Device/{resource.device.reference.rpartition('/')[2]}"
    identifier = None
    for found in resource.identifier or []:
        if found.value:
            identifier = f"{found.system or ''}|{found.value}"
            break
    coding = _coding(resource.code)
    system, code = coding if coding is not None else (LOINC, None)
    try:
        effective = _effective(resource)
        if effective is None:
            raise ReadingRefused("Date de la mesure absente : effectiveDateTime attendu.", field="effective")
        if code is None:
            raise ReadingRefused("code : un codage LOINC (http://loinc.org) est attendu.", field="code")
        parts: list[tuple[str, Any, str | None]] = []
        if system != LOINC and clinical.find_measure(code, system).is_answer:
            answer = getattr(resource, "valueBoolean", None)
            if answer is None:
                raise ReadingRefused(
                    "Réponse au questionnaire : valueBoolean attendu (true : plus que d'habitude).",
                    field="value",
                )
            normalised = clinical.normalise(code, answer, None, system=system)
            return _Parsed(
                [
                    monitoring.ReadingItem(
                        first_item,
                        patient_id,
                        code,
                        answer,
                        None,
                        effective,
                        system=system,
                        device_serial=serial,
                        identifier=identifier,
                        normalised=normalised,
                    )
                ]
            )
        if code == BLOOD_PRESSURE_PANEL:
            components = {(_loinc(c.code) or ""): c for c in resource.component or []}
            for part in _PANEL_PARTS:
                if part not in components:
                    raise ReadingRefused(
                        f"Panel de pression artérielle sans composant {part} (systolique 8480-6, diastolique 8462-4).",
                        field="code",
                    )
                value, unit = _quantity(components[part].valueQuantity)
                parts.append((part, value, unit))
        else:
            value, unit = _quantity(resource.valueQuantity)
            parts.append((code, value, unit))
        # the panel is stored whole or not at all: check every part first
        normalised = [clinical.normalise(part, value, unit, system=system) for part, value, unit in parts]
    except ReadingRefused as refused:
        return _problem(refused.message, refused.field or "Observation")
    items = [
        monitoring.ReadingItem(
            first_item + offset,
            patient_id,
            part,
            float(value) if isinstance(value, Decimal) else value,
            unit,
            effective,
            system=system,
            device_serial=serial,
            identifier=(f"{identifier}#{part}" if code == BLOOD_PRESSURE_PANEL else identifier)
            if identifier
            else None,
            normalised=normalised[offset],
        )
        for offset, (part, value, unit) in enumerate(parts)
    ]
    return _Parsed(items)


async def _resolve_device_references(session: AsyncSession, parsed: list[_Parsed]) -> None:
    """``Device/<id>`` references become the device's serial number (unknown ids stay unknown: refused later)."""
    named: list[tuple[monitoring.ReadingItem, uuid.UUID | None]] = []
    for entry in parsed:
        for item in entry.items:
            if item.device_serial and item.device_serial.startswith("Device/"):
                try:
                    named.append((item, uuid.UUID(item.device_serial.removeprefix("Device/"))))
                except ValueError:
                    named.append((item, None))
    if not named:
        return
    serials = await monitoring.device_serials(session, {id_ for _item, id_ in named if id_ is not None})
    for item, device_id in named:
        item.device_serial = serials.get(device_id) or item.device_serial.removeprefix("Device/")


def _outcome(message: str, element: str | None, prefix: str) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": "error", "code": "processing", "diagnostics": message}
    if element:
        issue["expression"] = [f"{prefix}{_ELEMENTS.get(element, element)}"]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


async def _parse_all(resources: list[Any]) -> list[_Parsed]:
    parsed: list[_Parsed] = []
    next_item = 0
    for index, data in enumerate(resources):
        await cooperative.pause(index)
        entry = parse_observation(data, index, next_item)
        next_item += len(entry.items)
        parsed.append(entry)
    return parsed


async def _ingest(
    session: AsyncSession, principal: Principal, parsed: list[_Parsed], judge_later: bool = False
) -> tuple[list[tuple[int, str | None, str, str | None]], monitoring.Pending | None]:
    """(status, location, refusal message, element refused) per posted Observation, parsed by ``_parse_all``, and
    with ``judge_later`` the enrolments whose rules are left to judge (``monitoring.record_readings``)."""
    await _resolve_device_references(session, parsed)
    items = [item for entry in parsed for item in entry.items]
    result = await monitoring.record_readings(
        session, principal, items, ReadingSource.DEVICE, judge_later=judge_later
    )
    by_item = {outcome.index: outcome for outcome in result.outcomes}
    answers = []
    for entry in parsed:
        if entry.problem is not None:
            answers.append((422, None, entry.problem[0], entry.problem[1]))
            continue
        outcomes = [by_item[item.index] for item in entry.items]
        refused = next((o for o in outcomes if o.status == "refused"), None)
        if refused is not None:
            answers.append((422, None, refused.message, refused.field))
            continue
        ids = [id_ for o in outcomes for id_ in o.observation_ids]
        status = 201 if any(o.status == "created" for o in outcomes) else 200
        answers.append((status, f"Observation/{observation_id(ids[0])}" if ids else None, "", None))
    return answers, result.pending


async def create_observation(
    session: AsyncSession, principal: Principal, body: bytes
) -> tuple[int, str | None]:
    """POST /fhir/Observation: (201 created | 200 already stored, location); a refusal raises (422)."""
    data = _expect(_json(body), "Observation")
    [(status, location, message, element)], _ = await _ingest(session, principal, await _parse_all([data]))
    if status == 422:
        raise ReadingRefused(
            message, field=f"Observation.{_ELEMENTS.get(element, element)}" if element else None
        )
    return status, location


@dataclass
class PreparedBatch:
    """A batch Bundle of Observations read and checked, before anything is stored: what ``batch`` stores."""

    entries: int
    misplaced: dict[int, str]  # entry index → why it is not an Observation creation
    kept: list[int]  # indexes of the Observation entries, in order
    parsed: list[_Parsed]  # one per kept entry


async def prepare_batch(data: dict[str, Any]) -> PreparedBatch:
    """Read a batch Bundle's entries (no database): the route calls it before the request's transaction begins, so
    that on SQLite a gateway's parsing never holds the write lock (``db.WriteQueue``)."""
    entries = data.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidResource("Bundle.entry : liste attendue.", field="entry")
    if len(entries) > cooperative.BULK_ENTRIES:
        cooperative.bulk()  # a device gateway's batch gives way to single readings and clicks (kit/cooperative.py)
    resources: list[Any] = []
    misplaced: dict[int, str] = {}
    for index, entry in enumerate(entries):
        request = entry.get("request") if isinstance(entry, dict) else None
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if (
            not isinstance(request, dict)
            or request.get("method") != "POST"
            or str(request.get("url", "")).strip("/") != "Observation"
        ):
            misplaced[index] = (
                "seule la création d'observations (POST Observation) est prise en charge en lot ; une demande "
                "(ServiceRequest, Task, QuestionnaireResponse) se crée par une transaction (Bundle.type "
                "« transaction »)."
            )
        else:
            resources.append((index, resource))
    kept = [index for index, _ in resources]
    return PreparedBatch(len(entries), misplaced, kept, await _parse_all([r for _, r in resources]))


def commit_every(session: AsyncSession, part: int) -> int | None:
    """How many entries of a batch go in one transaction: on SQLite, ``part`` (``TELESANTE_SQLITE_BATCH_PART``); on
    PostgreSQL, the whole batch (``None``).

    SQLite has one writer. A 500-reading batch stored and evaluated in one transaction held the write lock for a
    hundred milliseconds and more, and an operator's click or a patient's single reading waited for all of it
    (``db.WriteQueue`` lets them in between two transactions, not within one). The entries of a FHIR batch have no
    interdependencies and each succeeds or fails on its own (FHIR R4, RESTful API, "Batch/Transaction", http.html;
    unlike a transaction Bundle), so storing them in several transactions changes no answer: a reading repeated in a
    later part is answered as the duplicate it is, and each part's patients are evaluated on everything stored so
    far. Each commit costs SQLite its write-ahead log pages again (docs/performance.md: smaller parts, shorter waits,
    fewer readings per second). On PostgreSQL writers do not exclude each other, and each part would cost its round
    trips again."""
    return part if session.bind.dialect.name == "sqlite" else None


class PartSizer:
    """How many entries the next part of a batch holds on SQLite, so that it holds the write lock for about a time
    budget (``TELESANTE_SQLITE_PART_MS``) whatever the machine's speed: a click or a patient's reading waits for one
    part at most, and a part's time is what it waits. The time an entry costs is learned from the parts stored so
    far in this process (a moving average, from parts of at least ``MIN_ENTRIES``: a part's fixed statements weigh
    on smaller ones); until then, and with a budget of 0, parts are of the configured size
    (``TELESANTE_SQLITE_BATCH_PART``), which is also their largest."""

    MIN_ENTRIES = 20
    WEIGHT = 0.3  # of the latest part in the average

    def __init__(self) -> None:
        self.seconds_per_entry: float | None = None

    def size(self, largest: int, budget_seconds: float) -> int:
        if budget_seconds <= 0 or self.seconds_per_entry is None:
            return largest
        return min(largest, max(self.MIN_ENTRIES, int(budget_seconds / self.seconds_per_entry)))

    def learn(self, entries: int, seconds: float) -> None:
        if entries < self.MIN_ENTRIES or seconds <= 0:
            return
        latest = seconds / entries
        known = self.seconds_per_entry
        self.seconds_per_entry = latest if known is None else known + self.WEIGHT * (latest - known)


# one per process: SQLite's write lock is one per database, and a database is one per process
PARTS = PartSizer()

# PostgreSQL: how many enrolments a bulk batch judges per transaction. Judging an enrolment locks its row until the
# transaction commits (one patient's readings are judged one transaction at a time across instances); a reading of
# one of them, from the patient's page or another gateway, waits for that. In groups of 100, a single reading waits
# for a fifth of a 500-reading batch's rules at most, instead of all of them and the batch's storing (measured, with
# groups of 250 and 500: docs/performance.md, remote monitoring, eighth session).
JUDGE_GROUP = 100


async def batch(
    session: AsyncSession,
    principal: Principal,
    prepared: PreparedBatch,
    sqlite_part: int = 200,
    sqlite_part_ms: int = 0,
) -> dict[str, Any]:
    """POST /fhir with a batch Bundle of Observations (read by ``prepare_batch``): one response per entry, in
    order. On SQLite the entries are stored in parts of at most ``sqlite_part``, one transaction each
    (``commit_every``), each sized to hold the write lock about ``sqlite_part_ms`` (``PartSizer``; 0: parts of
    ``sqlite_part``); the events of a part are announced as soon as it is committed."""
    misplaced = prepared.misplaced
    part = commit_every(session, sqlite_part)
    # PostgreSQL: a bulk batch's rules are judged after its readings commit, in short transactions (``JUDGE_GROUP``)
    judge_later = part is None and len(prepared.parsed) > cooperative.BULK_ENTRIES
    pending: monitoring.Pending | None = None
    results: list[tuple[int, str | None, str, str | None]] = []
    start, total = 0, len(prepared.parsed)
    while start < total:
        if start:
            await commit_part(session)  # the part before is kept and announced; the write lock passes on
            await cooperative.give_way()  # between two parts nothing is held: interactive requests go first
        if part is None:
            step = total
        else:
            # as few parts as the size allows, of equal sizes: none holds the lock longer than it must
            remaining = total - start
            parts_left = -(-remaining // PARTS.size(part, sqlite_part_ms / 1000))
            step = -(-remaining // parts_left)
            await session.connection()  # the part's transaction begins: SQLite's write lock is ours from here
            began = time.monotonic()
        # SQLite: a part's transaction holds the write lock, so a bulk batch does not wait for others within it.
        # PostgreSQL: it waits at its pauses while storing, where it holds no lock another request could want (its
        # observations are new rows; the token's last use and the audit chain come after); it judges without waiting.
        with cooperative.no_waiting() if part is not None else contextlib.nullcontext():
            answers_, pending = await _ingest(
                session, principal, prepared.parsed[start : start + step], judge_later=judge_later
            )
            results.extend(answers_)
        if part is not None:
            PARTS.learn(min(step, total - start), time.monotonic() - began)
        start += step
    if pending is not None:
        # PostgreSQL, a bulk batch: its readings (and their audit rows) are committed, then their rules judged in
        # groups, each its own short transaction holding its enrolments' rows (``EnrolmentRepository.lock_states``)
        await commit_part(session)
        groups = pending.groups(JUDGE_GROUP)
        for number, group in enumerate(groups):
            if number:
                # the group before is kept, its alerts announced and its enrolments' rows released
                await commit_part(session)
                await cooperative.give_way()
            with cooperative.no_waiting():  # the group's enrolment rows are held from the first statement
                await monitoring.judge(session, group, pending, last=number == len(groups) - 1)
    if part is not None or pending is not None:
        # Stored in parts or judged in groups: the last one is committed and announced now, before the answer's
        # hundreds of entries are built and serialised. Until then it would hold SQLite's write lock (every other
        # writer waits for it) or, on PostgreSQL, its enrolments' rows, and its alerts would wait for the answer.
        await commit_part(session)
    answers = dict(zip(prepared.kept, results, strict=True))
    # The answer is built as plain JSON (one entry per posted entry, thousands per batch): the shapes are those of
    # Bundle.entry.response and OperationOutcome, checked by the tests against fhir.resources.
    response_entries = []
    for index in range(prepared.entries):
        prefix = f"Bundle.entry[{index}].resource."
        if index in misplaced:
            response = {
                "status": _STATUS_TEXT[400],
                "outcome": _outcome(f"Bundle.entry[{index}] : {misplaced[index]}", None, prefix),
            }
        else:
            status, location, message, element = answers[index]
            if status == 422:
                response = {
                    "status": _STATUS_TEXT[422],
                    "outcome": _outcome(f"Bundle.entry[{index}] : {message}", element, prefix),
                }
            else:
                response = {"status": _STATUS_TEXT[status], "location": location}
        response_entries.append({"response": response})
    return {
        "resourceType": "Bundle",
        "type": "batch-response",
        "timestamp": clock.now().isoformat(),
        "entry": response_entries,
    }


def is_batch(data: Any) -> bool:
    return isinstance(data, dict) and data.get("resourceType") == "Bundle" and data.get("type") == "batch"


def observation_resource(row: StoredObservation) -> Observation:
    measure = clinical.BY_KEY[row.measure]
    value: dict[str, Any] = (
        {"valueBoolean": row.value > 0.5}
        if measure.is_answer
        else {
            "valueQuantity": {
                "value": row.value,
                "unit": measure.unit_label,
                "system": UCUM,
                "code": row.unit,
            }
        }
    )
    category = "survey" if measure.is_answer else "laboratory" if row.measure == "glucose" else "vital-signs"
    if row.measure == "ventilation_hours":
        category = "activity"
    return Observation.model_validate(
        {
            "resourceType": "Observation",
            "id": observation_id(row.id),
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": category,
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": measure.system, "code": row.code, "display": measure.label}],
                "text": measure.label,
            },
            "subject": {"reference": f"Patient/{row.patient_id}"},
            "effectiveDateTime": clock.as_utc(row.effective_at).isoformat(),
            "issued": clock.as_utc(row.received_at).isoformat(),
            **value,
        }
    )


async def read_observation(
    session: AsyncSession, principal: Principal, observation_id_: str
) -> Observation | None:
    """GET /fhir/Observation/tls-…: a monitoring reading (None: not one of ours, the caller looks elsewhere)."""
    match = _ID.match(observation_id_)
    if match is None:
        return None
    row = await monitoring.get_observation(session, principal, uuid.UUID(hex=match[1]))
    if row is None:
        raise NotFound("Observation introuvable.")
    return observation_resource(row)


async def search_observations(
    session: AsyncSession,
    principal: Principal,
    patient_id: uuid.UUID,
    lower: datetime | None,
    upper: datetime | None,
) -> list[Observation]:
    """The patient's monitoring readings as Observations, newest first (the caller filters by code and category
    and pages)."""
    rows = await monitoring.patient_readings(session, principal, patient_id, lower, upper)
    return [observation_resource(row) for row in rows]
