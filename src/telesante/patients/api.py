from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.kit.pagination import Offset, PageOut, PageRequest
from telesante.patients import service
from telesante.patients.models import Sex
from telesante.patients.repository import PatientCriteria
from telesante.patients.schemas import (
    AccessLogEntry,
    BreakGlassCreate,
    BreakGlassRead,
    BreakGlassReview,
    CareRelationshipRead,
    IdentityStatusChangeCreate,
    IdentityStatusChangeRead,
    LocalIdentifierCreate,
    LocalIdentifierRead,
    PatientCreate,
    PatientCreated,
    PatientDetail,
    PatientRead,
    PatientUpdate,
    TraitsCorrection,
)

router = APIRouter(tags=["patients"])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/patients", response_model=PageOut[PatientRead])
async def search_patients(
    session: SessionDep,
    principal: PrincipalDep,
    family: Annotated[str, Query(max_length=100, description="Nom de naissance ou utilisé (début)")] = "",
    given: Annotated[str, Query(max_length=100, description="Prénom (début)")] = "",
    birth_date: date | None = None,
    sex: Sex | None = None,
    ins: Annotated[str, Query(max_length=15)] = "",
    ipp: Annotated[str, Query(max_length=50)] = "",
    offset: Offset = 0,
    limit: Limit = 20,
):
    """Recherche par traits (insensible aux accents et à la casse), limitée aux patients de votre périmètre."""
    criteria = PatientCriteria(
        family=family, given=given, birth_date=birth_date, sex=sex, ins_matricule=ins, ipp=ipp
    )
    page = await service.search_patients(
        session, principal, criteria, PageRequest(offset, limit), identity=True
    )
    return PageOut(items=page.items, total=page.total, offset=page.offset, limit=page.limit)


@router.post(
    "/patients",
    response_model=PatientCreated,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "description": "Matricule INS déjà connu de la plateforme, traits concordants : l'identité existante "
            "est rattachée à votre établissement (ou y était déjà suivie) et renvoyée",
            "model": PatientCreated,
        },
        409: {
            "description": "Doublon probable, ou matricule INS d'un patient dont les traits diffèrent de ceux "
            "saisis (identitovigilance)"
        },
    },
)
async def create_patient(
    session: SessionDep, principal: PrincipalDep, data: PatientCreate, response: Response
):
    """Enregistre un patient ; si son matricule INS est déjà sur la plateforme et que les traits concordent, le
    rattache à votre établissement (200) au lieu d'en créer un second."""
    patient, warnings = await service.register_patient(session, principal, data)
    if service.EXISTING_IDENTITY_WARNINGS.intersection(warnings):
        response.status_code = status.HTTP_200_OK
    return PatientCreated(patient=PatientRead.model_validate(patient), warnings=warnings)


@router.get("/patients/{patient_id}", response_model=PatientDetail)
async def get_patient(session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    access = await service.get_patient_identity(session, principal, patient_id)
    detail = PatientDetail.model_validate(access.patient)
    detail.via_break_glass = access.via_break_glass
    return detail


@router.patch("/patients/{patient_id}", response_model=PatientRead)
async def update_patient(
    session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID, data: PatientUpdate
):
    return await service.update_patient(session, principal, patient_id, data)


@router.post("/patients/{patient_id}/traits", response_model=PatientRead)
async def correct_traits(
    session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID, data: TraitsCorrection
):
    """Corrige les traits stricts ; l'identité redevient provisoire."""
    return await service.correct_traits(session, principal, patient_id, data)


@router.get("/patients/{patient_id}/identity-status", response_model=list[IdentityStatusChangeRead])
async def identity_history(session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    return await service.list_status_changes(session, principal, patient_id)


@router.post("/patients/{patient_id}/identity-status", response_model=PatientRead)
async def change_identity_status(
    session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID, data: IdentityStatusChangeCreate
):
    return await service.change_identity_status(session, principal, patient_id, data)


@router.post(
    "/patients/{patient_id}/local-identifiers",
    response_model=LocalIdentifierRead,
    status_code=status.HTTP_201_CREATED,
)
async def add_local_identifier(
    session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID, data: LocalIdentifierCreate
):
    return await service.add_local_identifier(session, principal, patient_id, data)


@router.get("/patients/{patient_id}/care-relationships", response_model=list[CareRelationshipRead])
async def care_relationships(session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    return await service.list_care_relationships(session, principal, patient_id)


@router.get("/patients/{patient_id}/access-log", response_model=PageOut[AccessLogEntry])
async def access_log(
    session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID, offset: Offset = 0, limit: Limit = 50
):
    """Qui a accédé au dossier (traces d'audit du patient)."""
    page = await service.access_log(session, principal, patient_id, PageRequest(offset, limit))
    return PageOut(items=page.items, total=page.total, offset=page.offset, limit=page.limit)


@router.post("/break-glass", response_model=list[BreakGlassRead], status_code=status.HTTP_201_CREATED)
async def break_glass(
    session: SessionDep, principal: PrincipalDep, settings: SettingsDep, data: BreakGlassCreate
):
    """Accès d'urgence (« bris de glace ») : motif obligatoire, durée limitée, revu par l'administrateur."""
    return await service.break_glass(session, principal, settings, data)


@router.get("/break-glass/pending", response_model=PageOut[BreakGlassRead])
async def pending_break_glass(
    session: SessionDep, principal: PrincipalDep, offset: Offset = 0, limit: Limit = 50
):
    page = await service.list_pending_break_glass(session, principal, PageRequest(offset, limit))
    return PageOut(items=page.items, total=page.total, offset=page.offset, limit=page.limit)


@router.post("/break-glass/{grant_id}/review", response_model=BreakGlassRead)
async def review_break_glass(
    session: SessionDep, principal: PrincipalDep, grant_id: uuid.UUID, data: BreakGlassReview
):
    return await service.review_break_glass(session, principal, grant_id, data.comment)
