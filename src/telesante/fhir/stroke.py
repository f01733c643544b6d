"""TéléAVC through the FHIR facade (read and search); the codes and the id scheme are in docs/domains/stroke.md.

- **Encounter** (class ``EMER``) — a stroke case: the emergency encounter around the neurology opinion. Status from
  the case's status, period from the arrival to the closure, statusHistory (arrived → triaged → in-progress) from the
  case's clocks, the emergency department's hospital as serviceProvider, the doctor who raised the alert (ATND) and
  the neurologist who took it (CON), basedOn the tele-expertise request (already ServiceRequest and Task, see
  ``fhir/tele_requests.py``), reasonCode stroke (SNOMED CT), hospitalization.destination the receiving centre once a
  transfer is decided. The call of the case (a video room opened without an appointment) is an Encounter of class
  ``VR`` (``fhir/scheduling.py``) whose partOf names the case.
- **Observation** — what the case measured: each NIHSS (total, LOINC 72089-6, the 15 items as components), blood
  pressure and weight (FHIR vital-signs profiles), glucose, platelets and INR (laboratory).

An Encounter id is a video room's id or a stroke case's id, and the Encounter search serves both kinds in one Bundle
(``search_encounters``). Each kind keeps its own one rule: a case the stroke case's (``StrokeCaseRepository.visible``),
a call the call's (``video.visible_room``; for a teleconsultation's call, its appointment's). Whoever cannot see
one gets 404 or does not find it. Every read and every Encounter on a search's page is audited with its patient.

- **ServiceRequest / Task of the neurology opinion** (``read_request``): read by the request's rule, or else by the
  case's rule — the receiving centre of a transfer sees the case, so it reads what its Encounter is based on (read
  only; the request's pages, JSON API, call, QuestionnaireResponse and DiagnosticReport keep the request's rule).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.fhir import monitoring as fhir_monitoring
from telesante.fhir import scheduling as fhir_scheduling
from telesante.fhir import tele_requests
from telesante.fhir.search import InvalidSearch, SearchQuery, parse_date_range, reference_param, resource_id
from telesante.kit import clock
from telesante.kit.errors import NotFound
from telesante.kit.pagination import Page
from telesante.offers import service as offer_service
from telesante.requests.repository import RequestFound, RequestRepository
from telesante.stroke.clinical import NIHSS_BY_CODE, NIHSS_ITEMS, UNTESTABLE
from telesante.stroke.models import (
    TRANSPORT_LABELS,
    CaseStatus,
    Milestone,
    NihssAssessment,
    NihssRole,
    StrokeCase,
)
from telesante.stroke.repository import MilestoneRepository, NihssRepository, StrokeCaseRepository
from telesante.video import service as video
from telesante.video.models import VideoRoom

# --- code systems ---------------------------------------------------------------------------------------------

LOINC = "http://loinc.org"
SNOMED_CT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_ACT_PRIORITY = "http://terminology.hl7.org/CodeSystem/v3-ActPriority"
V3_PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
DISCHARGE_DISPOSITION = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# Local code systems (the platform's urn:telesante: namespace, as for acts and request statuses). The NIHSS items are
# local codes because no item-level LOINC mapping has been checked against the LOINC table (docs/domains/stroke.md).
NIHSS_ITEM_SYSTEM = "urn:telesante:avc:item-nihss"
NIHSS_METHOD_SYSTEM = "urn:telesante:avc:cotation-nihss"

VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
BP_PROFILE = "http://hl7.org/fhir/StructureDefinition/bp"
BODY_WEIGHT_PROFILE = "http://hl7.org/fhir/StructureDefinition/bodyweight"

EMERGENCY_CLASS = {"system": V3_ACT_CODE, "code": "EMER", "display": "emergency"}
STROKE_REASON = {
    "coding": [{"system": SNOMED_CT, "code": "230690007", "display": "Cerebrovascular accident"}],
    "text": "Suspicion d'AVC (alerte TéléAVC)",
}
NIHSS_TOTAL = (LOINC, "72089-6", "Total score [NIH Stroke Scale]")
BP_PANEL = (LOINC, "85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = (LOINC, "8480-6", "Systolic blood pressure")
DIASTOLIC = (LOINC, "8462-4", "Diastolic blood pressure")
BODY_WEIGHT = (LOINC, "29463-7", "Body weight")
GLUCOSE = (LOINC, "15074-8", "Glucose [Moles/volume] in Blood")
PLATELETS = (LOINC, "777-3", "Platelets [#/volume] in Blood by Automated count")
INR = (LOINC, "6301-6", "INR in Platelet poor plasma by Coagulation assay")

# The case's status -> Encounter.status (the case's stay at the emergency department around the opinion).
ENCOUNTER_STATUS = {
    CaseStatus.ALERT: "triaged",  # assessed and alerted, the neurologist not yet on the line
    CaseStatus.IN_PROGRESS: "in-progress",
    CaseStatus.DECIDED: "in-progress",  # decided, the patient still in care (needle, transfer) until the report
    CaseStatus.CLOSED: "finished",  # the compte rendu signed
}
ENCOUNTER_STATUSES = (
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
)
OBSERVATION_CATEGORIES = ("survey", "vital-signs", "laboratory")
NIHSS_METHOD = {
    NihssRole.EMERGENCY: ("bedside", "Au lit du patient, par l'urgentiste"),
    NihssRole.NEUROLOGIST: ("video", "Par vidéo, par le neurologue (confirmation)"),
}

ENCOUNTER_PARAMS = ("patient", "subject", "based-on", "appointment", "part-of", "status", "class", "date")
OBSERVATION_PARAMS = ("patient", "subject", "encounter", "code", "category", "date")
DATE_PARAMS = ("date",)

# Observation ids: an NIHSS is its assessment's own id (a UUID); a measure is "avc-<case id, 32 hex>-<measure>"
# (at most 46 characters: FHIR ids are [A-Za-z0-9-.]{1,64}). A measure keeps its id when its value is corrected.
MEASURES = ("bp", "weight", "glucose", "platelets", "inr")
_MEASURE_ID = re.compile(r"^avc-([0-9a-f]{32})-(" + "|".join(MEASURES) + r")$")


def measure_id(case_id: uuid.UUID, measure: str) -> str:
    return f"avc-{case_id.hex}-{measure}"


# --- what a case's resources are built from -------------------------------------------------------------------


@dataclass
class CaseRecord:
    """A case and what its resources need besides it, loaded for a page of cases in a few queries."""

    case: StrokeCase
    acknowledged_at: datetime | None = None
    alerted_by: uuid.UUID | None = None  # the professional who raised the alert
    organisation_names: Mapping[uuid.UUID, str] = field(default_factory=dict)
    nihss: list[NihssAssessment] = field(default_factory=list)
    assessors: Mapping[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # account -> professional


async def _records(
    session: AsyncSession, cases: Sequence[StrokeCase], *, nihss: bool = False
) -> list[CaseRecord]:
    if not cases:
        return []
    repo = StrokeCaseRepository(session)
    case_ids = [case.id for case in cases]
    acknowledged = {
        m.case_id: m.at
        for m in await MilestoneRepository(session).for_cases(case_ids)
        if m.kind == Milestone.ACKNOWLEDGED
    }
    assessments = await NihssRepository(session).for_cases(case_ids) if nihss else []
    accounts = {case.created_by_account_id for case in cases} | {
        a.assessed_by_account_id for a in assessments
    }
    professionals = await repo.professionals_of_accounts(accounts)
    names = await repo.organisation_names(
        {case.organisation_id for case in cases}
        | {case.receiving_organisation_id for case in cases if case.receiving_organisation_id}
    )
    return [
        CaseRecord(
            case=case,
            acknowledged_at=acknowledged.get(case.id),
            alerted_by=professionals.get(case.created_by_account_id),
            organisation_names=names,
            nihss=[a for a in assessments if a.case_id == case.id],
            assessors=professionals,
        )
        for case in cases
    ]


# --- Encounter ------------------------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    return clock.as_utc(value) if value is not None else None


def _period(start: datetime | None, end: datetime | None) -> dict[str, datetime]:
    return {k: v for k, v in (("start", _utc(start)), ("end", _utc(end))) if v is not None}


def _participant(code: str, display: str, professional_id: uuid.UUID, name: str) -> dict[str, Any]:
    return {
        "type": [{"coding": [{"system": V3_PARTICIPATION_TYPE, "code": code, "display": display}]}],
        "individual": {"reference": f"Practitioner/{professional_id}", "display": name or None},
    }


def encounter_resource(record: CaseRecord) -> Encounter:
    case = record.case
    names = record.organisation_names
    history = [
        {"status": "arrived", "period": _period(case.arrival_at, case.alert_at)},
        {"status": "triaged", "period": _period(case.alert_at, record.acknowledged_at)},
    ]
    if record.acknowledged_at is not None:
        history.append({"status": "in-progress", "period": _period(record.acknowledged_at, case.closed_at)})
    participants = []
    if record.alerted_by is not None:
        participants.append(_participant("ATND", "attender", record.alerted_by, case.created_by_name))
    if case.neurologist_professional_id is not None:
        participants.append(
            _participant("CON", "consultant", case.neurologist_professional_id, case.neurologist_name)
        )
    resource: dict[str, Any] = {
        "id": str(case.id),
        "status": ENCOUNTER_STATUS[case.status],
        "statusHistory": history,
        "class": EMERGENCY_CLASS,
        "priority": {"coding": [{"system": V3_ACT_PRIORITY, "code": "EM", "display": "emergency"}]},
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "basedOn": [{"reference": f"ServiceRequest/{case.request_id}"}],
        "participant": participants or None,
        "period": _period(case.arrival_at, case.closed_at),
        "reasonCode": [STROKE_REASON],
        "serviceProvider": {
            "reference": f"Organization/{case.organisation_id}",
            "display": names.get(case.organisation_id),
        },
    }
    if case.receiving_organisation_id is not None:
        transport = TRANSPORT_LABELS.get(case.transport_mode) if case.transport_mode else None
        what = "Transfert pour thrombectomie" if case.thrombectomy else "Transfert"
        resource["hospitalization"] = {
            "destination": {
                "reference": f"Organization/{case.receiving_organisation_id}",
                "display": names.get(case.receiving_organisation_id),
            },
            "dischargeDisposition": {
                "coding": [
                    {
                        "system": DISCHARGE_DISPOSITION,
                        "code": "other-hcf",
                        "display": "Other healthcare facility",
                    }
                ],
                "text": f"{what} — {transport}" if transport else what,
            },
        }
    return Encounter(**{k: v for k, v in resource.items() if v is not None})


# --- Observation ----------------------------------------------------------------------------------------------


def _concept(code: tuple[str, str, str], text: str | None = None) -> dict[str, Any]:
    system, value, display = code
    concept: dict[str, Any] = {"coding": [{"system": system, "code": value, "display": display}]}
    if text:
        concept["text"] = text
    return concept


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}]}]


def _quantity(value: Decimal, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _decimal(value: float | int) -> Decimal:
    return Decimal(str(value))


def _observation(
    case: StrokeCase,
    observation_id: str,
    code: tuple[str, str, str],
    category: list[dict[str, Any]],
    **rest: Any,
) -> Observation:
    resource: dict[str, Any] = {
        "id": observation_id,
        "status": "final",
        "category": category,
        "code": _concept(code),
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "encounter": {"reference": f"Encounter/{case.id}"},
        **rest,
    }
    return Observation(**{k: v for k, v in resource.items() if v is not None})


def _nihss_component(item_code: str, value: Any) -> dict[str, Any]:
    item = NIHSS_BY_CODE[item_code]
    component: dict[str, Any] = {
        "code": {"coding": [{"system": NIHSS_ITEM_SYSTEM, "code": item.code, "display": item.label}]}
    }
    if value == UNTESTABLE:
        component["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT_REASON, "code": "not-applicable", "display": "Not Applicable"}],
            "text": "Non testable (UN)",
        }
    else:
        component["valueInteger"] = int(value)
    return component


def nihss_observation(record: CaseRecord, assessment: NihssAssessment) -> Observation:
    method_code, method_text = NIHSS_METHOD[assessment.role]
    professional_id = record.assessors.get(assessment.assessed_by_account_id)
    performer: dict[str, Any] = {"display": assessment.assessed_by_name or None}
    if professional_id is not None:
        performer["reference"] = f"Practitioner/{professional_id}"
    return _observation(
        record.case,
        str(assessment.id),
        NIHSS_TOTAL,
        _category("survey", "Survey"),
        effectiveDateTime=_utc(assessment.assessed_at),
        performer=[performer],
        method={
            "coding": [{"system": NIHSS_METHOD_SYSTEM, "code": method_code, "display": method_text}],
            "text": method_text,
        },
        valueInteger=assessment.total,
        component=[
            _nihss_component(item.code, assessment.items[item.code])
            for item in NIHSS_ITEMS
            if item.code in (assessment.items or {})
        ],
    )


def _bp_component(code: tuple[str, str, str], value: int) -> dict[str, Any]:
    return {"code": _concept(code), "valueQuantity": _quantity(Decimal(value), "mmHg", "mm[Hg]")}


def measure_observation(case: StrokeCase, measure: str) -> Observation | None:
    """One measure of the case (its latest value), or None when it was not given."""
    common: dict[str, Any] = {"effectiveDateTime": _utc(case.measures_at)}
    if case.measures_by_name:
        common["performer"] = [{"display": case.measures_by_name}]
    vital_signs = _category("vital-signs", "Vital Signs")
    laboratory = _category("laboratory", "Laboratory")
    observation_id = measure_id(case.id, measure)
    if measure == "bp":
        if case.systolic is None or case.diastolic is None:  # recorded together (MeasuresUpdate)
            return None
        return _observation(
            case,
            observation_id,
            BP_PANEL,
            vital_signs,
            meta={"profile": [BP_PROFILE]},
            component=[_bp_component(SYSTOLIC, case.systolic), _bp_component(DIASTOLIC, case.diastolic)],
            **common,
        )
    if measure == "weight":
        if case.weight_kg is None:
            return None
        return _observation(
            case,
            observation_id,
            BODY_WEIGHT,
            vital_signs,
            meta={"profile": [BODY_WEIGHT_PROFILE]},
            valueQuantity=_quantity(_decimal(case.weight_kg), "kg", "kg"),
            **common,
        )
    if measure == "glucose":
        if case.glucose_mmol is None:
            return None
        return _observation(
            case,
            observation_id,
            GLUCOSE,
            laboratory,
            valueQuantity=_quantity(_decimal(case.glucose_mmol), "mmol/L", "mmol/L"),
            **common,
        )
    if measure == "platelets":
        if case.platelets is None:
            return None
        # Stored per mm³ (= per µL): 230 000/mm³ is 230 × 10³/µL.
        return _observation(
            case,
            observation_id,
            PLATELETS,
            laboratory,
            valueQuantity=_quantity(Decimal(case.platelets) / 1000, "10³/µL", "10*3/uL"),
            **common,
        )
    if measure == "inr":
        if case.inr is None:
            return None
        return _observation(
            case,
            observation_id,
            INR,
            laboratory,
            valueQuantity=_quantity(_decimal(case.inr), "INR", "{INR}"),
            **common,
        )
    raise ValueError(measure)  # pragma: no cover - MEASURES lists them all


def observations_of(record: CaseRecord) -> list[Observation]:
    found = [nihss_observation(record, assessment) for assessment in record.nihss]
    for measure in MEASURES:
        observation = measure_observation(record.case, measure)
        if observation is not None:
            found.append(observation)
    return found


# --- reads and searches ---------------------------------------------------------------------------------------


async def _audit(
    session: AsyncSession, principal: Principal, case: StrokeCase, action: str, resource: str
) -> None:
    await record_access(
        session,
        principal,
        action=action,
        object_type="StrokeCase",
        object_id=case.id,
        patient_id=case.patient_id,
        details={"resource": resource},  # the channel (fhir) comes from the request context
    )


def _patient(values: Mapping[str, str]) -> uuid.UUID | None:
    """The patient of ``patient`` or ``subject`` (both given: the same one)."""
    found = {
        reference_param(values[name], "Patient", name) for name in ("patient", "subject") if name in values
    }
    if len(found) > 1:
        raise InvalidSearch("patient et subject désignent deux patients différents.", field="subject")
    return found.pop() if found else None


def _token(name: str, value: str) -> tuple[str | None, str]:
    """'system|code' -> (system, code); '|code' -> ('', code); 'code' -> (None, code)."""
    if "|" not in value:
        return None, value
    system, _, code = value.partition("|")
    if not code:
        raise InvalidSearch(f"{name} : la valeur après « | » est obligatoire.", field=name)
    return system, code


def _has_coding(concepts: Sequence[Any], wanted: tuple[str | None, str]) -> bool:
    system, code = wanted
    return any(
        coding.code == code and (system is None or coding.system == (system or None))
        for concept in concepts
        for coding in concept.coding or []
    )


def _overlaps(
    start: datetime | None, end: datetime | None, lower: datetime | None, upper: datetime | None
) -> bool:
    """Whether [start, end] (end None: still running) meets [lower, upper)."""
    if start is None:
        return False
    if upper is not None and start >= upper:
        return False
    return not (lower is not None and end is not None and end < lower)


def _page(items: list[Any], query: SearchQuery) -> Page[Any]:
    shown = items[query.page.offset : query.page.offset + query.count] if query.count else []
    return Page(items=shown, total=len(items), offset=query.page.offset, limit=query.page.limit)


def _status(values: Mapping[str, str]) -> str | None:
    status = values.get("status")
    if status is not None and status not in ENCOUNTER_STATUSES:
        raise InvalidSearch(
            f"status : valeur inconnue (attendu : {', '.join(ENCOUNTER_STATUSES)}).", field="status"
        )
    return status


def _class(values: Mapping[str, str]) -> tuple[str | None, str] | None:
    if "class" not in values:
        return None
    return _token("class", values["class"])


def _class_matches(wanted: tuple[str | None, str] | None, code: str) -> bool:
    if wanted is None:
        return True
    system, value = wanted
    return value == code and system in (None, V3_ACT_CODE)


async def _case_of_room(session: AsyncSession, principal: Principal, room: VideoRoom) -> uuid.UUID | None:
    """The stroke case a call without appointment belongs to (when the principal sees it)."""
    if room.appointment_id is not None or room.request_id is None:
        return None
    case = await StrokeCaseRepository(session).get_visible_for_request(principal, room.request_id)
    return case.id if case is not None else None


async def _call_of_case(session: AsyncSession, principal: Principal, case: StrokeCase) -> VideoRoom | None:
    """The case's call, once opened, when the principal may see it by the call's own rule (the receiving centre
    sees the case but not its call)."""
    room = await video.room_of_request(session, case.request_id)
    if room is None:
        return None
    try:
        return await video.visible_room(session, principal, room.id)
    except NotFound:
        return None


async def read_encounter(session: AsyncSession, principal: Principal, encounter_id: str) -> Encounter:
    """A stroke case or a video call (the ids are UUIDs of either table)."""
    case = await StrokeCaseRepository(session).get_visible(
        principal, resource_id(encounter_id, "Rencontre introuvable.")
    )
    if case is not None:
        await _audit(session, principal, case, Action.READ, f"Encounter/{case.id}")
        [record] = await _records(session, [case])
        return encounter_resource(record)
    room, request_id = await fhir_scheduling.read_encounter(session, principal, encounter_id)
    return fhir_scheduling.encounter_resource(room, request_id, await _case_of_room(session, principal, room))


@dataclass
class _Found:
    """An Encounter found by a search, with what its audit row names (a stroke case or a call)."""

    encounter: Encounter
    start: datetime  # the order of a search: latest first
    case: StrokeCase | None = None
    room: VideoRoom | None = None


async def _audit_found(session: AsyncSession, principal: Principal, found: _Found) -> None:
    if found.case is not None:
        await _audit(session, principal, found.case, Action.SEARCH, "Encounter")
        return
    assert found.room is not None
    await record_access(
        session,
        principal,
        action=Action.SEARCH,
        object_type="VideoRoom",
        object_id=found.room.id,
        patient_id=found.room.patient_id,
        details={"resource": "Encounter"},
    )


def _call(room: VideoRoom, request_id: uuid.UUID | None, case_id: uuid.UUID | None) -> _Found:
    return _Found(
        fhir_scheduling.encounter_resource(room, request_id, case_id),
        room.started_at or room.created_at,
        room=room,
    )


async def _video_encounters(session: AsyncSession, principal: Principal, query: SearchQuery) -> list[_Found]:
    """The call of an appointment, or the call of a stroke case (part-of)."""
    values = query.values
    if "appointment" in values:
        # the appointment's rule; its read is audited there, the call found here by the search
        found = await fhir_scheduling.encounters(session, principal, query)
        return [
            _call(room, request_id, await _case_of_room(session, principal, room))
            for room, request_id in found
        ]
    case = await StrokeCaseRepository(session).get_visible(
        principal, reference_param(values["part-of"], "Encounter", "part-of")
    )
    room = await _call_of_case(session, principal, case) if case is not None else None
    return [_call(room, room.request_id, case.id)] if room is not None else []


async def _patient_of_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> uuid.UUID | None:
    """The patient of an act the principal may see, by the stroke case's rule (a stroke alert) or the request's own
    (every Encounter based on an act is its patient's: the search goes on by patient)."""
    case = await StrokeCaseRepository(session).get_visible_for_request(principal, request_id)
    if case is not None:
        return case.patient_id
    request = await RequestRepository(session).get_visible(principal, request_id)
    return request.patient_id if request is not None else None


async def _patient_encounters(
    session: AsyncSession,
    principal: Principal,
    patient_id: uuid.UUID,
    wanted_class: tuple[str | None, str] | None,
) -> list[_Found]:
    """Every Encounter of a patient the principal may see, each kind by its own rule: the stroke cases (the case's
    rule), the calls of teleconsultations (the appointment's rule) and the calls of stroke cases (the call's rule)."""
    cases, _total = await StrokeCaseRepository(session).search_visible(principal, patient_id=patient_id)
    found: list[_Found] = []
    if _class_matches(wanted_class, EMERGENCY_CLASS["code"]):
        found += [
            _Found(encounter_resource(record), record.case.arrival_at, case=record.case)
            for record in await _records(session, cases)
        ]
    if _class_matches(wanted_class, fhir_scheduling.VIRTUAL_CLASS["code"]):
        for room, request_id in await fhir_scheduling.patient_encounters(session, principal, patient_id):
            found.append(_call(room, request_id, None))
        for case in cases:
            room = await _call_of_case(session, principal, case)
            if room is not None:
                found.append(_call(room, room.request_id, case.id))
    return found


def _encounter_filter(query: SearchQuery) -> Callable[[Encounter], bool]:
    """The parameters that narrow a search, checked before anything is read (bad values are refused with 400) and
    applied alike to both kinds of Encounter."""
    values = query.values
    patient_id = _patient(values)
    based_on = (
        f"ServiceRequest/{reference_param(values['based-on'], 'ServiceRequest', 'based-on')}"
        if "based-on" in values
        else None
    )
    part_of = (
        f"Encounter/{reference_param(values['part-of'], 'Encounter', 'part-of')}"
        if "part-of" in values
        else None
    )
    status = _status(values)
    wanted_class = _class(values)
    dated = "date" in query.repeated
    lower, upper = parse_date_range("date", query.repeated.get("date", []))

    def matches(encounter: Encounter) -> bool:
        if patient_id is not None and encounter.subject.reference != f"Patient/{patient_id}":
            return False
        if based_on is not None and based_on not in {ref.reference for ref in encounter.basedOn or []}:
            return False
        if part_of is not None and (encounter.partOf is None or encounter.partOf.reference != part_of):
            return False
        if status is not None and encounter.status != status:
            return False
        if not _class_matches(wanted_class, encounter.class_fhir.code):
            return False
        if dated:
            period = encounter.period
            if period is None or not _overlaps(period.start, period.end, lower, upper):
                return False
        return True

    return matches


async def search_encounters(
    session: AsyncSession, principal: Principal, query: SearchQuery
) -> Page[Encounter]:
    """Both kinds of Encounter in one Bundle: the stroke cases (class EMER) and the video calls (class VR: the calls
    of teleconsultations and of stroke cases), by patient (or subject), or based-on their act; the call of an
    appointment, or of a stroke case (part-of). ``status``, ``class`` and ``date`` narrow any of them. Latest first
    (a case from the patient's arrival, a call from its start, or its opening when not started); the entries of the
    page are audited with their patient."""
    values = query.values
    matches = _encounter_filter(query)
    if "appointment" in values or "part-of" in values:
        found = await _video_encounters(session, principal, query)
    else:
        patient_id = _patient(values)
        if patient_id is None and "based-on" not in values:
            raise InvalidSearch(
                "Critère obligatoire : patient (ou subject), based-on, appointment ou part-of.",
                field="patient",
            )
        if patient_id is None:
            request_id = reference_param(values["based-on"], "ServiceRequest", "based-on")
            patient_id = await _patient_of_request(session, principal, request_id)
        found = (
            await _patient_encounters(session, principal, patient_id, _class(values))
            if patient_id is not None
            else []
        )
    found = sorted(
        (f for f in found if matches(f.encounter)),
        key=lambda f: (-clock.as_utc(f.start).timestamp(), f.encounter.id),
    )
    page = _page(found, query)
    for item in page.items:
        await _audit_found(session, principal, item)
    return Page(
        items=[item.encounter for item in page.items],
        total=page.total,
        offset=page.offset,
        limit=page.limit,
    )


# --- the neurology opinion (ServiceRequest, Task) for the receiving centre -------------------------------------


async def _request_found(session: AsyncSession, request_id: uuid.UUID) -> RequestFound:
    """The request with its offer's title and its report's id, as ``RequestRepository.search`` gives it (the caller
    decided the access)."""
    repo = RequestRepository(session)
    request = await repo.get(request_id)
    if request is None:  # pragma: no cover - a stroke case's request is never deleted
        raise NotFound("Demande introuvable.")
    offer = await offer_service.get_offer(session, request.offer_id)
    report = await repo.get_report(request.id)
    return RequestFound(request, offer.title, report.id if report is not None else None)


async def read_request(
    session: AsyncSession, principal: Principal, request_id: str, resource_type: str
) -> RequestFound:
    """``ServiceRequest/{id}`` and ``Task/{id}``: by the request's own rule (``tele_requests.read``, audited by the
    requests service); failing that, when the request is the neurology opinion of a stroke case, by the case's rule
    (``StrokeCaseRepository.visible``): whoever sees the case sees what its Encounter is based on — in practice the
    receiving centre of a transfer, which the request's rule does not name. Read only: the facade changes no request,
    and the request's other routes (pages, JSON API, its call, its QuestionnaireResponse and DiagnosticReport) keep
    the request's rule. Audited as the requests service audits a FHIR read, with the case it was reached through."""
    try:
        return await tele_requests.read(session, principal, request_id)
    except NotFound:
        pass
    case = await StrokeCaseRepository(session).get_visible_for_request(
        principal, resource_id(request_id, "Demande introuvable.")
    )
    if case is None:
        raise NotFound("Demande introuvable.")
    found = await _request_found(session, case.request_id)
    await record_access(
        session,
        principal,
        action=Action.READ,
        object_type="TeleRequest",
        object_id=found.request.id,
        patient_id=found.request.patient_id,
        details={
            "channel": "fhir",
            "resource": f"{resource_type}/{found.request.id}",
            "via": f"StrokeCase/{case.id}",
        },
    )
    return found


async def read_observation(session: AsyncSession, principal: Principal, observation_id: str) -> Observation:
    missing = "Observation introuvable."
    repo = StrokeCaseRepository(session)
    measure = _MEASURE_ID.match(observation_id)
    if measure is not None:
        case = await repo.get_visible(principal, uuid.UUID(hex=measure[1]))
        if case is None:
            raise NotFound(missing)
        await _audit(session, principal, case, Action.READ, f"Observation/{observation_id}")
        observation = measure_observation(case, measure[2])
        if observation is None:
            raise NotFound(missing)
        return observation
    assessment = await NihssRepository(session).get_visible(principal, resource_id(observation_id, missing))
    if assessment is None:
        raise NotFound(missing)
    case = await repo.get_visible(principal, assessment.case_id)
    assert case is not None  # the assessment was found through its case's rule
    await _audit(session, principal, case, Action.READ, f"Observation/{observation_id}")
    [record] = await _records(session, [case])
    record.nihss = [assessment]
    record.assessors = await repo.professionals_of_accounts({assessment.assessed_by_account_id})
    return nihss_observation(record, assessment)


def _observation_filter(query: SearchQuery) -> Callable[[Observation], bool]:
    values = query.values
    code = _token("code", values["code"]) if "code" in values else None
    category = _token("category", values["category"]) if "category" in values else None
    if category is not None and category[0] not in (None, OBSERVATION_CATEGORY):
        category = (category[0], "")  # another system: nothing here carries it
    lower, upper = parse_date_range("date", query.repeated.get("date", []))

    def matches(observation: Observation) -> bool:
        if code is not None and not _has_coding([observation.code], code):
            return False
        if category is not None and not _has_coding(observation.category or [], category):
            return False
        if lower is not None or upper is not None:
            moment = observation.effectiveDateTime
            if (
                moment is None
                or (lower is not None and moment < lower)
                or (upper is not None and moment >= upper)
            ):
                return False
        return True

    return matches


async def search_observations(
    session: AsyncSession, principal: Principal, query: SearchQuery
) -> Page[Observation]:
    """The Observations of a patient: those of the stroke cases, then the remote-monitoring readings (newest first);
    or those of one case (encounter=Encounter/<case id>)."""
    values = query.values
    patient_id = _patient(values)
    case_id = (
        reference_param(values["encounter"], "Encounter", "encounter") if "encounter" in values else None
    )
    if patient_id is None and case_id is None:
        raise InvalidSearch("Critère obligatoire : patient (ou subject) ou encounter.", field="patient")
    matches = _observation_filter(query)  # bad values are refused before anything is read
    repo = StrokeCaseRepository(session)
    if case_id is not None:
        case = await repo.get_visible(principal, case_id)
        cases = [case] if case is not None and patient_id in (None, case.patient_id) else []
    else:
        cases, _total = await repo.search_visible(principal, patient_id=patient_id)
    for case in cases:
        await _audit(session, principal, case, Action.SEARCH, "Observation")
    found = [
        observation
        for record in await _records(session, cases, nihss=True)
        for observation in observations_of(record)
        if matches(observation)
    ]
    if case_id is None and patient_id is not None:
        lower, upper = parse_date_range("date", query.repeated.get("date", []))
        monitored = await fhir_monitoring.search_observations(session, principal, patient_id, lower, upper)
        found += [observation for observation in monitored if matches(observation)]
    return _page(found, query)
