"""Request pages: worklists (live), a new request from a patient record, the request with its thread, its
documents, and the actions each side may take in its current state. Every action calls the same service as the
JSON API; an error re-renders the page with its message and rolls the transaction back."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.auth.principal import Principal
from telesante.db import discard_changes
from telesante.imaging import service as imaging_service
from telesante.kit import clock
from telesante.kit.errors import DomainError, InvalidInput
from telesante.kit.pagination import Offset, PageRequest
from telesante.kit.schemas import parse_input
from telesante.offers import forms
from telesante.offers import service as offer_service
from telesante.offers.models import ACT_TYPE_LABELS, ROUTING_LABELS
from telesante.oncall.models import PAGE_STATUS_LABELS, TARGET_LABELS
from telesante.patients import service as patient_service
from telesante.requests import service
from telesante.requests.models import MESSAGE_KIND_LABELS, STATUS_LABELS, MessageKind, RequestStatus
from telesante.requests.repository import WorklistFilter
from telesante.requests.schemas import (
    MessageCreate,
    ReasonInput,
    ReportCreate,
    RequestAnswer,
    RequestCreate,
    RequestSend,
)
from telesante.requests.states import Side, next_states
from telesante.storage.dependencies import BlobStoreDep, file_response
from telesante.teleradiology import service as teleradiology_service
from telesante.teleradiology.models import JUSTIFICATION_LABELS
from telesante.web.forms import paris_datetime
from telesante.web.render import form_error, redirect, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
LABELS = {
    "STATUS_LABELS": STATUS_LABELS,
    "ACT_TYPE_LABELS": ACT_TYPE_LABELS,
    "ROUTING_LABELS": ROUTING_LABELS,
    "MESSAGE_KIND_LABELS": MESSAGE_KIND_LABELS,
}
LIVE_EVENTS = (
    "sse:request.sent, sse:request.updated, sse:request.expired, sse:request.overdue, sse:oncall.page"
)


def answers_from_form(fields: list[forms.FormField], form) -> dict[str, Any]:
    """Raw answers from an HTML form: one value per field, a list for multiple choices; empty ones left out."""
    raw: dict[str, Any] = {}
    for f in fields:
        if f.type in ("computed", "attachments"):
            continue
        if f.type == "multichoice":
            values = [v for v in form.getlist(f.name) if isinstance(v, str) and v]
            if values:
                raw[f.name] = values
            continue
        value = form.get(f.name)
        if isinstance(value, str) and value.strip():
            raw[f.name] = value.strip()
    return raw


def _form_values(answers: dict[str, Any]) -> dict[str, Any]:
    """Stored answers back into HTML input values (datetimes in French local time for datetime-local)."""
    from datetime import datetime

    from telesante.kit import clock

    values: dict[str, Any] = {}
    for name, value in answers.items():
        if isinstance(value, str) and "T" in value and value[:4].isdigit():
            try:
                values[name] = clock.to_paris(datetime.fromisoformat(value)).strftime("%Y-%m-%dT%H:%M")
                continue
            except ValueError:
                pass
        if isinstance(value, bool):
            values[name] = "oui" if value else "non"
        else:
            values[name] = value
    return values


def _worklist_filter(
    side: str,
    statut: str,
    urgent: str,
    specialite: str = "",
    en_retard: str = "",
    offer_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
) -> WorklistFilter:
    statuses: tuple[RequestStatus, ...] = ()
    if statut == "ouvertes":
        statuses = (
            RequestStatus.SENT,
            RequestStatus.ACCEPTED,
            RequestStatus.IN_PROGRESS,
            RequestStatus.ANSWERED,
            RequestStatus.EXPIRED,
        )
    elif statut in RequestStatus.__members__.values():
        statuses = (RequestStatus(statut),)
    return WorklistFilter(
        side=side,
        statuses=statuses,
        urgent=True if urgent == "oui" else None,
        specialty=specialite.strip(),
        overdue_at=clock.now() if en_retard == "oui" else None,
        offer_id=offer_id,
        patient_id=patient_id,
    )


@router.get("/demandes")
async def worklists(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    vue: Annotated[str, Query(pattern="^(requerant|expert)$")] = "expert",
    statut: Annotated[str, Query(max_length=20)] = "ouvertes",
    urgent: Annotated[str, Query(max_length=3)] = "",
    specialite: Annotated[str, Query(max_length=100)] = "",
    en_retard: Annotated[str, Query(max_length=3)] = "",
    offre: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    offset: Offset = 0,
):
    side = "requester" if vue == "requerant" else "expert"
    # A patient filter is a read of the patient (audited; 404 outside one's care, like the record itself).
    patient = (
        (await patient_service.get_patient(session, principal, patient_id)).patient if patient_id else None
    )
    criteria = _worklist_filter(side, statut, urgent, specialite, en_retard, offre, patient_id)
    page = await service.worklist(session, principal, criteria, PageRequest(offset, PAGE_SIZE))
    offers = await offer_service.list_worklist_offers(session, principal)
    filters = {
        "vue": vue,
        "statut": statut,
        "urgent": urgent,
        "specialite": specialite,
        "en_retard": en_retard,
    }
    if offre:
        filters["offre"] = str(offre)
    if patient_id:
        filters["patient_id"] = str(patient_id)
    query = urlencode(filters)
    without_patient = urlencode({k: v for k, v in filters.items() if k != "patient_id"})
    partial = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "liste"
    context = {
        "page": page,
        "vue": vue,
        "statut": statut,
        "urgent": urgent,
        "is_overdue": service.is_overdue,
        "live_events": LIVE_EVENTS,
        "specialite": specialite,
        "en_retard": en_retard,
        "offers": offers,
        "offre": str(offre) if offre else "",
        "patient": patient,
        "without_patient": f"/demandes?{without_patient}",
        "query": query,
        "base_url": f"/demandes?{query}&",
        **LABELS,
    }
    response = render(request, "requests/_worklist.html" if partial else "requests/worklists.html", context)
    response.headers["Vary"] = "HX-Request"
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/demandes/nouvelle")
async def new_request_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    patient_id: uuid.UUID,
    offer_id: uuid.UUID | None = None,
):
    access = await patient_service.get_patient(session, principal, patient_id)
    offers = await offer_service.list_requestable_offers(session, principal)
    context: dict[str, Any] = {"patient": access.patient, "offers": offers, "values": {}, **LABELS}
    if offer_id is not None:
        offer = next((o for o in offers if o.id == offer_id), None)
        if offer is None:
            raise InvalidInput("Cette offre n'est pas ouverte à votre établissement.", field="offer_id")
        context.update(offer=offer, form=forms.latest_form(offer.form_code))
    return render(request, "requests/new.html", context)


@router.post("/demandes/nouvelle")
async def create_request_page(
    request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID, offer_id: uuid.UUID
):
    access = await patient_service.get_patient(session, principal, patient_id)
    offer = await offer_service.get_offer(session, offer_id)
    form_definition = forms.latest_form(offer.form_code)
    submitted = await request.form()
    raw = answers_from_form(form_definition.fields, submitted)
    context = {
        "patient": access.patient,
        "offers": [],
        "offer": offer,
        "form": form_definition,
        "values": raw,
        **LABELS,
    }
    try:
        created = await service.create_request(
            session,
            principal,
            RequestCreate(
                offer_id=offer.id, patient_id=patient_id, answers=raw, urgent=submitted.get("urgent") == "oui"
            ),
        )
    except DomainError as exc:
        return form_error(
            request, "requests/new.html", {**context, "errors": _errors(exc)}, exc.message, exc.field
        )
    return redirect(f"/demandes/{created.id}")


def _errors(exc: DomainError) -> dict[str, str]:
    return {e["field"]: e["message"] for e in exc.extra.get("errors", [])} or (
        {exc.field: exc.message} if exc.field else {}
    )


async def _detail_context(session, principal: Principal, request_id: uuid.UUID) -> dict[str, Any]:
    detail = await service.get_request(session, principal, request_id)
    tele_request = detail["request"]
    offer = await offer_service.get_offer(session, tele_request.offer_id)
    form_definition = forms.get_form(tele_request.form_code, tele_request.form_version)
    side = service._side(principal, tele_request)
    access = await patient_service.require_patient_access(session, principal, tele_request.patient_id)
    imaging = await imaging_service.request_imaging(session, principal, request_id)
    teleradiology = teleradiology_service.is_teleradiology(tele_request)
    justification = (
        await teleradiology_service.get_justification(session, principal, request_id)
        if teleradiology
        else None
    )
    expert_answers = {k: v for k, v in tele_request.expert_answers.items() if k != "conclusion"}
    return {
        **{key: value for key, value in detail.items() if key != "request"},  # "request" is the HTTP request
        "tele_request": tele_request,
        "imaging": imaging,
        "teleradiology": teleradiology,
        "justification": justification,
        "JUSTIFICATION_LABELS": JUSTIFICATION_LABELS,
        "patient": access.patient,
        "offer": offer,
        "form": form_definition,
        "shown_answers": forms.display_answers(form_definition.fields, tele_request.answers),
        "shown_decision": forms.display_answers(form_definition.answer, expert_answers),
        "side": side.value,
        "actions": [s.value for s in next_states(tele_request.status, side)],
        "overdue": service.is_overdue(tele_request),
        "PAGE_STATUS_LABELS": PAGE_STATUS_LABELS,
        "TARGET_LABELS": TARGET_LABELS,
        "live_events": LIVE_EVENTS,
        "values": _form_values(tele_request.answers),
        "errors": {},
        **LABELS,
    }


@router.get("/demandes/{request_id}")
async def request_page(request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    context = await _detail_context(session, principal, request_id)
    partial = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "demande"
    response = render(request, "requests/_detail.html" if partial else "requests/detail.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


async def act(request: Request, session, principal: Principal, request_id: uuid.UUID, action) -> Response:
    """Run one action; on a domain error, re-render the request page with the message (and roll back)."""
    try:
        await action()
    except DomainError as exc:
        # Undo the failed action only (and what it meant to announce); the page shown next is a read like any
        # other, audited and committed.
        await discard_changes(session)
        context = await _detail_context(session, principal, request_id)
        context.update(errors=_errors(exc), error=exc.message, error_field=exc.field)
        status_code = exc.status_code if exc.status_code in (403, 409, 422) else 422
        return render(request, "requests/detail.html", context, status_code=status_code)
    return redirect(f"/demandes/{request_id}")


@router.post("/demandes/{request_id}/brouillon")
async def update_draft_page(
    request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID
):
    from telesante.requests.schemas import RequestDraftUpdate

    submitted = await request.form()

    async def action():
        current = (await service.get_request(session, principal, request_id))["request"]
        definition = forms.get_form(current.form_code, current.form_version)
        await service.update_draft(
            session,
            principal,
            request_id,
            RequestDraftUpdate(answers=answers_from_form(definition.fields, submitted)),
        )

    return await act(request, session, principal, request_id, action)


@router.post("/demandes/{request_id}/envoyer")
async def send_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    request_id: uuid.UUID,
):
    submitted = await request.form()
    data = {"emergency_exemption": str(submitted.get("emergency_exemption", "")).strip()}

    async def action():
        await service.send_request(session, principal, settings, request_id, parse_input(RequestSend, data))

    return await act(request, session, principal, request_id, action)


@router.post("/demandes/{request_id}/accepter")
async def accept_page(request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    return await act(
        request,
        session,
        principal,
        request_id,
        lambda: service.accept_request(session, principal, request_id),
    )


async def _reason(request: Request) -> str:
    return parse_input(ReasonInput, {"reason": str((await request.form()).get("reason", "")).strip()}).reason


@router.post("/demandes/{request_id}/refuser")
async def decline_page(request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    async def action():
        await service.decline_request(session, principal, request_id, await _reason(request))

    return await act(request, session, principal, request_id, action)


@router.post("/demandes/{request_id}/annuler")
async def cancel_page(request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    async def action():
        await service.cancel_request(session, principal, request_id, await _reason(request))

    return await act(request, session, principal, request_id, action)


@router.post("/demandes/{request_id}/messages")
async def message_page(request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    submitted = await request.form()

    async def action():
        kind = str(submitted.get("kind", ""))
        if kind not in MessageKind.__members__.values():
            raise InvalidInput("Type de message inconnu.", field="kind")
        data = parse_input(MessageCreate, {"kind": kind, "body": str(submitted.get("body", "")).strip()})
        await service.post_message(session, principal, request_id, data)

    return await act(request, session, principal, request_id, action)


@router.post("/demandes/{request_id}/documents")
async def upload_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    request_id: uuid.UUID,
):
    submitted = await request.form()

    async def action():
        upload = submitted.get("file")
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise InvalidInput("Choisissez un fichier (PDF, JPEG ou PNG).", field="file")
        data = await upload.read(settings.max_attachment_bytes + 1)
        await service.add_attachment(
            session,
            principal,
            store,
            request_id,
            upload.filename,
            data,
            max_bytes=settings.max_attachment_bytes,
        )

    return await act(request, session, principal, request_id, action)


@router.get("/demandes/{request_id}/documents/{attachment_id}")
async def download_page(
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    request_id: uuid.UUID,
    attachment_id: uuid.UUID,
):
    attachment, data = await service.read_attachment(session, principal, store, request_id, attachment_id)
    return file_response(data, attachment.content_type, attachment.filename)


@router.post("/demandes/{request_id}/repondre")
async def answer_page(request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    submitted = await request.form()

    async def action():
        current = (await service.get_request(session, principal, request_id))["request"]
        definition = forms.get_form(current.form_code, current.form_version)
        data = parse_input(
            RequestAnswer,
            {
                "answers": answers_from_form(definition.answer, submitted),
                "conclusion": str(submitted.get("conclusion", "")).strip(),
            },
        )
        await service.answer_request(session, principal, request_id, data)

    return await act(request, session, principal, request_id, action)


@router.get("/demandes/{request_id}/compte-rendu.pdf")
async def report_pdf_page(
    session: SessionDep, principal: PrincipalDep, store: BlobStoreDep, request_id: uuid.UUID
):
    _, data = await service.read_report_pdf(session, principal, store, request_id)
    return file_response(data, "application/pdf", f"compte-rendu-{request_id}.pdf", inline=True)


@router.post("/demandes/{request_id}/compte-rendu")
async def report_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    request_id: uuid.UUID,
):
    submitted = await request.form()

    async def action():
        names = submitted.getlist("participant_name")
        roles = submitted.getlist("participant_role")
        participants = [
            {"name": str(n).strip(), "role": str(r).strip()}
            for n, r in zip(names, roles, strict=False)
            if str(n).strip() or str(r).strip()
        ]
        values: dict[str, Any] = {
            "conclusion": str(submitted.get("conclusion", "")).strip(),
            "prescriptions": str(submitted.get("prescriptions", "")).strip(),
            "participants": participants,
            "technical_incident": submitted.get("technical_incident") == "oui",
            "technical_incident_details": str(submitted.get("technical_incident_details", "")).strip(),
        }
        performed_at = paris_datetime(submitted.get("performed_at"), "performed_at")  # datetime-local: Paris
        if performed_at is not None:  # left out when blank: the schema says it is required
            values["performed_at"] = performed_at
        data = parse_input(ReportCreate, values)
        await service.sign_report(session, principal, settings, store, request_id, data)

    return await act(request, session, principal, request_id, action)


@router.post("/demandes/{request_id}/cloturer")
async def close_page(request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    return await act(
        request, session, principal, request_id, lambda: service.close_request(session, principal, request_id)
    )


__all__ = ["router", "Side"]
