from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.consents import service
from telesante.consents.models import ConsentScopeType
from telesante.consents.schemas import (
    ConsentCheck,
    ConsentCreate,
    ConsentRead,
    ConsentWithdraw,
    InformationTextCreate,
    InformationTextRead,
)

router = APIRouter(tags=["consentements"])


@router.get("/information-texts", response_model=list[InformationTextRead])
async def list_information_texts(
    session: SessionDep,
    principal: PrincipalDep,
    scope_type: ConsentScopeType | None = None,
    scope_code: Annotated[str | None, Query(max_length=60)] = None,
):
    """Notices d'information en vigueur (une version par périmètre)."""
    return await service.list_information_texts(session, scope_type, scope_code)


@router.post("/information-texts", response_model=InformationTextRead, status_code=status.HTTP_201_CREATED)
async def publish_information_text(session: SessionDep, principal: PrincipalDep, data: InformationTextCreate):
    return await service.publish_information_text(session, principal, data)


@router.get("/patients/{patient_id}/consents", response_model=list[ConsentRead])
async def list_consents(session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    return await service.list_consents(session, principal, patient_id)


@router.post(
    "/patients/{patient_id}/consents", response_model=ConsentRead, status_code=status.HTTP_201_CREATED
)
async def record_consent(
    session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID, data: ConsentCreate
):
    return await service.record_consent(session, principal, patient_id, data)


@router.post("/patients/{patient_id}/consents/{consent_id}/withdraw", response_model=ConsentRead)
async def withdraw_consent(
    session: SessionDep,
    principal: PrincipalDep,
    patient_id: uuid.UUID,
    consent_id: uuid.UUID,
    data: ConsentWithdraw,
):
    return await service.withdraw_consent(session, principal, patient_id, consent_id, data.reason)


@router.get("/patients/{patient_id}/consents/check", response_model=ConsentCheck)
async def check_consent(
    session: SessionDep,
    principal: PrincipalDep,
    patient_id: uuid.UUID,
    scope_type: ConsentScopeType,
    scope_code: Annotated[str, Query(min_length=2, max_length=60)],
):
    """État du consentement pour un périmètre : c'est ce que chaque acte vérifie avant de démarrer."""
    return await service.check_consent(session, principal, patient_id, scope_type, scope_code)
