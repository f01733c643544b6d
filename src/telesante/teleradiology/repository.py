"""Every teleradiology query: the justification of a request, and the federation worklist — the teleradiology
requests the principal answers (scoped by the requests repository's expert side, the one place of that rule)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from telesante.auth.principal import Principal
from telesante.directory.models import Organisation
from telesante.imaging.models import RequestStudy
from telesante.kit.repository import RepositoryBase
from telesante.patients.models import Patient
from telesante.requests.models import RequestReport, RequestStatus, TeleRequest
from telesante.requests.repository import RequestRepository
from telesante.teleradiology.models import ExamJustification

FORM_CODE = "teleradiologie"


@dataclass(frozen=True)
class WorklistRow:
    request: TeleRequest
    patient: Patient
    requesting_site: str
    justification: ExamJustification | None
    images_at: datetime | None  # when the first study was attached
    studies: int
    report_signed_at: datetime | None


class TeleradiologyRepository(RepositoryBase[ExamJustification]):
    model = ExamJustification

    async def get_for_request(self, request_id: uuid.UUID) -> ExamJustification | None:
        return await self.scalar(
            sa.select(ExamJustification).where(ExamJustification.request_id == request_id)
        )

    async def worklist(self, principal: Principal, statuses: tuple[RequestStatus, ...]) -> list[WorklistRow]:
        images = (
            sa.select(
                RequestStudy.request_id.label("request_id"),
                sa.func.min(RequestStudy.attached_at).label("first_at"),
                sa.func.count().label("count"),
            )
            .group_by(RequestStudy.request_id)
            .subquery()
        )
        rows = await self.session.execute(
            sa.select(
                TeleRequest,
                Patient,
                Organisation.name,
                ExamJustification,
                images.c.first_at,
                images.c.count,
                RequestReport.signed_at,
            )
            .join(Patient, Patient.id == TeleRequest.patient_id)
            .join(Organisation, Organisation.id == TeleRequest.requester_organisation_id)
            .outerjoin(ExamJustification, ExamJustification.request_id == TeleRequest.id)
            .outerjoin(images, images.c.request_id == TeleRequest.id)
            .outerjoin(RequestReport, RequestReport.request_id == TeleRequest.id)
            .where(
                TeleRequest.form_code == FORM_CODE,
                TeleRequest.status.in_(statuses),
                RequestRepository(self.session).expert_side(principal),
            )
            .order_by(TeleRequest.sent_at)
            .limit(500)
        )
        return [
            WorklistRow(request, patient, site, justification, first_at, count or 0, signed_at)
            for request, patient, site, justification, first_at, count, signed_at in rows.all()
        ]
