"""Regional directory pages: organisations and their services, professionals and their memberships.

Every authenticated user reads the directory; the forms are for administrators (the service decides).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request

from telesante.auth.dependencies import PrincipalDep, SessionDep, require_roles
from telesante.auth.principal import Principal
from telesante.directory import service
from telesante.directory.models import OrganisationType, Profession, Role
from telesante.directory.schemas import (
    MembershipCreate,
    OrganisationCreate,
    ProfessionalCreate,
    ServiceCreate,
)
from telesante.kit.errors import Conflict, InvalidInput
from telesante.kit.pagination import Offset, PageRequest
from telesante.kit.schemas import parse_input
from telesante.web.forms import form_values, labelled_message
from telesante.web.render import form_error, redirect, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
Text = Annotated[str, Query(max_length=100)]

FIELD_LABELS = {
    "finess": "Numéro FINESS",
    "name": "Nom",
    "type": "Type",
    "address_line": "Adresse",
    "postal_code": "Code postal",
    "city": "Ville",
    "commune_insee": "Code INSEE de la commune",
    "departement": "Département",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "phone": "Téléphone",
    "rpps": "Numéro RPPS",
    "family_name": "Nom",
    "given_name": "Prénom",
    "profession": "Profession",
    "specialty": "Spécialité",
    "email": "Adresse électronique",
    "organisation_id": "Établissement",
    "service_id": "Service",
    "role": "Rôle",
}


# --- form helpers -------------------------------------------------------------------------------------------


def _enum(enum_cls: type, value: str, field: str) -> Any:
    if not value:
        return None
    try:
        return enum_cls(value)
    except ValueError:
        raise InvalidInput(f"{FIELD_LABELS.get(field, field)} : valeur inconnue.", field=field) from None


def _base_url(path: str, params: dict[str, str]) -> str:
    """Pager base: the current filters, then the pager appends ``offset=``."""
    kept = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(kept)}&" if kept else f"{path}?"


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and "hx-history-restore-request" not in request.headers


# --- organisations ------------------------------------------------------------------------------------------


@router.get("/annuaire")
async def directory_home():
    return redirect("/annuaire/etablissements")


@router.get("/annuaire/etablissements")
async def organisations(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    q: Text = "",
    type_code: Annotated[str, Query(alias="type", max_length=30)] = "",
    departement: Annotated[str, Query(max_length=3)] = "",
    offset: Offset = 0,
):
    type_ = _enum(OrganisationType, type_code, "type")
    departement = departement.strip().upper()
    page = await service.list_organisations(
        session, PageRequest(offset, PAGE_SIZE), query=q, type_=type_, departement=departement or None
    )
    context = {
        "page": page,
        "q": q,
        "type": type_code,
        "departement": departement,
        "base_url": _base_url(
            "/annuaire/etablissements", {"q": q, "type": type_code, "departement": departement}
        ),
    }
    template = (
        "directory/_organisations_results.html" if _is_htmx(request) else "directory/organisations.html"
    )
    response = render(request, template, context)
    response.headers["Vary"] = "HX-Request"
    return response


ORGANISATION_FIELDS = tuple(OrganisationCreate.model_fields)


@router.get("/annuaire/etablissements/nouveau", dependencies=[Depends(require_roles(Role.REGIONAL_ADMIN))])
async def new_organisation_form(request: Request):
    return render(request, "directory/organisation_form.html", {"values": {}})


@router.post("/annuaire/etablissements/nouveau")
async def new_organisation(request: Request, session: SessionDep, principal: PrincipalDep):
    values = form_values(await request.form(), ORGANISATION_FIELDS)
    try:
        organisation = await service.create_organisation(
            session, principal, parse_input(OrganisationCreate, values)
        )
    except (InvalidInput, Conflict) as exc:
        return form_error(
            request,
            "directory/organisation_form.html",
            {"values": values},
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=exc.status_code,
        )
    return redirect(f"/annuaire/etablissements/{organisation.id}?cree=1")


async def _organisation_context(session, principal: Principal, organisation_id: uuid.UUID) -> dict[str, Any]:
    organisation = await service.get_organisation(session, organisation_id)
    members = await service.members_of(session, organisation_id)
    services = {s.id: s for s in organisation.services}
    by_professional: dict[uuid.UUID, dict[str, Any]] = {}
    for membership, professional in members:
        entry = by_professional.setdefault(professional.id, {"professional": professional, "roles": []})
        entry["roles"].append((membership.role, services.get(membership.service_id)))
    return {
        "organisation": organisation,
        "members": list(by_professional.values()),
        "can_administer": principal.can_administer(organisation.id),
        "service_values": {},
    }


@router.get("/annuaire/etablissements/{organisation_id}")
async def organisation_detail(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    organisation_id: uuid.UUID,
    cree: str = "",
    service_ajoute: str = "",
):
    context = await _organisation_context(session, principal, organisation_id)
    if cree:
        context["message"] = "Établissement enregistré."
    elif service_ajoute:
        context["message"] = "Service ajouté."
    return render(request, "directory/organisation.html", context)


@router.post("/annuaire/etablissements/{organisation_id}/services")
async def add_service(
    request: Request, session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID
):
    values = form_values(await request.form(), ServiceCreate.model_fields)
    try:
        await service.add_service(session, principal, organisation_id, parse_input(ServiceCreate, values))
    except (InvalidInput, Conflict) as exc:
        context = await _organisation_context(session, principal, organisation_id)
        context["service_values"] = values
        return form_error(
            request,
            "directory/organisation.html",
            context,
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=exc.status_code,
        )
    return redirect(f"/annuaire/etablissements/{organisation_id}?service_ajoute=1#services")


# --- professionals ------------------------------------------------------------------------------------------


@router.get("/annuaire/professionnels")
async def professionals(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    q: Text = "",
    profession: Annotated[str, Query(max_length=30)] = "",
    offset: Offset = 0,
):
    profession_ = _enum(Profession, profession, "profession")
    page = await service.list_professionals(
        session, PageRequest(offset, PAGE_SIZE), query=q, profession=profession_
    )
    context = {
        "page": page,
        "q": q,
        "profession": profession,
        "base_url": _base_url("/annuaire/professionnels", {"q": q, "profession": profession}),
    }
    template = (
        "directory/_professionals_results.html" if _is_htmx(request) else "directory/professionals.html"
    )
    response = render(request, template, context)
    response.headers["Vary"] = "HX-Request"
    return response


PROFESSIONAL_FIELDS = tuple(ProfessionalCreate.model_fields)
AdminOnly = Depends(require_roles(Role.REGIONAL_ADMIN, Role.ORG_ADMIN))


@router.get("/annuaire/professionnels/nouveau", dependencies=[AdminOnly])
async def new_professional_form(request: Request):
    return render(request, "directory/professional_form.html", {"values": {}})


@router.post("/annuaire/professionnels/nouveau")
async def new_professional(request: Request, session: SessionDep, principal: PrincipalDep):
    values = form_values(await request.form(), PROFESSIONAL_FIELDS)
    try:
        professional = await service.create_professional(
            session, principal, parse_input(ProfessionalCreate, values)
        )
    except (InvalidInput, Conflict) as exc:
        return form_error(
            request,
            "directory/professional_form.html",
            {"values": values},
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=exc.status_code,
        )
    return redirect(f"/annuaire/professionnels/{professional.id}?cree=1")


async def _administered_organisations(session, principal: Principal) -> list[tuple[uuid.UUID, str]]:
    """Organisations offered in the membership form: those the principal administers."""
    if principal.is_regional_admin:
        page = await service.list_organisations(session, PageRequest(0, 100))
        return [(o.id, o.name) for o in page.items]
    seen: dict[uuid.UUID, str] = {}
    for grant in principal.grants:
        if grant.role == Role.ORG_ADMIN and grant.organisation_id is not None:
            seen.setdefault(grant.organisation_id, grant.organisation_name)
    return sorted(seen.items(), key=lambda item: item[1])


async def _professional_context(
    session, principal: Principal, professional_id: uuid.UUID, chosen_organisation: str = ""
) -> dict[str, Any]:
    professional = await service.get_professional(session, professional_id)
    memberships = await service.memberships_of(session, professional_id)
    service_names = await service.service_names(session, (m.service_id for m, _ in memberships))
    context: dict[str, Any] = {
        "professional": professional,
        "memberships": memberships,
        "service_names": service_names,
        "membership_values": {},
        "chosen_organisation": None,
        "organisation_choices": [],
        "service_options": [],
    }
    if principal.is_admin:
        context["organisation_choices"] = await _administered_organisations(session, principal)
        if chosen_organisation:
            try:
                chosen_id = uuid.UUID(chosen_organisation)
            except ValueError:
                raise InvalidInput("Établissement : identifiant invalide.", field="organisation_id") from None
            chosen = await service.get_organisation(session, chosen_id)
            context["chosen_organisation"] = chosen
            context["service_options"] = [(s.id, s.name) for s in chosen.services]
    return context


@router.get("/annuaire/professionnels/{professional_id}")
async def professional_detail(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    professional_id: uuid.UUID,
    etablissement: Annotated[str, Query(max_length=40)] = "",
    cree: str = "",
    rattachement: str = "",
):
    context = await _professional_context(session, principal, professional_id, etablissement)
    if cree:
        context["message"] = "Professionnel enregistré."
    elif rattachement == "ajoute":
        context["message"] = "Rattachement ajouté."
    elif rattachement == "fin":
        context["message"] = "Rattachement terminé."
    return render(request, "directory/professional.html", context)


@router.post("/annuaire/professionnels/{professional_id}/rattachements")
async def add_membership(
    request: Request, session: SessionDep, principal: PrincipalDep, professional_id: uuid.UUID
):
    values = form_values(await request.form(), ("organisation_id", "service_id", "role"))
    try:
        data = parse_input(MembershipCreate, {**values, "professional_id": str(professional_id)})
        await service.add_membership(session, principal, data)
    except (InvalidInput, Conflict) as exc:
        context = await _professional_context(
            session, principal, professional_id, values.get("organisation_id", "")
        )
        context["membership_values"] = values
        return form_error(
            request,
            "directory/professional.html",
            context,
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=exc.status_code,
        )
    return redirect(f"/annuaire/professionnels/{professional_id}?rattachement=ajoute#rattachements")


@router.post("/annuaire/rattachements/{membership_id}/fin")
async def end_membership(session: SessionDep, principal: PrincipalDep, membership_id: uuid.UUID):
    membership = await service.end_membership(session, principal, membership_id)
    return redirect(f"/annuaire/professionnels/{membership.professional_id}?rattachement=fin#rattachements")
