"""Teleradiology rules (G4 charter, CSP R.1333-46): the radiologist validates the indication and the protocol
before the acquisition (or declines a non-justified exam, with the reason); the federation's worklist shows every
exam to justify or to read with its priority and how long its images have waited, flagged past the contracted
delay. Sending, images, answer and the signed compte rendu are the request's and the imaging domain's."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.kit import clock
from telesante.kit.errors import Conflict, InvalidInput, NotFound
from telesante.requests import service as request_service
from telesante.requests.models import RequestStatus, TeleRequest
from telesante.requests.repository import RequestRepository
from telesante.teleradiology.models import ExamJustification, JustificationDecision
from telesante.teleradiology.repository import FORM_CODE, TeleradiologyRepository, WorklistRow
from telesante.teleradiology.schemas import JustificationCreate

S = RequestStatus
WORKLIST_STATUSES = (S.SENT, S.EXPIRED, S.ACCEPTED, S.IN_PROGRESS, S.ANSWERED)


class Phase(enum.StrEnum):
    TO_JUSTIFY = "a_justifier"
    AWAITING_IMAGES = "attente_images"
    TO_READ = "a_interpreter"
    TO_SIGN = "compte_rendu_a_signer"
    DONE = "compte_rendu_signe"


PHASE_LABELS = {
    Phase.TO_JUSTIFY: "À justifier",
    Phase.AWAITING_IMAGES: "En attente des images",
    Phase.TO_READ: "À interpréter",
    Phase.TO_SIGN: "Compte rendu à signer",
    Phase.DONE: "Compte rendu signé",
}
PRIORITY_LABELS = {"urgence_vitale": "Urgence vitale", "urgence": "Urgence", "programme": "Programmé"}
PRIORITY_RANK = {"urgence_vitale": 0, "urgence": 1, "programme": 2}


def is_teleradiology(request: TeleRequest) -> bool:
    return request.form_code == FORM_CODE


async def _teleradiology_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> TeleRequest:
    request = await RequestRepository(session).get_visible(principal, request_id)
    if request is None:
        raise NotFound("Demande introuvable.")
    if not is_teleradiology(request):
        raise Conflict("Cette demande n'est pas une demande de téléradiologie.")
    return request


async def justify_exam(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, data: JustificationCreate
) -> ExamJustification:
    """Before the acquisition: justified (with the protocol) → the radiologist takes the request; not justified →
    the request is declined with the reason. Once only; both sides see it, and it is traced."""
    request = await _teleradiology_request(session, principal, request_id)
    repo = TeleradiologyRepository(session)
    if await repo.get_for_request(request.id) is not None:
        raise Conflict("L'indication de cet examen a déjà été validée.")
    if data.decision != JustificationDecision.NOT_JUSTIFIED and not data.protocol:
        raise InvalidInput("Indiquez le protocole d'acquisition.", field="protocol")
    if data.decision != JustificationDecision.JUSTIFIED and not data.comment:
        raise InvalidInput("Expliquez la modification ou le refus au demandeur.", field="comment")
    if request.status not in (S.SENT, S.EXPIRED):
        raise Conflict("La justification précède la réalisation : cette demande est déjà prise en charge.")
    if data.decision == JustificationDecision.NOT_JUSTIFIED:
        await request_service.decline_request(
            session, principal, request.id, f"Examen non justifié : {data.comment}"
        )
    else:
        await request_service.accept_request(session, principal, request.id)
    justification = await repo.add(
        ExamJustification(
            request_id=request.id,
            decision=data.decision,
            protocol=data.protocol,
            comment=data.comment,
            radiologist_account_id=principal.account_id,
            radiologist_name=principal.display_name[:200],
            radiologist_organisation=" | ".join(principal.organisation_names)[:300],
            decided_at=clock.now(),
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="ExamJustification",
        object_id=justification.id,
        patient_id=request.patient_id,
        details={"request_id": str(request.id), "decision": data.decision.value},
    )
    return justification


async def get_justification(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> ExamJustification | None:
    request = await _teleradiology_request(session, principal, request_id)
    return await TeleradiologyRepository(session).get_for_request(request.id)


@dataclass(frozen=True)
class WorklistItem:
    row: WorklistRow
    phase: Phase
    priority: str
    target_minutes: int
    waited_minutes: int | None  # since the images arrived, until the answer (None: no image yet)
    late: bool


def target_minutes(settings: Settings, priority: str) -> int:
    return {
        "urgence_vitale": settings.teleradiology_read_minutes_vital,
        "urgence": settings.teleradiology_read_minutes_urgent,
    }.get(priority, settings.teleradiology_read_minutes_scheduled)


def _phase(row: WorklistRow) -> Phase:
    status = row.request.status
    if status in (S.SENT, S.EXPIRED):
        return Phase.TO_JUSTIFY
    if status == S.ANSWERED:
        return Phase.DONE if row.report_signed_at else Phase.TO_SIGN
    return Phase.TO_READ if row.images_at else Phase.AWAITING_IMAGES


def _minutes(start: datetime, end: datetime) -> int:
    return int((clock.as_utc(end) - clock.as_utc(start)).total_seconds() // 60)


async def worklist(session: AsyncSession, principal: Principal, settings: Settings) -> list[WorklistItem]:
    """The federation's exams for this radiologist (their organisations' teleradiology offers, or assigned to
    them): late first, then by priority, then the longest wait. Timers run on the server clock."""
    now = clock.now()
    items = []
    for row in await TeleradiologyRepository(session).worklist(principal, WORKLIST_STATUSES):
        priority = str(row.request.answers.get("priority", "programme"))
        target = target_minutes(settings, priority)
        waited = None
        if row.images_at is not None:
            waited = _minutes(row.images_at, row.request.answered_at or now)
        late = waited is not None and row.request.answered_at is None and waited > target
        items.append(WorklistItem(row, _phase(row), priority, target, waited, late))
    for item in items:  # each row shows a patient: one audit row per listed request
        await record_access(
            session,
            principal,
            action=Action.SEARCH,
            object_type="TeleRequest",
            object_id=item.row.request.id,
            patient_id=item.row.request.patient_id,
            details={"worklist": "teleradiologie"},
        )
    items.sort(key=lambda i: (not i.late, PRIORITY_RANK.get(i.priority, 3), -(i.waited_minutes or 0)))
    return items
