"""FHIR glue for tele-expertise requests: search parameters -> ``RequestSearch``, posted resources -> one call
of the requests service, results -> resources (``fhir.workflow``). Scoping and audit stay in the requests service.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.fhir import workflow
from telesante.fhir.search import InvalidSearch, SearchQuery, parse_date_range, parse_token
from telesante.kit.errors import DomainError, InvalidInput, NotFound
from telesante.kit.pagination import Page
from telesante.kit.schemas import french_message
from telesante.offers import forms
from telesante.offers import service as offer_service
from telesante.offers.models import Offer
from telesante.requests import service as request_service
from telesante.requests.models import RequestReport, RequestStatus
from telesante.requests.repository import RequestFound, RequestSearch
from telesante.requests.schemas import RequestCreate, RequestSend
from telesante.storage.blobs import BlobStore

SERVICE_REQUEST_PARAMS = (
    "_id",
    "patient",
    "subject",
    "status",
    "requester",
    "performer",
    "authored",
    "_lastUpdated",
)
TASK_PARAMS = (
    "_id",
    "patient",
    "subject",
    "focus",
    "based-on",
    "status",
    "business-status",
    "owner",
    "requester",
    "authored-on",
    "_lastUpdated",
)
DIAGNOSTIC_REPORT_PARAMS = ("patient", "subject", "based-on", "status")
HEALTHCARE_SERVICE_PARAMS = ("organization", "name", "active")
DATE_PARAMS = ("authored", "authored-on", "_lastUpdated")
MAX_BODY_BYTES = (
    30 * 1024 * 1024
)  # base64 attachments inflate by a third: the attachment limit is checked after


class InvalidResource(DomainError):
    """A posted body that is not the FHIR resource expected (HTTP 400, OperationOutcome)."""

    status_code = 400
    code = "ressource-invalide"
    title = "Ressource invalide"


# --- search ----------------------------------------------------------------------------------------------


class _NoMatch(Exception):
    """A criterion that no request can meet (a reference to another kind of resource, an unknown code)."""


def _target(value: str, *types: str) -> tuple[str, uuid.UUID]:
    """A reference search value (``Type/id``, absolute URL, or bare id = the first type) -> (type, id)."""
    for resource_type in types:
        found = workflow.reference_id(value, resource_type)
        if found is not None:
            return resource_type, found
    if "/" not in value:
        try:
            return types[0], uuid.UUID(value)
        except ValueError:
            pass
    raise _NoMatch


def _statuses(name: str, value: str, known: frozenset[str], mapping) -> tuple[RequestStatus, ...]:
    if value not in known:
        raise InvalidSearch(
            f"{name} : code inconnu « {value} » (attendu : {', '.join(sorted(known))}).", field=name
        )
    return workflow.statuses_for(value, mapping)


def _criteria(resource_type: str, query: SearchQuery) -> RequestSearch:
    values = query.values
    found: dict[str, Any] = {}
    patient = values.get("patient") or values.get("subject")
    if patient:
        found["patient_id"] = _target(patient, "Patient")[1]
    if "_id" in values:
        found["request_id"] = _target(values["_id"], resource_type)[1]
    for name in ("focus", "based-on"):
        if name in values:
            found["request_id"] = _target(values[name], "ServiceRequest")[1]
    if "status" in values:
        if resource_type == "ServiceRequest":
            found["statuses"] = _statuses(
                "status", values["status"], workflow.SERVICE_REQUEST_STATUSES, workflow.SERVICE_REQUEST_STATUS
            )
        elif resource_type == "Task":
            found["statuses"] = _statuses(
                "status", values["status"], workflow.TASK_STATUSES, workflow.TASK_STATUS
            )
        elif values["status"] != "final":  # a signed compte rendu is final, and nothing else is published
            raise _NoMatch
    if "business-status" in values:
        system, code = parse_token(values["business-status"])
        if system not in (None, workflow.REQUEST_STATUS_SYSTEM) or code not in set(RequestStatus):
            raise _NoMatch
        found["statuses"] = tuple(set(found.get("statuses", tuple(RequestStatus))) & {RequestStatus(code)})
    if "requester" in values:
        kind, id_ = _target(values["requester"], "Practitioner", "Organization")
        found["requester_professional_id" if kind == "Practitioner" else "requester_organisation_id"] = id_
    for name in ("performer", "owner"):
        if name in values:
            kind, id_ = _target(values[name], "Practitioner", "Organization")
            found["performer_professional_id" if kind == "Practitioner" else "performer_organisation_id"] = (
                id_
            )
    for name in ("authored", "authored-on"):
        if name in query.repeated:
            found["authored"] = parse_date_range(name, query.repeated[name])
    if "_lastUpdated" in query.repeated:
        found["updated"] = parse_date_range("_lastUpdated", query.repeated["_lastUpdated"])
    if resource_type == "DiagnosticReport":
        found["with_report"] = True
    return RequestSearch(**found)


async def search(
    session: AsyncSession, principal: Principal, resource_type: str, query: SearchQuery
) -> Page[RequestFound]:
    try:
        criteria = _criteria(resource_type, query)
    except _NoMatch:
        return Page(items=[], total=0, offset=query.page.offset, limit=query.page.limit)
    page = await request_service.search_requests(session, principal, criteria, query.page)
    if query.count == 0:
        return Page(items=[], total=page.total, offset=page.offset, limit=0)
    return page


def _id(value: str, message: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(message) from None


async def read(session: AsyncSession, principal: Principal, request_id: str) -> RequestFound:
    return await request_service.read_request(session, principal, _id(request_id, "Demande introuvable."))


async def read_report(
    session: AsyncSession, principal: Principal, report_id: str
) -> tuple[RequestFound, RequestReport]:
    return await request_service.read_report(session, principal, _id(report_id, "Compte rendu introuvable."))


async def read_report_pdf(
    session: AsyncSession, principal: Principal, store: BlobStore, report_id: str
) -> tuple[RequestReport, bytes]:
    return await request_service.read_report_pdf_by_id(
        session, principal, store, _id(report_id, "Compte rendu introuvable.")
    )


async def reports_for(session: AsyncSession, page: Page[RequestFound]) -> dict[uuid.UUID, RequestReport]:
    return await request_service.reports_of(session, {f.report_id for f in page.items if f.report_id})


# --- resources ---------------------------------------------------------------------------------------------


def service_request(found: RequestFound):
    request = found.request
    return workflow.service_request_resource(
        request, found.offer_title, forms.get_form(request.form_code, request.form_version)
    )


def questionnaire_response(found: RequestFound) -> QuestionnaireResponse:
    request = found.request
    resource = workflow.questionnaire_response(
        forms.get_form(request.form_code, request.form_version), request, request.answers, contained=False
    )
    resource["id"] = str(request.id)
    return QuestionnaireResponse.model_validate(resource)


def task(found: RequestFound):
    return workflow.task_resource(found.request, found.offer_title, found.report_id)


def diagnostic_report(found: RequestFound, report: RequestReport, base_url: str):
    request = found.request
    return workflow.diagnostic_report_resource(
        request,
        report,
        forms.get_form(request.form_code, request.form_version),
        f"{base_url}/Binary/{report.id}",
    )


# --- questionnaires and offers -------------------------------------------------------------------------------


def questionnaire(questionnaire_id: str):
    for form in forms.all_forms():
        if workflow.questionnaire_id(form) == questionnaire_id:
            return workflow.questionnaire_resource(form)
    raise NotFound("Formulaire introuvable.")


def questionnaires(query: SearchQuery) -> list:
    wanted_url = query.values.get("url")
    found = []
    for form in sorted(forms.all_forms(), key=lambda f: (f.code, f.version)):
        url = workflow.form_canonical(form.code)
        if wanted_url and wanted_url not in (url, f"{url}|{form.version}"):
            continue
        if "name" in query.values and query.values["name"].lower() not in form.code.lower():
            continue
        found.append(workflow.questionnaire_resource(form))
    return found


async def read_offer(session: AsyncSession, offer_id: str) -> Offer:
    return await offer_service.get_offer(session, _id(offer_id, "Offre inconnue."))


async def offers(session: AsyncSession, principal: Principal, query: SearchQuery) -> list[Offer]:
    """The offers the token holder may request (HealthcareService search), filtered in memory (a few dozen)."""
    found = await offer_service.list_requestable_offers(session, principal)
    values = query.values
    if "organization" in values:
        try:
            organisation = _target(values["organization"], "Organization")[1]
        except _NoMatch:
            return []
        found = [o for o in found if o.organisation_id == organisation]
    if "name" in values:
        found = [o for o in found if values["name"].lower() in o.title.lower()]
    if values.get("active") == "false":
        return []
    return found


# --- creation ----------------------------------------------------------------------------------------------


def _load(model, data: Any, what: str):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ())) or what
        raise InvalidResource(f"{what} invalide — {where} : {french_message(error)}.", field=where) from None


def _json(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidResource("Corps de requête trop volumineux.")
    try:
        return orjson.loads(body)  # a gateway's batch holds thousands of Observations: parsed in C
    except (ValueError, UnicodeDecodeError):
        raise InvalidResource("Le corps doit être une ressource FHIR en JSON.") from None


def _expect(data: Any, resource_type: str) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise InvalidResource(f"Une ressource {resource_type} est attendue.", field="resourceType")
    return data


def _contained_answers(resource: ServiceRequest) -> QuestionnaireResponse | None:
    wanted = {
        info.reference[1:]
        for info in resource.supportingInfo or []
        if info.reference and info.reference.startswith("#")
    }
    for contained in resource.contained or []:
        if contained.get_resource_type() == "QuestionnaireResponse" and (
            not wanted or contained.id in wanted
        ):
            return contained
    return None


async def _submit(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    store: BlobStore,
    incoming: workflow.IncomingRequest,
) -> RequestFound:
    try:
        data = RequestCreate(
            offer_id=incoming.offer_id,
            patient_id=incoming.patient_id,
            requester_organisation_id=incoming.requester_organisation_id,
            urgent=incoming.urgent,
            answers=incoming.answers,
        )
        send = RequestSend(emergency_exemption=incoming.emergency_exemption) if incoming.send else None
    except ValidationError as exc:
        message = str(exc.errors()[0].get("msg", "valeur incorrecte")).removeprefix("Value error, ")
        raise InvalidInput(message, field="extension") from None
    request = await request_service.submit_request(
        session, principal, settings, store, data, incoming.files, send=send
    )
    return await request_service.read_request(session, principal, request.id)


async def create_service_request(
    session: AsyncSession, principal: Principal, settings: Settings, store: BlobStore, body: bytes
) -> RequestFound:
    """POST /fhir/ServiceRequest: a draft (status draft) or a sent request (status active), answers in a contained
    QuestionnaireResponse."""
    resource = _load(ServiceRequest, _expect(_json(body), "ServiceRequest"), "ServiceRequest")
    incoming = workflow.incoming_service_request(
        resource, principal.professional_id, _contained_answers(resource)
    )
    return await _submit(session, principal, settings, store, incoming)


async def transaction(
    session: AsyncSession, principal: Principal, settings: Settings, store: BlobStore, body: bytes
) -> tuple[RequestFound, list[str]]:
    """POST /fhir with a transaction Bundle: one ServiceRequest, optionally its Task (focus = the ServiceRequest's
    fullUrl; its requester names the requesting Organization) and a QuestionnaireResponse the ServiceRequest points
    to. All or nothing. Returns the request and, per entry, the created resource type."""
    bundle = _load(Bundle, _expect(_json(body), "Bundle"), "Bundle")
    if bundle.type != "transaction":
        raise InvalidResource("Bundle.type : « transaction » attendu.", field="type")
    by_type: dict[str, list[tuple[str, Any]]] = {}
    order: list[str] = []
    for index, entry in enumerate(bundle.entry or []):
        if entry.resource is None or entry.request is None:
            raise InvalidResource(
                f"Bundle.entry[{index}] : resource et request sont obligatoires.", field="entry"
            )
        kind = entry.resource.get_resource_type()
        if kind not in ("ServiceRequest", "Task", "QuestionnaireResponse"):
            raise InvalidResource(
                f"Bundle.entry[{index}] : {kind} n'est pas pris en charge dans une transaction "
                "(ServiceRequest, Task, QuestionnaireResponse).",
                field="entry",
            )
        if entry.request.method != "POST" or entry.request.url.strip("/") != kind:
            raise InvalidResource(
                f"Bundle.entry[{index}] : seule la création (POST {kind}) est prise en charge.", field="entry"
            )
        by_type.setdefault(kind, []).append((entry.fullUrl or "", entry.resource))
        order.append(kind)
    if len(by_type.get("ServiceRequest", [])) != 1 or any(len(v) > 1 for v in by_type.values()):
        raise InvalidResource(
            "Le Bundle porte exactement une ServiceRequest, et au plus une Task et un QuestionnaireResponse.",
            field="entry",
        )
    full_url, resource = by_type["ServiceRequest"][0]
    answers = _contained_answers(resource)
    if "QuestionnaireResponse" in by_type:
        qr_url, qr = by_type["QuestionnaireResponse"][0]
        references = {info.reference for info in resource.supportingInfo or []}
        if not qr_url or qr_url not in references:
            raise InvalidResource(
                "ServiceRequest.supportingInfo doit référencer le QuestionnaireResponse du Bundle (son fullUrl).",
                field="supportingInfo",
            )
        answers = qr
    organisation = None
    if "Task" in by_type:
        task_resource: Task = by_type["Task"][0][1]
        if not task_resource.focus or not full_url or task_resource.focus.reference != full_url:
            raise InvalidResource(
                "Task.focus doit référencer la ServiceRequest du Bundle (son fullUrl).", field="focus"
            )
        if task_resource.status not in ("draft", "requested"):
            raise InvalidResource("Task.status : « draft » ou « requested » attendu.", field="status")
        if task_resource.requester is not None and task_resource.requester.reference:
            organisation = workflow.reference_id(task_resource.requester.reference, "Organization")
            if organisation is None:
                raise InvalidResource(
                    "Task.requester : l'établissement requérant (Organization/<id>) attendu.",
                    field="requester",
                )
    incoming = workflow.incoming_service_request(resource, principal.professional_id, answers, organisation)
    return await _submit(session, principal, settings, store, incoming), order
