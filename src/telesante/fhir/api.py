"""FHIR R4 facade (mounted at /fhir): read and search of Patient, Practitioner and Organization.

Routes are thin: parse the query, call the domain services (through ``fhir.search``), map to FHIR
resources, return ``application/fhir+json``. Errors become OperationOutcome in ``web/errors.py``.
Everything but /metadata needs a bearer token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fhir.resources.R4B.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from starlette.exceptions import HTTPException

from telesante.auth.dependencies import SessionDep, require_bearer
from telesante.auth.principal import Principal
from telesante.fhir import mapping, search
from telesante.kit import clock
from telesante.kit.pagination import Page

FHIR_JSON = "application/fhir+json"
_JSON_FORMATS = {"json", "application/json", FHIR_JSON}


class FHIRResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        if isinstance(content, FHIRAbstractModel):
            return content.model_dump_json().encode("utf-8")
        return super().render(content)


def json_only(request: Request) -> None:
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
    return search.parse_query(request.query_params.multi_items(), supported, strict=strict)


def _bundle(
    request: Request,
    resource_type: str,
    query: search.SearchQuery,
    page: Page[Any],
    to_resource: Callable[[Any], Resource],
) -> FHIRResponse:
    base = _base_url(request)
    entries = [(f"{base}/{resource_type}/{item.id}", to_resource(item)) for item in page.items]
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
