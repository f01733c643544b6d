"""Tele-expertise and teleconsultation requests: a professional asks, the right expert answers in time, both
follow one thread, and the act closes only with a signed compte rendu (CSP R.6316-1 to R.6316-4).

Every change goes through ``_transition`` (state machine of ``states.py``, timestamp, actor, audit, events after
commit). Patient data is read through the patients gate; the request itself through ``RequestRepository``'s
visible methods."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.consents.models import ConsentScopeType
from telesante.consents.service import check_consent
from telesante.directory.models import Role
from telesante.events.bus import Event
from telesante.events.service import publish_on_commit
from telesante.jobs.service import schedule_job
from telesante.kit import clock
from telesante.kit.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from telesante.kit.pagination import Page, PageRequest
from telesante.notifications.mail import Mail, send_after_commit
from telesante.offers import forms
from telesante.offers.models import Offer, Routing
from telesante.offers.service import get_offer, may_request
from telesante.patients.service import PatientAccess, link_patient_to_organisation, require_patient_access
from telesante.requests.models import (
    MessageKind,
    RequestAttachment,
    RequestMessage,
    RequestReport,
    RequestStatus,
    RequestTransition,
    TeleRequest,
)
from telesante.requests.repository import (
    RequestFound,
    RequestRepository,
    RequestSearch,
    WorklistFilter,
    WorklistRow,
)
from telesante.requests.schemas import (
    MessageCreate,
    ReportCreate,
    RequestAnswer,
    RequestCreate,
    RequestDraftUpdate,
    RequestSend,
)
from telesante.requests.states import AWAITING_ANSWER, Side, check_transition
from telesante.storage.blobs import BlobStore
from telesante.storage.content import check_upload_in_thread
from telesante.storage.service import save_blob

S = RequestStatus
DEADLINE_JOB = "requests.deadline"
SYSTEM_NAME = "Système (délai de réponse)"


class ConsentMissing(DomainError):
    status_code = 409
    code = "consentement-requis"
    title = "Consentement requis"


# --- access ------------------------------------------------------------------------------------------------


async def _visible(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> TeleRequest:
    request = await RequestRepository(session).get_visible(principal, request_id)
    if request is None:
        raise NotFound("Demande introuvable.")
    return request


def _side(principal: Principal, request: TeleRequest) -> Side:
    """Which side of the request the principal acts on (requester first when both, e.g. inside one hospital)."""
    if request.requester_organisation_id in principal.clinical_organisation_ids:
        return Side.REQUESTER
    return Side.EXPERT


def _is_expert_for(principal: Principal, request: TeleRequest, *, paged: bool = False) -> bool:
    """An expert of the answering organisation, the professional it is assigned to, or one paged for it."""
    if paged or request.assigned_professional_id == principal.professional_id:
        return True
    return any(
        g.role == Role.EXPERT and g.organisation_id == request.expert_organisation_id
        for g in principal.grants
    )


def _require_expert(principal: Principal, request: TeleRequest) -> None:
    if not _is_expert_for(principal, request):
        raise Forbidden("Seul un expert du service sollicité peut faire cela.")
    if request.assigned_professional_id not in (None, principal.professional_id) and request.status not in (
        S.SENT,
        S.EXPIRED,
    ):
        raise Forbidden(f"La demande est prise en charge par {request.assigned_name}.")


def _require_requester(principal: Principal, request: TeleRequest) -> None:
    if request.requester_organisation_id not in principal.clinical_organisation_ids:
        raise Forbidden("Seul le requérant (ou un collègue de son établissement) peut faire cela.")


async def _audit(
    session: AsyncSession, principal: Principal | None, request: TeleRequest, action: str, **details: Any
) -> None:
    await record_access(
        session,
        principal,
        action=action,
        object_type="TeleRequest",
        object_id=request.id,
        patient_id=request.patient_id,
        details=details,
    )


# --- events -------------------------------------------------------------------------------------------------


async def _notify(
    session: AsyncSession,
    request: TeleRequest,
    kind: str,
    *,
    urgent: bool = False,
    experts: set[uuid.UUID] | None = None,
) -> None:
    """Tell both sides, after commit, that the request changed (ids and status only: no patient identity).
    ``experts``: the answering service's expert accounts, when the caller has just read them."""
    repo = RequestRepository(session)
    recipients = {request.requester_account_id}
    if request.assigned_account_id:
        recipients.add(request.assigned_account_id)
    if request.status != S.DRAFT:
        if request.assigned_account_id is None or kind in ("request.sent", "request.expired"):
            if experts is None:
                offer = await get_offer(session, request.offer_id)
                experts = await repo.expert_accounts(request.expert_organisation_id, offer.service_id)
            recipients |= experts
    publish_on_commit(
        session,
        Event(
            type=kind,
            recipients=frozenset(recipients),
            data={"request_id": str(request.id), "status": request.status.value, "urgent": request.urgent},
            urgent=urgent,
        ),
    )


async def _transition(
    session: AsyncSession,
    principal: Principal | None,
    request: TeleRequest,
    target: RequestStatus,
    side: Side,
    *,
    reason: str = "",
    values: dict[str, Any] | None = None,
    fresh: bool = False,
) -> TeleRequest:
    """The one way a request changes state: checked, conditional (concurrent changes: one wins), timestamped,
    recorded with its actor, audited, announced after commit. ``fresh``: the request was written by this very
    transaction, which nobody else can see yet: it is changed in place, without the conditional update."""
    check_transition(request.status, target, side)
    current = request.status
    changes = {"status": target, "updated_at": clock.now(), **(values or {})}
    if fresh:
        for name, value in changes.items():
            setattr(request, name, value)
    elif not await RequestRepository(session).claim(request.id, {current}, changes):
        await session.refresh(request)
        raise Conflict(
            "La demande vient d'être modifiée par quelqu'un d'autre "
            f"(elle est maintenant « {request.status.value} ») : rechargez la page.",
            field="status",
        )
    else:
        await session.refresh(request)
    await RequestRepository(session).add_transition(
        RequestTransition(
            request_id=request.id,
            from_status=current,
            to_status=target,
            at=clock.now(),
            account_id=principal.account_id if principal else None,
            actor_name=principal.display_name if principal else SYSTEM_NAME,
            reason=reason,
        )
    )
    await _audit(
        session,
        principal,
        request,
        Action.UPDATE,
        transition=f"{current.value}->{target.value}",
        reason=reason,
    )
    return request


# --- creation and drafts ------------------------------------------------------------------------------------


def _requester_organisation(principal: Principal, organisation_id: uuid.UUID | None) -> uuid.UUID:
    allowed = principal.clinical_organisation_ids
    if not allowed:
        raise Forbidden(
            "Seul un professionnel de santé rattaché à un établissement peut adresser une demande."
        )
    if organisation_id is None:
        if len(allowed) > 1:
            raise InvalidInput("Précisez l'établissement requérant.", field="requester_organisation_id")
        return next(iter(allowed))
    if organisation_id not in allowed:
        raise InvalidInput("Vous n'exercez pas dans cet établissement.", field="requester_organisation_id")
    return organisation_id


async def create_request(session: AsyncSession, principal: Principal, data: RequestCreate) -> TeleRequest:
    """A draft: the patient (within the requester's scope), the offer, the form answers so far."""
    organisation_id = _requester_organisation(principal, data.requester_organisation_id)
    offer = await OfferRepositoryGate.requestable(session, data.offer_id, organisation_id)
    await require_patient_access(session, principal, data.patient_id)
    return await _draft(session, principal, data, offer, organisation_id)


async def _draft(
    session: AsyncSession, principal: Principal, data: RequestCreate, offer: Offer, organisation_id: uuid.UUID
) -> TeleRequest:
    """The draft row, its first transition and its audit row (the caller has checked the offer and the patient)."""
    form = forms.latest_form(offer.form_code)
    answers = forms.validate_answers(form.fields, data.answers, complete=False)
    request = await RequestRepository(session).add(
        TeleRequest(
            offer_id=offer.id,
            patient_id=data.patient_id,
            act_type=offer.act_type,
            status=S.DRAFT,
            urgent=offer.urgent if data.urgent is None else data.urgent,
            requester_account_id=principal.account_id,
            requester_professional_id=principal.professional_id,
            requester_organisation_id=organisation_id,
            requester_name=principal.display_name,
            expert_organisation_id=offer.organisation_id,
            form_code=form.code,
            form_version=form.version,
            answers=answers,
        )
    )
    await RequestRepository(session).add_transition(
        RequestTransition(
            request_id=request.id,
            from_status=None,
            to_status=S.DRAFT,
            at=clock.now(),
            account_id=principal.account_id,
            actor_name=principal.display_name,
        )
    )
    await _audit(session, principal, request, Action.CREATE, offer=offer.title)
    return request


async def create_and_send(
    session: AsyncSession, principal: Principal, settings: Settings, data: RequestCreate, send: RequestSend
) -> TeleRequest:
    """Draft and send in one go (an alert: the stroke pathway). The same rules as ``create_request`` followed by
    ``send_request``, and the same rows (two transitions, their audit rows), but each thing is checked once: the
    patient's visibility, the offer, and no re-reading of a request this transaction has just written."""
    organisation_id = _requester_organisation(principal, data.requester_organisation_id)
    offer = await OfferRepositoryGate.requestable(session, data.offer_id, organisation_id)
    access = await require_patient_access(session, principal, data.patient_id)
    request = await _draft(session, principal, data, offer, organisation_id)
    return await _send(session, principal, settings, request, offer, access, [], send, fresh=True)


class OfferRepositoryGate:
    @staticmethod
    async def requestable(session: AsyncSession, offer_id: uuid.UUID, organisation_id: uuid.UUID) -> Offer:
        try:
            offer = await get_offer(session, offer_id)
        except NotFound:
            raise InvalidInput("Offre inconnue.", field="offer_id") from None
        if not await may_request(session, offer, organisation_id):
            raise InvalidInput("Cette offre n'est pas ouverte à votre établissement.", field="offer_id")
        return offer


async def update_draft(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, data: RequestDraftUpdate
) -> TeleRequest:
    request = await _visible(session, principal, request_id)
    _require_requester(principal, request)
    if request.status != S.DRAFT:
        raise Conflict("Seul un brouillon peut être modifié ; ajoutez plutôt un complément d'information.")
    form = forms.get_form(request.form_code, request.form_version)
    request.answers = forms.validate_answers(form.fields, data.answers, complete=False)
    if data.urgent is not None:
        request.urgent = data.urgent
    await session.flush()
    await _audit(session, principal, request, Action.UPDATE, fields=sorted(data.answers))
    return request


async def add_attachment(
    session: AsyncSession,
    principal: Principal,
    store: BlobStore,
    request_id: uuid.UUID,
    filename: str,
    data: bytes,
    *,
    max_bytes: int,
    message_id: uuid.UUID | None = None,
) -> RequestAttachment:
    """A file checked by its content (PDF, JPEG, PNG), size-limited, stored in the blob store."""
    request = await _visible(session, principal, request_id)
    if request.status in (S.CLOSED, S.CANCELLED, S.DECLINED):
        raise Conflict("La demande est terminée : plus aucun document ne peut y être joint.")
    checked = await check_upload_in_thread(data, filename, max_bytes=max_bytes)
    key = await save_blob(session, store, data, checked.content_type)
    attachment = RequestAttachment(
        request_id=request.id,
        message_id=message_id,
        blob_key=key,
        filename=checked.filename,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        uploaded_by_account_id=principal.account_id,
        uploaded_by_name=principal.display_name,
    )
    session.add(attachment)
    await session.flush()
    await _audit(
        session, principal, request, Action.CREATE, attachment=checked.filename, sha256=checked.sha256
    )
    if request.status != S.DRAFT:
        await _notify(session, request, "request.updated")
    return attachment


async def read_attachment(
    session: AsyncSession,
    principal: Principal,
    store: BlobStore,
    request_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> tuple[RequestAttachment, bytes]:
    request = await _visible(session, principal, request_id)
    attachment = await RequestRepository(session).get_attachment(request.id, attachment_id)
    if attachment is None:
        raise NotFound("Document introuvable.")
    await _audit(session, principal, request, Action.READ, attachment=attachment.filename)
    return attachment, await store.get(attachment.blob_key)


# --- sending ------------------------------------------------------------------------------------------------


async def send_request(
    session: AsyncSession, principal: Principal, settings: Settings, request_id: uuid.UUID, data: RequestSend
) -> TeleRequest:
    """Draft -> sent: complete form, patient identified, consent recorded before the act (or a documented
    emergency exemption); the answering organisation gets access to the patient; the request is routed."""
    request = await _visible(session, principal, request_id)
    _require_requester(principal, request)
    check_transition(request.status, S.SENT, Side.REQUESTER)
    offer = await get_offer(session, request.offer_id)
    if not offer.active:
        raise Conflict("Cette offre n'est plus active : choisissez-en une autre.", field="offer_id")
    attachments = await RequestRepository(session).list_attachments(request.id)
    access = await require_patient_access(session, principal, request.patient_id)
    return await _send(session, principal, settings, request, offer, access, attachments, data)


async def _send(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    request: TeleRequest,
    offer: Offer,
    access: PatientAccess,
    attachments: list[RequestAttachment],
    data: RequestSend,
    *,
    fresh: bool = False,
) -> TeleRequest:
    """The sending itself, once the caller has checked the requester, the offer and the patient. ``fresh``: the
    draft was written by this transaction (nobody else can have changed it, and no timer can exist for it yet)."""
    form = forms.get_form(request.form_code, request.form_version)
    answers = forms.validate_answers(
        form.fields, request.answers, attachment_types=[a.content_type for a in attachments]
    )
    consent = await check_consent(
        session, principal, request.patient_id, ConsentScopeType.ACT, offer.act_type.value, checked=access
    )
    exemption = data.emergency_exemption.strip()
    if not consent.allowed and not exemption:
        raise ConsentMissing(
            f"Consentement du patient requis avant l'envoi : {consent.message} "
            "Recueillez-le, ou documentez l'urgence qui empêche de le recueillir.",
            field="consent",
        )
    now = clock.now()
    values: dict[str, Any] = {
        "sent_at": now,
        "deadline_at": now + timedelta(minutes=offer.response_minutes),
        "consent_id": consent.consent_id if consent.allowed else None,
        "emergency_exemption": "" if consent.allowed else exemption,
        "answers": answers,
    }
    if offer.routing == Routing.NAMED_EXPERT and offer.expert_professional_id:
        accounts = await RequestRepository(session).accounts_of_professionals({offer.expert_professional_id})
        values["assigned_professional_id"] = offer.expert_professional_id
        values["assigned_account_id"] = next(iter(accounts), None)
        values["assigned_name"] = await _professional_name(session, offer.expert_professional_id)
    await _transition(
        session,
        principal,
        request,
        S.SENT,
        Side.REQUESTER,
        # the exemption is the reason only when it is what allowed the sending (a consent on file comes first)
        reason="urgence : " + exemption if exemption and not consent.allowed else "",
        values=values,
        fresh=fresh,
    )
    await link_patient_to_organisation(
        session,
        principal,
        request.patient_id,
        request.expert_organisation_id,
        f"demande:{request.id}",
        fresh=fresh,
    )
    await schedule_job(
        session,
        DEADLINE_JOB,
        values["deadline_at"],
        {"request_id": str(request.id)},
        dedupe_key=str(request.id),
        new_key=fresh,
    )
    paged = offer.routing == Routing.ON_CALL and offer.rota_id is not None
    if paged:
        from telesante.oncall.service import page_on_call

        await page_on_call(
            session,
            offer.rota_id,
            subject_type="tele_request",
            subject_id=request.id,
            summary=f"{offer.title} — demande {'urgente ' if request.urgent else ''}à prendre en charge",
            ack_minutes=offer.ack_minutes or 5,
            urgent=request.urgent,
            principal=principal,
        )
    # Routed on call, the page to the person on duty is the alarm: the experts' worklists refresh without ringing
    # (a second alarm would wake the whole service, or cover the page on the on-call's screen).
    repo = RequestRepository(session)
    experts = await repo.expert_accounts(request.expert_organisation_id, offer.service_id)
    await _notify(session, request, "request.sent", urgent=request.urgent and not paged, experts=experts)
    recipients = {request.assigned_account_id} if request.assigned_account_id else experts
    urgency = "URGENTE " if request.urgent else ""
    send_after_commit(
        session,
        settings,
        Mail(
            to=tuple(await repo.account_emails(recipients)),
            subject=f"Télésanté — nouvelle demande {urgency}à traiter : {offer.title}",
            body=(
                f"Une nouvelle demande {urgency.lower()}vous est adressée sur Télésanté ({offer.title}).\n"
                f"Réponse attendue avant le {clock.format_paris(values['deadline_at'])}.\n\n"
                f"Ouvrir la demande : {settings.public_url.rstrip('/')}/demandes/{request.id}\n\n"
                "Ce message ne contient aucune donnée de santé : connectez-vous pour la consulter."
            ),
        ),
    )
    return request


async def open_scheduled_act(
    session: AsyncSession,
    principal: Principal,
    *,
    offer_id: uuid.UUID,
    patient_id: uuid.UUID,
    requester_organisation_id: uuid.UUID,
    doctor_professional_id: uuid.UUID,
    consent_id: uuid.UUID,
    answers: dict[str, Any],
) -> TeleRequest:
    """The act behind a booked teleconsultation (scheduling): the slot was the doctor's, so the request is sent and
    accepted at once, assigned to that doctor, with its consent; no deadline timer (the appointment is the time).
    Its compte rendu then follows the usual rules (signed by the doctor, R.6316-4)."""
    offer = await get_offer(session, offer_id)
    form = forms.latest_form(offer.form_code)
    accounts = await RequestRepository(session).accounts_of_professionals({doctor_professional_id})
    now = clock.now()
    request = await RequestRepository(session).add(
        TeleRequest(
            offer_id=offer.id,
            patient_id=patient_id,
            act_type=offer.act_type,
            status=S.ACCEPTED,
            urgent=False,
            requester_account_id=principal.account_id,
            requester_professional_id=principal.professional_id,
            requester_organisation_id=requester_organisation_id,
            requester_name=principal.display_name,
            expert_organisation_id=offer.organisation_id,
            assigned_professional_id=doctor_professional_id,
            assigned_account_id=next(iter(accounts), None),
            assigned_name=await _professional_name(session, doctor_professional_id),
            form_code=form.code,
            form_version=form.version,
            answers=forms.validate_answers(form.fields, answers, complete=False),
            consent_id=consent_id,
            sent_at=now,
            accepted_at=now,
        )
    )
    repo = RequestRepository(session)
    for from_status, to_status, reason in (
        (None, S.SENT, "téléconsultation programmée"),
        (S.SENT, S.ACCEPTED, "créneau réservé dans l'agenda du médecin"),
    ):
        await repo.add_transition(
            RequestTransition(
                request_id=request.id,
                from_status=from_status,
                to_status=to_status,
                at=now,
                account_id=principal.account_id,
                actor_name=principal.display_name,
                reason=reason,
            )
        )
    await _audit(session, principal, request, Action.CREATE, offer=offer.title, scheduled=True)
    await _notify(session, request, "request.sent")
    return request


async def complete_scheduled_act(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, conclusion: str
) -> TeleRequest:
    """The doctor has seen the patient: accepted → in progress → answered, with the conclusion as the answer (a
    teleconsultation has no coded answer form), ready for the signed compte rendu."""
    request = await _visible(session, principal, request_id)
    _require_expert(principal, request)
    if request.status == S.ACCEPTED:
        request = await _transition(session, principal, request, S.IN_PROGRESS, Side.EXPERT)
    if request.status == S.IN_PROGRESS:
        request = await _transition(
            session,
            principal,
            request,
            S.ANSWERED,
            Side.EXPERT,
            values={"answered_at": clock.now(), "expert_answers": {"conclusion": conclusion.strip()}},
        )
    return request


async def _professional_name(session: AsyncSession, professional_id: uuid.UUID) -> str:
    from telesante.directory.repository import ProfessionalRepository

    professional = await ProfessionalRepository(session).get(professional_id)
    return professional.display_name if professional else ""


# --- the expert's side --------------------------------------------------------------------------------------


async def accept_request(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> TeleRequest:
    """The first expert to accept takes the request (two at once: exactly one wins, the other gets 409)."""
    request = await _visible(session, principal, request_id)
    paged = await RequestRepository(session).was_paged(request.id, principal.professional_id)
    if not _is_expert_for(principal, request, paged=paged):
        raise Forbidden("Seul un expert du service sollicité peut faire cela.")
    if (
        request.assigned_professional_id not in (None, principal.professional_id)
        and request.status != S.EXPIRED
    ):
        if request.status == S.SENT:  # addressed to a named expert; others may take it once it has expired
            raise Conflict(f"Demande adressée nommément à {request.assigned_name}.", field="status")
        raise Conflict(f"Demande déjà acceptée par {request.assigned_name}.", field="status")
    request = await _transition(
        session,
        principal,
        request,
        S.ACCEPTED,
        Side.EXPERT,
        values={
            "accepted_at": clock.now(),
            "assigned_professional_id": principal.professional_id,
            "assigned_account_id": principal.account_id,
            "assigned_name": principal.display_name,
        },
    )
    if (await get_offer(session, request.offer_id)).rota_id is not None:
        await _stop_paging(session, principal, request)
    if (
        request.expert_organisation_id not in principal.clinical_organisation_ids
        and principal.clinical_organisation_ids
    ):
        # An expert of a regional network answering from another hospital: their organisation takes part too.
        for organisation_id in principal.clinical_organisation_ids:
            await link_patient_to_organisation(
                session, principal, request.patient_id, organisation_id, f"demande:{request.id}"
            )
    await _notify(session, request, "request.updated")
    return request


async def _stop_paging(session: AsyncSession, principal: Principal, request: TeleRequest) -> None:
    """Acceptance answers the on-call page: the accepting person's open page is acknowledged, every other open
    page of this request stops escalating."""
    from telesante.oncall import service as oncall

    for page in await oncall.list_pages(session, "tele_request", request.id):
        if page.status in ("pending", "exhausted") and page.professional_id == principal.professional_id:
            await oncall.acknowledge_page(session, principal, page.id)
    await oncall.resolve_pages(session, "tele_request", request.id)


async def decline_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, reason: str
) -> TeleRequest:
    request = await _visible(session, principal, request_id)
    _require_expert(principal, request)
    request = await _transition(
        session, principal, request, S.DECLINED, Side.EXPERT, reason=reason, values={"decline_reason": reason}
    )
    await _notify(session, request, "request.updated")
    return request


async def cancel_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, reason: str
) -> TeleRequest:
    request = await _visible(session, principal, request_id)
    _require_requester(principal, request)
    request = await _transition(
        session,
        principal,
        request,
        S.CANCELLED,
        Side.REQUESTER,
        reason=reason,
        values={"cancel_reason": reason},
    )
    await _notify(session, request, "request.updated")
    return request


async def post_message(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, data: MessageCreate
) -> RequestMessage:
    """One chronological thread: the requester adds information or replies, the expert asks back."""
    request = await _visible(session, principal, request_id)
    side = _side(principal, request)
    if side == Side.REQUESTER and data.kind == MessageKind.QUESTION:
        raise InvalidInput(
            "Une question est posée par l'expert ; ajoutez un complément d'information.", field="kind"
        )
    if side == Side.EXPERT and data.kind in (MessageKind.INFORMATION, MessageKind.REPLY):
        raise InvalidInput("Ce type de message est réservé au requérant.", field="kind")
    if side == Side.EXPERT:
        _require_expert(principal, request)
    if request.status not in AWAITING_ANSWER | {S.ANSWERED, S.EXPIRED}:
        raise Conflict("La demande n'est pas en cours : le fil de discussion est fermé.", field="status")
    if side == Side.EXPERT and request.status == S.SENT:
        raise Conflict("Acceptez d'abord la demande pour échanger avec le requérant.", field="status")
    message = RequestMessage(
        request_id=request.id,
        kind=data.kind,
        body=data.body.strip(),
        author_account_id=principal.account_id,
        author_name=principal.display_name,
        from_expert=side == Side.EXPERT,
    )
    session.add(message)
    await session.flush()
    if side == Side.EXPERT and request.status == S.ACCEPTED:
        await _transition(session, principal, request, S.IN_PROGRESS, Side.EXPERT)
    await _audit(session, principal, request, Action.CREATE, message=data.kind.value)
    await _notify(session, request, "request.updated")
    return message


async def answer_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, data: RequestAnswer
) -> TeleRequest:
    """The expert's answer: the coded decision of the offer's answer form and the opinion."""
    request = await _visible(session, principal, request_id)
    _require_expert(principal, request)
    form = forms.get_form(request.form_code, request.form_version)
    expert_answers = forms.validate_answers(form.answer, data.answers)
    if request.status == S.ACCEPTED:
        await _transition(session, principal, request, S.IN_PROGRESS, Side.EXPERT)
    request = await _transition(
        session,
        principal,
        request,
        S.ANSWERED,
        Side.EXPERT,
        values={
            "answered_at": clock.now(),
            "expert_answers": {**expert_answers, "conclusion": data.conclusion},
        },
    )
    await _notify(session, request, "request.updated", urgent=request.urgent)
    return request


# --- compte rendu and closing -------------------------------------------------------------------------------


def report_content(request: TeleRequest, data: ReportCreate, signer: Principal, signed_at) -> dict[str, Any]:
    """The canonical content that the signature's hash covers."""
    return {
        "request_id": str(request.id),
        "patient_id": str(request.patient_id),
        "act_type": request.act_type.value,
        "conclusion": data.conclusion.strip(),
        "prescriptions": data.prescriptions.strip(),
        "participants": [p.model_dump() for p in data.participants],
        "performed_at": clock.as_utc(data.performed_at).isoformat(),
        **({"duration_minutes": data.duration_minutes} if data.duration_minutes is not None else {}),
        "technical_incident": data.technical_incident,
        "technical_incident_details": data.technical_incident_details.strip(),
        "expert_answers": request.expert_answers,
        "signed_by": str(signer.account_id),
        "signed_by_name": signer.display_name,
        "signed_at": clock.as_utc(signed_at).isoformat(),
    }


def content_hash(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def sign_report(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    store: BlobStore,
    request_id: uuid.UUID,
    data: ReportCreate,
) -> RequestReport:
    """The compte rendu (R.6316-4 CSP): conclusion, prescriptions and acts, participants, date and time,
    technical incidents — signed by the expert's account with the SHA-256 of its canonical content."""
    request = await _visible(session, principal, request_id)
    _require_expert(principal, request)
    if request.status != S.ANSWERED:
        raise Conflict("Le compte rendu se rédige une fois la demande répondue.", field="status")
    if await RequestRepository(session).get_report(request.id) is not None:
        raise Conflict("Le compte rendu est déjà signé : il ne peut plus être modifié.")
    if clock.as_utc(data.performed_at) > clock.now() + timedelta(minutes=5):
        raise InvalidInput("La date de réalisation ne peut pas être dans le futur.", field="performed_at")
    signed_at = clock.now()
    content = report_content(request, data, principal, signed_at)
    report = RequestReport(
        request_id=request.id,
        conclusion=content["conclusion"],
        prescriptions=content["prescriptions"],
        participants=content["participants"],
        performed_at=clock.as_utc(data.performed_at),
        duration_minutes=data.duration_minutes,
        technical_incident=data.technical_incident,
        technical_incident_details=content["technical_incident_details"],
        signed_by_account_id=principal.account_id,
        signed_by_name=principal.display_name,
        signed_at=signed_at,
        content_hash=content_hash(content),
    )
    session.add(report)
    await session.flush()
    report.pdf_blob_key = await save_blob(
        session, store, await _report_pdf(session, principal, request, report), "application/pdf"
    )
    await session.flush()
    await _audit(session, principal, request, Action.CREATE, report=report.content_hash)
    await _notify(session, request, "request.updated")
    await _announce_report(session, settings, request)
    return report


async def _announce_report(session: AsyncSession, settings: Settings, request: TeleRequest) -> None:
    """The requester and the médecin traitant are told that a signed report exists — by e-mail without any
    patient data (the report itself travels only on the platform; MSSanté delivery is a later step)."""
    repo = RequestRepository(session)
    link = f"{settings.public_url.rstrip('/')}/demandes/{request.id}"
    send_after_commit(
        session,
        settings,
        Mail(
            to=tuple(await repo.account_emails({request.requester_account_id})),
            subject="Télésanté — compte rendu signé disponible",
            body=(
                "L'expert a signé le compte rendu de votre demande.\n\n"
                f"Le consulter : {link}\n\n"
                "Ce message ne contient aucune donnée de santé : connectez-vous pour le lire."
            ),
        ),
    )
    gp = await repo.gp_email(request.patient_id)
    if gp:
        send_after_commit(
            session,
            settings,
            Mail(
                to=(gp,),
                subject="Télésanté — compte rendu concernant l'un de vos patients",
                body=(
                    "Un acte de télémédecine concernant l'un de vos patients (vous êtes déclaré médecin traitant) a "
                    "donné lieu à un compte rendu signé.\n\n"
                    f"Il est consultable sur la plateforme Télésanté : {link}/compte-rendu.pdf\n\n"
                    "Ce message ne contient aucune donnée de santé."
                ),
            ),
        )


async def _report_pdf(
    session: AsyncSession, principal: Principal, request: TeleRequest, report: RequestReport
) -> bytes:
    from telesante.directory.repository import OrganisationRepository
    from telesante.requests.report_pdf import ReportDocument, render_report_pdf

    access = await require_patient_access(session, principal, request.patient_id)
    organisations = await OrganisationRepository(session).get_many(
        {request.requester_organisation_id, request.expert_organisation_id}
    )
    return render_report_pdf(
        ReportDocument(
            request=request,
            report=report,
            patient=access.patient,
            offer=await get_offer(session, request.offer_id),
            form=forms.get_form(request.form_code, request.form_version),
            requester_organisation=organisations[request.requester_organisation_id].name,
            expert_organisation=organisations[request.expert_organisation_id].name,
        )
    )


async def read_report_pdf(
    session: AsyncSession, principal: Principal, store: BlobStore, request_id: uuid.UUID
) -> tuple[RequestReport, bytes]:
    """The signed compte rendu as a PDF (audited read), for the parties to the request and for the patient's
    declared médecin traitant, to whom the report is sent (CSP R.6316-4) — the GP reads the signed report and
    nothing else of the request."""
    repo = RequestRepository(session)
    request = await repo.get_visible(principal, request_id)
    as_gp = False
    if request is None:
        request = await repo.get_for_patients_gp(request_id, principal.professional_id)
        as_gp = True
    if request is None:
        raise NotFound("Demande introuvable.")
    report = await repo.get_report(request.id)
    if report is None or not report.pdf_blob_key:
        raise NotFound("Aucun compte rendu signé pour cette demande.")
    extra = {"role": "médecin traitant"} if as_gp else {}
    await _audit(session, principal, request, Action.READ, report_pdf=report.content_hash, **extra)
    return report, await store.get(report.pdf_blob_key)


async def close_request(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> TeleRequest:
    request = await _visible(session, principal, request_id)
    side = _side(principal, request)
    if side == Side.EXPERT:
        _require_expert(principal, request)
    if request.status == S.ANSWERED and await RequestRepository(session).get_report(request.id) is None:
        raise Conflict(
            "L'acte ne peut pas être clôturé sans compte rendu signé (conclusion, prescriptions, participants, "
            "date et heure, incidents techniques — article R.6316-4 du CSP).",
            field="report",
        )
    request = await _transition(
        session, principal, request, S.CLOSED, side, values={"closed_at": clock.now()}
    )
    await _notify(session, request, "request.updated")
    return request


# --- deadline -----------------------------------------------------------------------------------------------


async def expire_if_unanswered(session: AsyncSession, payload: dict[str, Any]) -> None:
    """Timer at the response deadline: a request nobody accepted expires and is escalated; one accepted but not
    answered stays with its expert (flagged overdue in the worklists) and both sides are told."""
    request = await RequestRepository(session).get(uuid.UUID(payload["request_id"]))
    if request is None or request.deadline_at is None or clock.as_utc(request.deadline_at) > clock.now():
        return  # unknown, or the deadline moved later
    if request.status == S.SENT:
        await _transition(session, None, request, S.EXPIRED, Side.SYSTEM, reason="délai de réponse dépassé")
        offer = await get_offer(session, request.offer_id)
        if offer.rota_id:
            from telesante.oncall.service import page_on_call

            await page_on_call(
                session,
                offer.rota_id,
                subject_type="tele_request",
                subject_id=request.id,
                summary=f"{offer.title} — demande sans réponse dans le délai",
                ack_minutes=offer.ack_minutes or 5,
                urgent=True,
            )
        await _notify(session, request, "request.expired", urgent=True)
    elif request.status in AWAITING_ANSWER:
        await _notify(session, request, "request.overdue", urgent=request.urgent)


# --- reading ------------------------------------------------------------------------------------------------


async def get_request(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> dict[str, Any]:
    """The request with its thread, attachments, transitions and report (audited read)."""
    request = await _visible(session, principal, request_id)
    repo = RequestRepository(session)
    await _audit(session, principal, request, Action.READ)
    from telesante.directory.repository import ProfessionalRepository
    from telesante.oncall import service as oncall

    pages = await oncall.list_pages(session, "tele_request", request.id)
    people = {p.professional_id for p in pages} | {
        e.professional_id for p in pages for e in p.events if e.professional_id
    }
    return {
        "request": request,
        "oncall_pages": pages,
        "names": await ProfessionalRepository(session).display_names(people),
        "transitions": await repo.list_transitions(request.id),
        "messages": await repo.list_messages(request.id),
        "attachments": await repo.list_attachments(request.id),
        "report": await repo.get_report(request.id),
    }


async def worklist(
    session: AsyncSession, principal: Principal, criteria: WorklistFilter, page: PageRequest
) -> Page[WorklistRow]:
    """The requester's or the expert's list. Each row shows a patient: one audit row per listed request."""
    result = await RequestRepository(session).worklist(principal, criteria, page)
    for row in result.items:
        await _audit(session, principal, row.request, Action.SEARCH, worklist=criteria.side)
    return result


async def search_requests(
    session: AsyncSession, principal: Principal, criteria: RequestSearch, page: PageRequest
) -> Page[RequestFound]:
    """FHIR searches (ServiceRequest, Task, DiagnosticReport): scoped like every request read, one audit row per
    request returned."""
    result = await RequestRepository(session).search(principal, criteria, page)
    for found in result.items:
        await _audit(session, principal, found.request, Action.SEARCH, channel="fhir")
    return result


async def read_request(session: AsyncSession, principal: Principal, request_id: uuid.UUID) -> RequestFound:
    """One request with its offer's title and its report's id (FHIR read; audited)."""
    page = await RequestRepository(session).search(
        principal, RequestSearch(request_id=request_id), PageRequest(0, 1)
    )
    if not page.items:
        raise NotFound("Demande introuvable.")
    await _audit(session, principal, page.items[0].request, Action.READ, channel="fhir")
    return page.items[0]


async def read_report(
    session: AsyncSession, principal: Principal, report_id: uuid.UUID
) -> tuple[RequestFound, RequestReport]:
    """A signed compte rendu by its own id, for whoever may see its request (FHIR DiagnosticReport; audited)."""
    report = await RequestRepository(session).get_report_by_id(report_id)
    if report is None:
        raise NotFound("Compte rendu introuvable.")
    try:
        found = await read_request(session, principal, report.request_id)
    except NotFound:
        raise NotFound("Compte rendu introuvable.") from None
    return found, report


async def reports_of(session: AsyncSession, report_ids: set[uuid.UUID]) -> dict[uuid.UUID, RequestReport]:
    """Reports of requests the caller already read through ``search_requests`` (no further scoping here)."""
    return await RequestRepository(session).reports_by_id(report_ids)


async def read_report_pdf_by_id(
    session: AsyncSession, principal: Principal, store: BlobStore, report_id: uuid.UUID
) -> tuple[RequestReport, bytes]:
    """The signed PDF by the report's id (FHIR Binary)."""
    report = await RequestRepository(session).get_report_by_id(report_id)
    if report is None:
        raise NotFound("Compte rendu introuvable.")
    try:
        return await read_report_pdf(session, principal, store, report.request_id)
    except NotFound:
        raise NotFound("Compte rendu introuvable.") from None


async def submit_request(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    store: BlobStore,
    data: RequestCreate,
    files: list[tuple[str, bytes]],
    *,
    send: RequestSend | None,
) -> TeleRequest:
    """A request created in one go by external software (FHIR): the draft, its files, then — unless it is to stay
    a draft — sent with every check of ``send_request``. One transaction: any refusal leaves nothing behind."""
    request = await create_request(session, principal, data)
    for filename, content in files:
        await add_attachment(
            session, principal, store, request.id, filename, content, max_bytes=settings.max_attachment_bytes
        )
    if send is not None:
        request = await send_request(session, principal, settings, request.id, send)
    return request


def is_overdue(request: TeleRequest) -> bool:
    return (
        request.deadline_at is not None
        and request.status in AWAITING_ANSWER | {S.EXPIRED}
        and clock.as_utc(request.deadline_at) < clock.now()
    )
