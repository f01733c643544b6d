"""Tele-expertise requests in FHIR R4: mapping of the requests domain to ServiceRequest, Task, DiagnosticReport,
QuestionnaireResponse, and of offers and forms to HealthcareService and Questionnaire — and back, for a request
created by external software (``POST /fhir/ServiceRequest`` or a transaction Bundle).

Pure functions: no database access. The shape follows the ANS "Confluences" tele-expertise guide
(github.com/ansforge/interop-ig-fhir-teleexpertise-confluence): the request is a ServiceRequest (intent
``proposal``, the offer as ``supportingInfo`` HealthcareService, the patient as ``subject``, the requester as
``requester``, the answering service as ``performer``); its fine-grained progress is on a Task whose ``focus`` is
the ServiceRequest (docs/domains/fhir.md gives every choice and its reason).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.healthcareservice import HealthcareService
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from telesante.kit import clock
from telesante.kit.errors import InvalidInput
from telesante.kit.models import uuid_from_text
from telesante.offers.forms import FormDefinition, FormField
from telesante.offers.models import ActType, Offer
from telesante.requests.models import STATUS_LABELS, RequestReport, RequestStatus, TeleRequest

S = RequestStatus

# --- systems -------------------------------------------------------------------------------------------------

ACT_TYPE_SYSTEM = (
    "urn:telesante:acte"  # téléexpertise, téléconsultation, téléassistance, télésoin (CSP R.6316-1)
)
ACT_TYPE_LABELS = {
    ActType.TELEEXPERTISE: "Téléexpertise",
    ActType.TELECONSULTATION: "Téléconsultation",
    ActType.TELEASSISTANCE: "Téléassistance médicale",
    ActType.TELESOIN: "Télésoin",
}
OFFER_SYSTEM = "urn:telesante:offre"
REQUEST_STATUS_SYSTEM = "urn:telesante:statut-demande"
FORM_CANONICAL_PREFIX = "urn:telesante:formulaire:"  # + code, version in the canonical's |version
REPORT_HASH_SYSTEM = "urn:telesante:compte-rendu:sha256"  # the signature's hash of the report's content
LOINC = "http://loinc.org"
CONSULT_NOTE = ("11488-4", "Consult note")  # LOINC: the report of a consultation / expert opinion
ANSWERS_ID = "reponses"  # the contained QuestionnaireResponse

# Our nine states on the coarse ServiceRequest.status (http://hl7.org/fhir/R4/valueset-request-status.html) and on
# Task.status (http://hl7.org/fhir/R4/valueset-task-status.html); the exact state is Task.businessStatus.
SERVICE_REQUEST_STATUS: dict[RequestStatus, str] = {
    S.DRAFT: "draft",
    S.SENT: "active",
    S.EXPIRED: "active",  # unanswered in time but still open: a late acceptance remains possible
    S.ACCEPTED: "active",
    S.IN_PROGRESS: "active",
    S.ANSWERED: "active",  # answered, the act closes with the signed report
    S.CLOSED: "completed",
    S.DECLINED: "revoked",
    S.CANCELLED: "revoked",
}
TASK_STATUS: dict[RequestStatus, str] = {
    S.DRAFT: "draft",
    S.SENT: "requested",
    S.EXPIRED: "requested",
    S.ACCEPTED: "accepted",
    S.IN_PROGRESS: "in-progress",
    S.ANSWERED: "in-progress",
    S.CLOSED: "completed",
    S.DECLINED: "rejected",
    S.CANCELLED: "cancelled",
}
SERVICE_REQUEST_STATUSES = frozenset(
    ("draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown")
)
TASK_STATUSES = frozenset(
    (
        "draft",
        "requested",
        "received",
        "accepted",
        "rejected",
        "ready",
        "cancelled",
        "in-progress",
        "on-hold",
        "failed",
        "completed",
        "entered-in-error",
    )
)


def statuses_for(fhir_status: str, mapping: Mapping[RequestStatus, str]) -> tuple[RequestStatus, ...]:
    """Our states that show as ``fhir_status`` (empty when none does)."""
    return tuple(ours for ours, theirs in mapping.items() if theirs == fhir_status)


def form_canonical(code: str) -> str:
    return FORM_CANONICAL_PREFIX + code


def questionnaire_id(form: FormDefinition) -> str:
    """FHIR ids allow letters, digits, '-' and '.': trauma_cranien v1 -> trauma-cranien-v1."""
    return f"{form.code.replace('_', '-')}-v{form.version}"


def _ref(resource_type: str, id_: uuid.UUID | str, display: str = "") -> dict[str, str]:
    reference = {"reference": f"{resource_type}/{id_}"}
    if display:
        reference["display"] = display
    return reference


def _instant(value: datetime | None) -> str | None:
    return clock.as_utc(value).isoformat() if value is not None else None


def _act_type(act_type: ActType) -> dict[str, Any]:
    label = ACT_TYPE_LABELS[act_type]
    return {"coding": [{"system": ACT_TYPE_SYSTEM, "code": act_type.value, "display": label}], "text": label}


def _meta(updated_at: datetime | None) -> dict[str, str] | None:
    return {"lastUpdated": _instant(updated_at)} if updated_at is not None else None


# --- forms and answers -------------------------------------------------------------------------------------

_ITEM_TYPES = {
    "text": "string",
    "textarea": "text",
    "integer": "integer",
    "decimal": "decimal",
    "date": "date",
    "datetime": "dateTime",
    "choice": "choice",
    "multichoice": "choice",
    "boolean": "boolean",
    "computed": "integer",
    "attachments": "attachment",
}


def _choice_system(form: FormDefinition, f: FormField) -> str:
    return f"{form_canonical(form.code)}:{f.name}"


def _question(form: FormDefinition, f: FormField) -> dict[str, Any]:
    item: dict[str, Any] = {
        "linkId": f.name,
        "text": f"{f.label} ({f.unit})" if f.unit else f.label,
        "type": _ITEM_TYPES[f.type],
        "required": f.required,
    }
    if f.fhir_code:
        item["code"] = [{"system": LOINC, "code": f.fhir_code}]
    if f.type in ("multichoice", "attachments"):
        item["repeats"] = True
    if f.type == "computed":
        item["readOnly"] = True
    if f.type in ("text", "textarea"):
        item["maxLength"] = f.max_length
    if f.choices:
        item["answerOption"] = [
            {"valueCoding": {"system": _choice_system(form, f), "code": c.code, "display": c.label}}
            for c in f.choices
        ]
    if f.required_if is not None:
        item["extension"] = [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-constraint",
                "extension": [
                    {"url": "key", "valueId": f"{f.name.replace('_', '-')}-requis"},
                    {"url": "severity", "valueCode": "error"},
                    {
                        "url": "human",
                        "valueString": f"Obligatoire selon la réponse à « {f.required_if.field} ».",
                    },
                ],
            }
        ]
    return item


def questionnaire_resource(form: FormDefinition) -> Questionnaire:
    """A form definition as a Questionnaire: one group per section, one item per field (linkId = field name)."""
    return Questionnaire.model_validate(
        {
            "resourceType": "Questionnaire",
            "id": questionnaire_id(form),
            "url": form_canonical(form.code),
            "version": str(form.version),
            "name": form.code,
            "title": form.title,
            "status": "active",
            "description": form.description or None,
            "subjectType": ["Patient"],
            "item": [
                {
                    "linkId": f"section-{index}",
                    "text": section.title,
                    "type": "group",
                    "item": [_question(form, f) for f in section.fields],
                }
                for index, section in enumerate(form.sections, start=1)
            ],
        }
    )


def _answer_values(form: FormDefinition, f: FormField, value: Any) -> list[dict[str, Any]]:
    if f.type in ("choice", "multichoice"):
        codes = value if isinstance(value, list) else [value]
        return [
            {"valueCoding": {"system": _choice_system(form, f), "code": c, "display": f.choice_label(c)}}
            for c in codes
        ]
    if f.type == "boolean":
        return [{"valueBoolean": bool(value)}]
    if f.type in ("integer", "computed"):
        return [{"valueInteger": int(value)}]
    if f.type == "decimal":
        return [{"valueDecimal": value}]
    if f.type == "date":
        return [{"valueDate": value}]
    if f.type == "datetime":
        return [{"valueDateTime": datetime.fromisoformat(value).isoformat(timespec="seconds")}]
    return [{"valueString": str(value)}]


def questionnaire_response(
    form: FormDefinition, request: TeleRequest, answers: Mapping[str, Any], *, contained: bool
) -> dict[str, Any]:
    items = [
        {"linkId": f.name, "text": f.label, "answer": _answer_values(form, f, answers[f.name])}
        for f in form.fields
        if f.name in answers
    ]
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{form_canonical(form.code)}|{form.version}",
        "status": "in-progress" if request.status == S.DRAFT else "completed",
        "subject": _ref("Patient", request.patient_id),
        "authored": _instant(request.sent_at or request.created_at),
        "author": _ref("Practitioner", request.requester_professional_id, request.requester_name),
        "item": items or None,
    }
    if contained:
        resource["id"] = ANSWERS_ID
    return resource


# --- resources of a request --------------------------------------------------------------------------------


def service_request_resource(request: TeleRequest, offer_title: str, form: FormDefinition) -> ServiceRequest:
    performer = [_ref("Organization", request.expert_organisation_id)]
    if request.assigned_professional_id:
        performer.append(_ref("Practitioner", request.assigned_professional_id, request.assigned_name))
    note = []
    if request.emergency_exemption:
        note.append({"text": f"Urgence — consentement non recueilli : {request.emergency_exemption}"})
    return ServiceRequest.model_validate(
        {
            "resourceType": "ServiceRequest",
            "id": str(request.id),
            "meta": _meta(request.updated_at),
            "contained": [questionnaire_response(form, request, request.answers, contained=True)],
            "status": SERVICE_REQUEST_STATUS[request.status],
            "intent": "proposal",
            "category": [_act_type(request.act_type)],
            "code": {
                "coding": [{"system": OFFER_SYSTEM, "code": str(request.offer_id), "display": offer_title}],
                "text": offer_title,
            },
            "priority": "urgent" if request.urgent else "routine",
            "subject": _ref("Patient", request.patient_id),
            "authoredOn": _instant(request.sent_at or request.created_at),
            "occurrencePeriod": (
                {"start": _instant(request.sent_at), "end": _instant(request.deadline_at)}
                if request.sent_at
                else None
            ),
            "requester": _ref("Practitioner", request.requester_professional_id, request.requester_name),
            "performer": performer,
            "supportingInfo": [
                _ref("HealthcareService", request.offer_id, offer_title),
                {"reference": f"#{ANSWERS_ID}"},
            ],
            "note": note or None,
        }
    )


def task_resource(request: TeleRequest, offer_title: str, report_id: uuid.UUID | None) -> Task:
    reason = request.decline_reason or request.cancel_reason
    owner = (
        _ref("Practitioner", request.assigned_professional_id, request.assigned_name)
        if request.assigned_professional_id
        else _ref("Organization", request.expert_organisation_id)
    )
    return Task.model_validate(
        {
            "resourceType": "Task",
            "id": str(request.id),
            "meta": _meta(request.updated_at),
            "basedOn": [_ref("ServiceRequest", request.id)],
            "status": TASK_STATUS[request.status],
            "statusReason": {"text": reason} if reason else None,
            "businessStatus": {
                "coding": [
                    {
                        "system": REQUEST_STATUS_SYSTEM,
                        "code": request.status.value,
                        "display": STATUS_LABELS[request.status],
                    }
                ],
                "text": STATUS_LABELS[request.status],
            },
            "intent": "order",
            "priority": "urgent" if request.urgent else "routine",
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]},
            "description": offer_title,
            "focus": _ref("ServiceRequest", request.id),
            "for": _ref("Patient", request.patient_id),
            "authoredOn": _instant(request.sent_at or request.created_at),
            "lastModified": _instant(request.updated_at),
            "requester": _ref("Organization", request.requester_organisation_id),
            "owner": owner,
            "restriction": {"period": {"end": _instant(request.deadline_at)}}
            if request.deadline_at
            else None,
            "executionPeriod": (
                {"start": _instant(request.accepted_at), "end": _instant(request.closed_at)}
                if request.accepted_at
                else None
            ),
            "output": (
                [
                    {
                        "type": {
                            "coding": [{"system": LOINC, "code": CONSULT_NOTE[0], "display": CONSULT_NOTE[1]}]
                        },
                        "valueReference": _ref("DiagnosticReport", report_id),
                    }
                ]
                if report_id
                else None
            ),
        }
    )


def diagnostic_report_resource(
    request: TeleRequest, report: RequestReport, form: FormDefinition, binary_url: str
) -> DiagnosticReport:
    """The signed compte rendu: conclusion, the expert's coded answers, and the PDF (a Binary)."""
    codes = []
    for f in form.answer:
        if f.type in ("choice", "multichoice") and f.name in request.expert_answers:
            value = request.expert_answers[f.name]
            for code in value if isinstance(value, list) else [value]:
                codes.append(
                    {
                        "coding": [
                            {"system": _choice_system(form, f), "code": code, "display": f.choice_label(code)}
                        ],
                        "text": f"{f.label} : {f.choice_label(code)}",
                    }
                )
    return DiagnosticReport.model_validate(
        {
            "resourceType": "DiagnosticReport",
            "id": str(report.id),
            "meta": {"lastUpdated": _instant(report.signed_at)},
            "identifier": [{"system": REPORT_HASH_SYSTEM, "value": report.content_hash}],
            "basedOn": [_ref("ServiceRequest", request.id)],
            "status": "final",
            "category": [_act_type(request.act_type)],
            "code": {
                "coding": [{"system": LOINC, "code": CONSULT_NOTE[0], "display": CONSULT_NOTE[1]}],
                "text": "Compte rendu d'acte de télémédecine",
            },
            "subject": _ref("Patient", request.patient_id),
            "effectiveDateTime": _instant(report.performed_at),
            "issued": _instant(report.signed_at),
            "performer": [
                _ref("Organization", request.expert_organisation_id),
                *(
                    [_ref("Practitioner", request.assigned_professional_id, report.signed_by_name)]
                    if request.assigned_professional_id
                    else []
                ),
            ],
            "conclusion": report.conclusion,
            "conclusionCode": codes or None,
            "presentedForm": [
                {
                    "contentType": "application/pdf",
                    "language": "fr-FR",
                    "url": binary_url,
                    "title": "Compte rendu signé (PDF)",
                    "creation": _instant(report.signed_at),
                }
            ],
        }
    )


def binary_resource(report: RequestReport, pdf: bytes) -> Binary:
    return Binary.model_validate(
        {
            "resourceType": "Binary",
            "id": str(report.id),
            "contentType": "application/pdf",
            "data": base64.b64encode(pdf).decode("ascii"),
        }
    )


def healthcare_service_resource(offer: Offer) -> HealthcareService:
    """An offer (what a service answers) as the Confluences guide's ROR HealthcareService."""
    return HealthcareService.model_validate(
        {
            "resourceType": "HealthcareService",
            "id": str(offer.id),
            "meta": _meta(offer.updated_at),
            "identifier": [{"system": OFFER_SYSTEM, "value": str(offer.id)}],
            "active": offer.active,
            "providedBy": _ref("Organization", offer.organisation_id),
            "category": [_act_type(offer.act_type)],
            "specialty": [{"text": offer.specialty}] if offer.specialty else None,
            "name": offer.title,
            "comment": offer.description or None,
            "program": [{"text": "Urgent"}] if offer.urgent else None,
            "extraDetails": f"Réponse attendue sous {offer.response_minutes} min ; formulaire {offer.form_code}.",
        }
    )


# --- a request created by external software ------------------------------------------------------------------

EMERGENCY_EXEMPTION_URL = "urn:telesante:fhir:StructureDefinition:urgence-sans-consentement"
_UUID = re.compile(r"^[0-9a-fA-F-]{36}$")


@dataclass
class IncomingRequest:
    """What a posted ServiceRequest (and its answers) asks the requests service to do."""

    offer_id: uuid.UUID
    patient_id: uuid.UUID
    requester_organisation_id: uuid.UUID | None
    urgent: bool | None
    send: bool
    emergency_exemption: str = ""
    answers: dict[str, Any] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)


def reference_id(reference: str | None, resource_type: str) -> uuid.UUID | None:
    """The id of ``Type/<uuid>`` (relative or absolute), or None when it names something else."""
    if not reference:
        return None
    kind, _, value = reference.rstrip("/").rpartition("/")
    if kind.rpartition("/")[2] != resource_type or not _UUID.match(value):
        return None
    try:
        return uuid_from_text(
            value
        )  # the hex digits read by int(), not uuid.UUID's Python (thousands per batch)
    except ValueError:
        return None


def _required_id(reference: str | None, resource_type: str, element: str, message: str) -> uuid.UUID:
    found = reference_id(reference, resource_type)
    if found is None:
        raise InvalidInput(message, field=element)
    return found


def incoming_service_request(
    resource: ServiceRequest,
    principal_professional_id: uuid.UUID | None,
    answers: QuestionnaireResponse | None,
    requester_organisation_id: uuid.UUID | None = None,
) -> IncomingRequest:
    """Read a posted ServiceRequest: subject, offer (``supportingInfo`` HealthcareService, or ``code`` in the
    offer system), status ``draft`` (keep as a draft) or ``active`` (send), priority, requester, answers."""
    if resource.status not in ("draft", "active"):
        raise InvalidInput(
            "ServiceRequest.status : « draft » (brouillon) ou « active » (envoyer) attendu.", field="status"
        )
    if resource.intent not in ("proposal", "order"):
        raise InvalidInput("ServiceRequest.intent : « proposal » ou « order » attendu.", field="intent")
    patient_id = _required_id(
        resource.subject.reference if resource.subject else None,
        "Patient",
        "subject",
        "ServiceRequest.subject : référence Patient/<id> d'un patient de la plateforme attendue.",
    )
    offer_ids = {
        reference_id(info.reference, "HealthcareService") for info in resource.supportingInfo or []
    } - {None}
    for concept in [resource.code] if resource.code else []:
        for coding in concept.coding or []:
            if coding.system == OFFER_SYSTEM and coding.code and _UUID.match(coding.code):
                offer_ids.add(uuid.UUID(coding.code))
    if len(offer_ids) != 1:
        raise InvalidInput(
            "L'offre sollicitée est à donner une fois : supportingInfo HealthcareService/<id> "
            f"(ou code dans le système {OFFER_SYSTEM}).",
            field="supportingInfo",
        )
    if resource.requester is not None and resource.requester.reference:
        reference = resource.requester.reference
        if reference_id(reference, "Organization") is not None:
            requester_organisation_id = reference_id(reference, "Organization")
        elif reference_id(reference, "Practitioner") != principal_professional_id:
            raise InvalidInput(
                "ServiceRequest.requester : le professionnel titulaire du jeton (Practitioner/<id>) ou "
                "son établissement (Organization/<id>) attendu.",
                field="requester",
            )
    urgent = None if resource.priority is None else resource.priority in ("urgent", "asap", "stat")
    exemption = next(
        (e.valueString or "" for e in resource.extension or [] if e.url == EMERGENCY_EXEMPTION_URL), ""
    )
    incoming = IncomingRequest(
        offer_id=next(iter(offer_ids)),  # type: ignore[arg-type]
        patient_id=patient_id,
        requester_organisation_id=requester_organisation_id,
        urgent=urgent,
        send=resource.status == "active",
        emergency_exemption=exemption.strip(),
    )
    if answers is not None:
        if reference_id(answers.subject.reference if answers.subject else None, "Patient") not in (
            None,
            patient_id,
        ):
            raise InvalidInput(
                "QuestionnaireResponse.subject : ce n'est pas le patient de la demande.", field="subject"
            )
        incoming.answers, incoming.files = _answers(answers)
    return incoming


def _flatten(items: list[Any]) -> list[Any]:
    flat = []
    for item in items or []:
        flat.append(item)
        flat.extend(_flatten(item.item or []))
        for answer in item.answer or []:
            flat.extend(_flatten(answer.item or []))
    return flat


def _answers(response: QuestionnaireResponse) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """linkId -> raw value(s) for ``forms.validate_answers``; attachments (inline data) -> files."""
    raw: dict[str, Any] = {}
    files: list[tuple[str, bytes]] = []
    for item in _flatten(response.item or []):
        values: list[Any] = []
        for answer in item.answer or []:
            if answer.valueAttachment is not None:
                attachment = answer.valueAttachment
                content = attachment.data  # fhir.resources decodes the base64 (invalid base64 gives b"")
                if not content:
                    raise InvalidInput(
                        f"{item.linkId} : le document doit être joint en ligne, en base64 (Attachment.data).",
                        field=item.linkId,
                    )
                files.append((attachment.title or "document", content))
                continue
            value = _answer_value(answer)
            if value is not None:
                values.append(value)
        if values:
            raw[item.linkId] = values if len(values) > 1 else values[0]
    return raw, files


def _answer_value(answer: Any) -> Any:
    if answer.valueCoding is not None:
        return answer.valueCoding.code
    for name in ("valueBoolean", "valueInteger", "valueString", "valueDate", "valueTime"):
        value = getattr(answer, name)
        if value is not None:
            return value.isoformat() if hasattr(value, "isoformat") else value
    if answer.valueDecimal is not None:
        return str(Decimal(str(answer.valueDecimal)))
    if answer.valueDateTime is not None:
        moment = answer.valueDateTime
        if isinstance(moment, datetime):
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()
        return str(moment)
    return None
