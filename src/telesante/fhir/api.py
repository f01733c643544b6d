"""FHIR R4 facade (mounted at /fhir): read and search of Patient, Practitioner and Organization; tele-expertise
requests as ServiceRequest / Task / QuestionnaireResponse / DiagnosticReport (+ Binary PDF), offers as
HealthcareService, forms as Questionnaire; teleconsultation scheduling (Schedule, Slot, Appointment) and calls
(Encounter VR); TéléAVC cases as Encounter (EMER) with their Observations; creation of a request by
POST /fhir/ServiceRequest or a transaction.

Routes are thin: parse the query, call the domain services (through ``fhir.search``), map to FHIR
resources, return ``application/fhir+json``. Errors become OperationOutcome in ``web/errors.py``.
Everything but /metadata needs a bearer token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fhir.resources.R4B.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from starlette.exceptions import HTTPException

from telesante.auth.dependencies import SessionDep, SettingsDep, bearer_token, require_bearer
from telesante.auth.principal import Principal
from telesante.fhir import mapping, search, tele_requests, workflow
from telesante.fhir import monitoring as fhir_monitoring
from telesante.fhir import scheduling as fhir_scheduling
from telesante.fhir import stroke as fhir_stroke
from telesante.fhir.tele_requests import InvalidResource
from telesante.kit import clock
from telesante.kit.pagination import Page
from telesante.storage.dependencies import BlobStoreDep, file_response

FHIR_JSON = "application/fhir+json"
_JSON_FORMATS = {"json", "application/json", FHIR_JSON}


class FHIRResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        if isinstance(content, FHIRAbstractModel):
            return content.model_dump_json().encode("utf-8")
        return super().render(content)


async def json_only(request: Request) -> None:  # async: no worker-thread hop (auth get_settings_dep)
    """``_format`` may only ask for JSON (the one format served)."""
    requested = request.query_params.get("_format")
    if requested is not None and requested.split(";")[0].strip() not in _JSON_FORMATS:
        raise HTTPException(406, "Seul le format JSON (application/fhir+json) est servi.")


router = APIRouter(tags=["fhir"], default_response_class=FHIRResponse, dependencies=[Depends(json_only)])
BearerDep = Annotated[Principal, Depends(require_bearer)]


def _base_url(request: Request) -> str:
    return str(request.url_for("fhir_metadata")).removesuffix("/metadata")


def _query(request: Request, supported: tuple[str, ...]) -> search.SearchQuery:
    strict = "handling=strict" in request.headers.get("prefer", "").replace(" ", "").lower()
    return search.parse_query(
        request.query_params.multi_items(), supported, strict=strict, repeatable=tele_requests.DATE_PARAMS
    )


def _bundle(
    request: Request,
    resource_type: str,
    query: search.SearchQuery,
    page: Page[Any],
    to_resource: Callable[[Any], Resource],
    id_of: Callable[[Any], Any] = lambda item: item.id,
) -> FHIRResponse:
    base = _base_url(request)
    entries = [(f"{base}/{resource_type}/{id_of(item)}", to_resource(item)) for item in page.items]
    links = search.links(f"{base}/{resource_type}", query, page.total, len(page.items))
    return FHIRResponse(mapping.searchset(entries, page.total, links, clock.now()))


@router.get("/metadata", name="fhir_metadata", summary="CapabilityStatement (public)")
async def capability_statement(request: Request) -> FHIRResponse:
    return FHIRResponse(mapping.capability_statement(_base_url(request), clock.now()))


@router.get("/Patient", summary="Recherche de patients (périmètre de soins, tracée)")
async def search_patients(request: Request, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    query = _query(request, search.PATIENT_PARAMS)
    found = await search.find_patients(session, principal, query)
    return _bundle(
        request,
        "Patient",
        query,
        found.page,
        lambda patient: mapping.patient_resource(patient, found.organisations),
    )


@router.get("/Patient/{patient_id}", summary="Lecture d'un patient (périmètre de soins, tracée)")
async def read_patient(patient_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    patient, organisations = await search.read_patient(session, principal, patient_id)
    return FHIRResponse(mapping.patient_resource(patient, organisations))


@router.get("/Practitioner", summary="Recherche de professionnels (annuaire)")
async def search_practitioners(request: Request, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    query = _query(request, search.PRACTITIONER_PARAMS)
    page = await search.find_practitioners(session, query)
    return _bundle(request, "Practitioner", query, page, mapping.practitioner_resource)


@router.get("/Practitioner/{practitioner_id}", summary="Lecture d'un professionnel")
async def read_practitioner(practitioner_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    return FHIRResponse(
        mapping.practitioner_resource(await search.read_practitioner(session, practitioner_id))
    )


@router.get("/Organization", summary="Recherche d'établissements (annuaire)")
async def search_organizations(request: Request, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    query = _query(request, search.ORGANIZATION_PARAMS)
    page = await search.find_organizations(session, query)
    return _bundle(request, "Organization", query, page, mapping.organization_resource)


@router.get("/Organization/{organization_id}", summary="Lecture d'un établissement")
async def read_organization(organization_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    return FHIRResponse(
        mapping.organization_resource(await search.read_organization(session, organization_id))
    )


# --- tele-expertise requests --------------------------------------------------------------------------------


@router.get("/ServiceRequest", summary="Recherche de demandes (parties à la demande, tracée)")
async def search_service_requests(
    request: Request, session: SessionDep, principal: BearerDep
) -> FHIRResponse:
    query = _query(request, tele_requests.SERVICE_REQUEST_PARAMS)
    page = await tele_requests.search(session, principal, "ServiceRequest", query)
    return _bundle(
        request, "ServiceRequest", query, page, tele_requests.service_request, lambda f: f.request.id
    )


@router.get("/ServiceRequest/{request_id}", summary="Lecture d'une demande (tracée)")
async def read_service_request(request_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    # the request's rule, or for a stroke alert's opinion the case's (the receiving centre): fhir/stroke.py
    found = await fhir_stroke.read_request(session, principal, request_id, "ServiceRequest")
    return FHIRResponse(tele_requests.service_request(found))


@router.post("/ServiceRequest", status_code=201, summary="Création d'une demande par un logiciel tiers")
async def create_service_request(
    request: Request, session: SessionDep, principal: BearerDep, settings: SettingsDep, store: BlobStoreDep
) -> FHIRResponse:
    found = await tele_requests.create_service_request(
        session, principal, settings, store, await request.body()
    )
    location = f"{_base_url(request)}/ServiceRequest/{found.request.id}"
    return FHIRResponse(tele_requests.service_request(found), status_code=201, headers={"Location": location})


@dataclass
class PostedBundle:
    body: bytes
    batch: fhir_monitoring.PreparedBatch | None = None  # a batch of Observations, read and checked
    refused: InvalidResource | None = None  # raised by the route, after authentication


async def posted_bundle(request: Request) -> PostedBundle:
    """The body of ``POST /fhir``, read before the request's transaction begins: the route declares it before the
    principal, whose look-up is the first statement. A device gateway's batch (hundreds of Observations) is parsed
    and checked here, so that on SQLite the write lock is never held for it (``db.WriteQueue``). Without a bearer
    token nothing is parsed (403 or 401 follows); what is wrong with the body is raised by the route, after authentication,
    so the order of the answers does not change."""
    body = await request.body()
    if bearer_token(request) is None:
        return PostedBundle(body)
    try:
        data = tele_requests._json(body)
        if fhir_monitoring.is_batch(data):
            return PostedBundle(body, batch=await fhir_monitoring.prepare_batch(data))
    except InvalidResource as refused:
        return PostedBundle(body, refused=refused)
    return PostedBundle(body)


PostedBundleDep = Annotated[PostedBundle, Depends(posted_bundle)]


@router.post(
    "",
    summary="Transaction (ServiceRequest + Task, QuestionnaireResponse) ou lot d'observations de télésurveillance",
)
async def transaction(
    posted: PostedBundleDep,
    session: SessionDep,
    principal: BearerDep,
    settings: SettingsDep,
    store: BlobStoreDep,
) -> FHIRResponse:
    if posted.refused is not None:
        raise posted.refused
    if posted.batch is not None:
        answer = await fhir_monitoring.batch(
            session, principal, posted.batch, settings.sqlite_batch_part, settings.sqlite_part_ms
        )
        return FHIRResponse(orjson.dumps(answer))  # one entry per posted Observation: serialised in C
    found, order = await tele_requests.transaction(session, principal, settings, store, posted.body)
    request_id = found.request.id
    locations = {
        "ServiceRequest": f"ServiceRequest/{request_id}",
        "Task": f"Task/{request_id}",
        "QuestionnaireResponse": f"QuestionnaireResponse/{request_id}",
    }
    return FHIRResponse(mapping.transaction_response([locations[kind] for kind in order], clock.now()))


@router.get("/Task", summary="Suivi des demandes (Task)")
async def search_tasks(request: Request, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    query = _query(request, tele_requests.TASK_PARAMS)
    page = await tele_requests.search(session, principal, "Task", query)
    return _bundle(request, "Task", query, page, tele_requests.task, lambda f: f.request.id)


@router.get("/Task/{request_id}", summary="Lecture du suivi d'une demande (tracée)")
async def read_task(request_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    found = await fhir_stroke.read_request(session, principal, request_id, "Task")
    return FHIRResponse(tele_requests.task(found))


@router.get("/QuestionnaireResponse/{request_id}", summary="Réponses au formulaire d'une demande (tracée)")
async def read_questionnaire_response(
    request_id: str, session: SessionDep, principal: BearerDep
) -> FHIRResponse:
    found = await tele_requests.read(session, principal, request_id)
    return FHIRResponse(tele_requests.questionnaire_response(found))


@router.get("/DiagnosticReport", summary="Recherche de comptes rendus signés (tracée)")
async def search_diagnostic_reports(
    request: Request, session: SessionDep, principal: BearerDep
) -> FHIRResponse:
    query = _query(request, tele_requests.DIAGNOSTIC_REPORT_PARAMS)
    page = await tele_requests.search(session, principal, "DiagnosticReport", query)
    reports = await tele_requests.reports_for(session, page)
    base = _base_url(request)
    return _bundle(
        request,
        "DiagnosticReport",
        query,
        page,
        lambda found: tele_requests.diagnostic_report(found, reports[found.report_id], base),
        lambda found: found.report_id,
    )


@router.get("/DiagnosticReport/{report_id}", summary="Lecture d'un compte rendu signé (tracée)")
async def read_diagnostic_report(
    request: Request, report_id: str, session: SessionDep, principal: BearerDep
) -> FHIRResponse:
    found, report = await tele_requests.read_report(session, principal, report_id)
    return FHIRResponse(tele_requests.diagnostic_report(found, report, _base_url(request)))


@router.get("/Binary/{report_id}", summary="PDF signé d'un compte rendu (tracé)", response_model=None)
async def read_binary(
    request: Request, report_id: str, session: SessionDep, principal: BearerDep, store: BlobStoreDep
) -> Response:
    report, pdf = await tele_requests.read_report_pdf(session, principal, store, report_id)
    if "application/pdf" in request.headers.get("accept", ""):
        return file_response(pdf, "application/pdf", f"compte-rendu-{report.id}.pdf")
    response = FHIRResponse(workflow.binary_resource(report, pdf))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- forms and offers ---------------------------------------------------------------------------------------


@router.get("/Questionnaire", summary="Formulaires des offres")
async def search_questionnaires(request: Request, principal: BearerDep) -> FHIRResponse:
    query = _query(request, ("url", "name"))
    found = tele_requests.questionnaires(query)
    total = len(found)
    shown = found[query.page.offset : query.page.offset + query.count]
    page = Page(items=shown, total=total, offset=query.page.offset, limit=query.page.limit)
    return _bundle(request, "Questionnaire", query, page, lambda q: q, lambda q: q.id)


@router.get("/Questionnaire/{questionnaire_id}", summary="Lecture d'un formulaire")
async def read_questionnaire(questionnaire_id: str, principal: BearerDep) -> FHIRResponse:
    return FHIRResponse(tele_requests.questionnaire(questionnaire_id))


@router.get("/HealthcareService", summary="Offres que le titulaire du jeton peut solliciter")
async def search_healthcare_services(
    request: Request, session: SessionDep, principal: BearerDep
) -> FHIRResponse:
    query = _query(request, tele_requests.HEALTHCARE_SERVICE_PARAMS)
    found = await tele_requests.offers(session, principal, query)
    shown = found[query.page.offset : query.page.offset + query.count]
    page = Page(items=shown, total=len(found), offset=query.page.offset, limit=query.page.limit)
    return _bundle(
        request, "HealthcareService", query, page, workflow.healthcare_service_resource, lambda o: o.id
    )


@router.get("/HealthcareService/{offer_id}", summary="Lecture d'une offre")
async def read_healthcare_service(offer_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    return FHIRResponse(
        workflow.healthcare_service_resource(await tele_requests.read_offer(session, offer_id))
    )


# --- teleconsultation scheduling and calls (fhir/scheduling.py) ------------------------------------------------


def _listed(request: Request, resource_type: str, query: search.SearchQuery, found: list, to_resource, id_of):
    shown = found[query.page.offset : query.page.offset + query.count] if query.count else []
    page = Page(items=shown, total=len(found), offset=query.page.offset, limit=query.page.limit)
    return _bundle(request, resource_type, query, page, to_resource, id_of)


@router.get("/Schedule", summary="Agendas de téléconsultation d'un médecin (disponibilités en cours)")
async def search_schedules(request: Request, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    query = _query(request, fhir_scheduling.SCHEDULE_PARAMS)
    found = await fhir_scheduling.schedules(session, principal, query)
    return _listed(request, "Schedule", query, found, fhir_scheduling.schedule_resource, lambda p: p.id)


@router.get("/Schedule/{schedule_id}", summary="Lecture d'un agenda")
async def read_schedule(schedule_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    return FHIRResponse(
        fhir_scheduling.schedule_resource(
            await fhir_scheduling.read_schedule(session, principal, schedule_id)
        )
    )


@router.get("/Slot", summary="Créneaux libres d'un agenda")
async def search_slots(
    request: Request, session: SessionDep, settings: SettingsDep, principal: BearerDep
) -> FHIRResponse:
    query = _query_dates(request, fhir_scheduling.SLOT_PARAMS, ("start",))
    found = await fhir_scheduling.slots(session, principal, settings, query)
    return _listed(request, "Slot", query, found, fhir_scheduling.slot_resource, lambda s: s.id)


@router.get("/Slot/{slot_id}", summary="Lecture d'un créneau")
async def read_slot(slot_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    return FHIRResponse(
        fhir_scheduling.slot_resource(await fhir_scheduling.read_slot(session, principal, slot_id))
    )


@router.get("/Appointment", summary="Téléconsultations programmées (établissements du jeton, tracée)")
async def search_appointments(request: Request, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    query = _query_dates(request, fhir_scheduling.APPOINTMENT_PARAMS, ("date",))
    found = await fhir_scheduling.appointments(session, principal, query)
    return _listed(request, "Appointment", query, found, fhir_scheduling.appointment_resource, lambda a: a.id)


@router.get("/Appointment/{appointment_id}", summary="Lecture d'un rendez-vous (tracée)")
async def read_appointment(appointment_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    return FHIRResponse(
        fhir_scheduling.appointment_resource(
            await fhir_scheduling.read_appointment(session, principal, appointment_id)
        )
    )


# --- encounters (video calls, stroke cases) and the stroke cases' observations (fhir/stroke.py) ----------------


@router.get(
    "/Encounter", summary="Rencontres : appels vidéo (classe VR) et prises en charge AVC (classe EMER)"
)
async def search_encounters(request: Request, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    query = _query_dates(request, fhir_stroke.ENCOUNTER_PARAMS, fhir_stroke.DATE_PARAMS)
    page = await fhir_stroke.search_encounters(session, principal, query)
    return _bundle(request, "Encounter", query, page, lambda encounter: encounter)


@router.get(
    "/Encounter/{encounter_id}", summary="Lecture d'un appel vidéo ou d'une prise en charge AVC (tracée)"
)
async def read_encounter(encounter_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    return FHIRResponse(await fhir_stroke.read_encounter(session, principal, encounter_id))


@router.get(
    "/Observation",
    summary="Observations d'un patient : dossiers AVC (NIHSS, constantes, biologie) et mesures de télésurveillance (tracée)",
)
async def search_observations(request: Request, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    query = _query_dates(request, fhir_stroke.OBSERVATION_PARAMS, fhir_stroke.DATE_PARAMS)
    page = await fhir_stroke.search_observations(session, principal, query)
    return _bundle(request, "Observation", query, page, lambda observation: observation)


@router.post("/Observation", status_code=201, summary="Mesure de télésurveillance (appareil, passerelle)")
async def create_observation(request: Request, session: SessionDep, principal: BearerDep) -> Response:
    status, location = await fhir_monitoring.create_observation(session, principal, await request.body())
    observation_id = location.rpartition("/")[2] if location else ""
    resource = await fhir_monitoring.read_observation(session, principal, observation_id)
    return FHIRResponse(
        resource, status_code=status, headers={"Location": f"{_base_url(request)}/{location}"}
    )


@router.get(
    "/Observation/{observation_id}",
    summary="Lecture d'une observation : dossier AVC, ou mesure de télésurveillance (tls-…) (tracée)",
)
async def read_observation(observation_id: str, session: SessionDep, principal: BearerDep) -> FHIRResponse:
    monitored = await fhir_monitoring.read_observation(session, principal, observation_id)
    if monitored is not None:
        return FHIRResponse(monitored)
    return FHIRResponse(await fhir_stroke.read_observation(session, principal, observation_id))


def _query_dates(request: Request, supported: tuple[str, ...], dates: tuple[str, ...]) -> search.SearchQuery:
    strict = "handling=strict" in request.headers.get("prefer", "").replace(" ", "").lower()
    return search.parse_query(request.query_params.multi_items(), supported, strict=strict, repeatable=dates)
