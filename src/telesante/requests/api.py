from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile, status
from fastapi.responses import Response

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.kit.pagination import Offset, PageOut, PageRequest
from telesante.requests import service
from telesante.requests.models import RequestStatus
from telesante.requests.repository import WorklistFilter
from telesante.requests.schemas import (
    AttachmentRead,
    MessageCreate,
    MessageRead,
    ReasonInput,
    ReportCreate,
    ReportRead,
    RequestAnswer,
    RequestCreate,
    RequestDetail,
    RequestDraftUpdate,
    RequestRead,
    RequestSend,
    WorklistItem,
)
from telesante.storage.dependencies import BlobStoreDep, file_response

router = APIRouter(tags=["demandes"])

Limit = Annotated[int, Query(ge=1, le=100)]


def worklist_item(row) -> WorklistItem:
    request = row.request
    return WorklistItem(
        id=request.id,
        status=request.status,
        urgent=request.urgent,
        overdue=service.is_overdue(request),
        offer_title=row.offer_title,
        specialty=row.specialty,
        patient_id=request.patient_id,
        patient_name=row.patient_name,
        patient_birth_date=row.patient_birth_date,
        requester_name=request.requester_name,
        assigned_name=request.assigned_name,
        sent_at=request.sent_at,
        deadline_at=request.deadline_at,
    )


@router.get("/requests", response_model=PageOut[WorklistItem])
async def list_requests(
    session: SessionDep,
    principal: PrincipalDep,
    side: Annotated[str, Query(pattern="^(requester|expert|all)$")] = "all",
    status_: Annotated[list[RequestStatus] | None, Query(alias="status")] = None,
    offer_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    specialty: Annotated[str, Query(max_length=100)] = "",
    urgent: bool | None = None,
    offset: Offset = 0,
    limit: Limit = 20,
):
    """Liste de travail : vos demandes (requérant) ou celles à traiter (expert)."""
    criteria = WorklistFilter(
        side=side,
        statuses=tuple(status_ or ()),
        offer_id=offer_id,
        patient_id=patient_id,
        specialty=specialty,
        urgent=urgent,
    )
    page = await service.worklist(session, principal, criteria, PageRequest(offset, limit))
    return PageOut(
        items=[worklist_item(r) for r in page.items], total=page.total, offset=page.offset, limit=page.limit
    )


@router.post("/requests", response_model=RequestRead, status_code=status.HTTP_201_CREATED)
async def create_request(session: SessionDep, principal: PrincipalDep, data: RequestCreate):
    """Créer un brouillon de demande pour un patient de votre périmètre."""
    return await service.create_request(session, principal, data)


@router.get("/requests/{request_id}", response_model=RequestDetail)
async def get_request(session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    detail = await service.get_request(session, principal, request_id)
    return RequestDetail.model_validate(
        {
            **RequestRead.model_validate(detail["request"]).model_dump(),
            "transitions": detail["transitions"],
            "messages": detail["messages"],
            "attachments": detail["attachments"],
            "report": detail["report"],
        }
    )


@router.patch("/requests/{request_id}", response_model=RequestRead)
async def update_draft(
    session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID, data: RequestDraftUpdate
):
    return await service.update_draft(session, principal, request_id, data)


@router.post("/requests/{request_id}/attachments", response_model=AttachmentRead, status_code=201)
async def add_attachment(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    request_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="PDF, JPEG ou PNG")],
):
    data = await file.read(settings.max_attachment_bytes + 1)
    return await service.add_attachment(
        session,
        principal,
        store,
        request_id,
        file.filename or "document",
        data,
        max_bytes=settings.max_attachment_bytes,
    )


@router.get("/requests/{request_id}/attachments/{attachment_id}")
async def download_attachment(
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    request_id: uuid.UUID,
    attachment_id: uuid.UUID,
):
    attachment, data = await service.read_attachment(session, principal, store, request_id, attachment_id)
    return file_response(data, attachment.content_type, attachment.filename)


@router.post("/requests/{request_id}/send", response_model=RequestRead)
async def send_request(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    request_id: uuid.UUID,
    data: RequestSend,
):
    """Envoyer : formulaire complet, consentement recueilli (ou urgence documentée)."""
    return await service.send_request(session, principal, settings, request_id, data)


@router.post("/requests/{request_id}/accept", response_model=RequestRead)
async def accept_request(session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    return await service.accept_request(session, principal, request_id)


@router.post("/requests/{request_id}/decline", response_model=RequestRead)
async def decline_request(
    session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID, data: ReasonInput
):
    return await service.decline_request(session, principal, request_id, data.reason)


@router.post("/requests/{request_id}/cancel", response_model=RequestRead)
async def cancel_request(
    session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID, data: ReasonInput
):
    return await service.cancel_request(session, principal, request_id, data.reason)


@router.post("/requests/{request_id}/messages", response_model=MessageRead, status_code=201)
async def post_message(
    session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID, data: MessageCreate
):
    return await service.post_message(session, principal, request_id, data)


@router.post("/requests/{request_id}/answer", response_model=RequestRead)
async def answer_request(
    session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID, data: RequestAnswer
):
    return await service.answer_request(session, principal, request_id, data)


@router.post("/requests/{request_id}/report", response_model=ReportRead, status_code=201)
async def sign_report(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    request_id: uuid.UUID,
    data: ReportCreate,
):
    """Signer le compte rendu (R.6316-4 CSP) ; il est rendu en PDF."""
    return await service.sign_report(session, principal, settings, store, request_id, data)


@router.get("/requests/{request_id}/report.pdf", response_class=Response)
async def report_pdf(
    session: SessionDep, principal: PrincipalDep, store: BlobStoreDep, request_id: uuid.UUID
):
    """Le compte rendu signé, en PDF."""
    _, data = await service.read_report_pdf(session, principal, store, request_id)
    return file_response(data, "application/pdf", f"compte-rendu-{request_id}.pdf", inline=True)


@router.post("/requests/{request_id}/close", response_model=RequestRead)
async def close_request(session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    return await service.close_request(session, principal, request_id)
