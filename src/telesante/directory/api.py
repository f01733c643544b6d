from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.directory import service
from telesante.directory.models import OrganisationType, Profession
from telesante.directory.schemas import (
    MembershipCreate,
    MembershipRead,
    OrganisationCreate,
    OrganisationDetail,
    OrganisationRead,
    OrganisationUpdate,
    ProfessionalCreate,
    ProfessionalDetail,
    ProfessionalRead,
    ProfessionalUpdate,
    ServiceCreate,
    ServiceRead,
)
from telesante.kit.pagination import Offset, PageOut, PageRequest

router = APIRouter(tags=["annuaire"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/organisations", response_model=PageOut[OrganisationRead])
async def list_organisations(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(max_length=100)] = "",
    type: OrganisationType | None = None,
    departement: Annotated[str | None, Query(max_length=3)] = None,
    offset: Offset = 0,
    limit: Limit = 20,
):
    page = await service.list_organisations(
        session, PageRequest(offset, limit), query=q, type_=type, departement=departement
    )
    return PageOut(items=page.items, total=page.total, offset=page.offset, limit=page.limit)


@router.post("/organisations", response_model=OrganisationRead, status_code=status.HTTP_201_CREATED)
async def create_organisation(session: SessionDep, principal: PrincipalDep, data: OrganisationCreate):
    return await service.create_organisation(session, principal, data)


@router.get("/organisations/{organisation_id}", response_model=OrganisationDetail)
async def get_organisation(session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID):
    return await service.get_organisation(session, organisation_id)


@router.patch("/organisations/{organisation_id}", response_model=OrganisationRead)
async def update_organisation(
    session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID, data: OrganisationUpdate
):
    return await service.update_organisation(session, principal, organisation_id, data)


@router.post(
    "/organisations/{organisation_id}/services",
    response_model=ServiceRead,
    status_code=status.HTTP_201_CREATED,
)
async def add_service(
    session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID, data: ServiceCreate
):
    return await service.add_service(session, principal, organisation_id, data)


@router.get("/organisations/{organisation_id}/members", response_model=list[ProfessionalRead])
async def list_members(session: SessionDep, principal: PrincipalDep, organisation_id: uuid.UUID):
    members = await service.members_of(session, organisation_id)
    unique = {p.id: p for _, p in members}
    return list(unique.values())


@router.get("/professionals", response_model=PageOut[ProfessionalRead])
async def list_professionals(
    session: SessionDep,
    principal: PrincipalDep,
    q: Annotated[str, Query(max_length=100)] = "",
    profession: Profession | None = None,
    organisation_id: uuid.UUID | None = None,
    offset: Offset = 0,
    limit: Limit = 20,
):
    page = await service.list_professionals(
        session, PageRequest(offset, limit), query=q, profession=profession, organisation_id=organisation_id
    )
    return PageOut(items=page.items, total=page.total, offset=page.offset, limit=page.limit)


@router.post("/professionals", response_model=ProfessionalRead, status_code=status.HTTP_201_CREATED)
async def create_professional(session: SessionDep, principal: PrincipalDep, data: ProfessionalCreate):
    return await service.create_professional(session, principal, data)


@router.get("/professionals/{professional_id}", response_model=ProfessionalDetail)
async def get_professional(session: SessionDep, principal: PrincipalDep, professional_id: uuid.UUID):
    return await service.get_professional(session, professional_id)


@router.patch("/professionals/{professional_id}", response_model=ProfessionalRead)
async def update_professional(
    session: SessionDep, principal: PrincipalDep, professional_id: uuid.UUID, data: ProfessionalUpdate
):
    return await service.update_professional(session, principal, professional_id, data)


@router.post("/memberships", response_model=MembershipRead, status_code=status.HTTP_201_CREATED)
async def add_membership(session: SessionDep, principal: PrincipalDep, data: MembershipCreate):
    return await service.add_membership(session, principal, data)


@router.post("/memberships/{membership_id}/end", response_model=MembershipRead)
async def end_membership(session: SessionDep, principal: PrincipalDep, membership_id: uuid.UUID):
    return await service.end_membership(session, principal, membership_id)
