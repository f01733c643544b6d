"""Every request query. Reads for users go through the *visible* methods, which narrow to the requests the
principal takes part in: as a clinician of the requesting organisation, as an expert of the answering
organisation, or as the professional the request was assigned or routed to. This is the one place where request
access is scoped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from telesante.auth.models import Account
from telesante.auth.principal import Principal
from telesante.directory.models import Membership, Professional, Role
from telesante.kit.pagination import Page, PageRequest
from telesante.kit.repository import RepositoryBase
from telesante.offers.models import Offer
from telesante.oncall.models import Page as OnCallPage
from telesante.patients.models import Patient
from telesante.requests.models import (
    RequestAttachment,
    RequestMessage,
    RequestReport,
    RequestStatus,
    RequestTransition,
    TeleRequest,
)


@dataclass(frozen=True)
class WorklistFilter:
    side: str = "all"  # requester | expert | all
    statuses: tuple[RequestStatus, ...] = ()
    offer_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    specialty: str = ""
    urgent: bool | None = None
    overdue_at: datetime | None = (
        None  # only requests whose deadline passed at this instant, still unanswered
    )


@dataclass(frozen=True)
class WorklistRow:
    request: TeleRequest
    offer_title: str
    specialty: str
    patient_name: str
    patient_birth_date: object
    page_for_me: uuid.UUID | None = None  # an on-call page waiting for the viewer's acknowledgement


@dataclass(frozen=True)
class RequestSearch:
    """Criteria of the FHIR searches (ServiceRequest, Task, DiagnosticReport): every one optional, all AND-ed.
    Time bounds are half-open intervals [start, end) in UTC."""

    patient_id: uuid.UUID | None = None
    statuses: tuple[RequestStatus, ...] | None = None  # None: any; () matches nothing
    requester_professional_id: uuid.UUID | None = None
    requester_organisation_id: uuid.UUID | None = None
    performer_professional_id: uuid.UUID | None = None
    performer_organisation_id: uuid.UUID | None = None
    request_id: uuid.UUID | None = None
    authored: tuple[datetime | None, datetime | None] = (None, None)
    updated: tuple[datetime | None, datetime | None] = (None, None)
    with_report: bool = False  # only requests whose compte rendu is signed (DiagnosticReport search)


@dataclass(frozen=True)
class RequestFound:
    request: TeleRequest
    offer_title: str
    report_id: uuid.UUID | None


class RequestRepository(RepositoryBase[TeleRequest]):
    model = TeleRequest

    # --- scoping ------------------------------------------------------------------------------------------

    def _expert_organisations(self, principal: Principal) -> frozenset[uuid.UUID]:
        return frozenset(
            g.organisation_id for g in principal.grants if g.role == Role.EXPERT and g.organisation_id
        )

    def requester_side(self, principal: Principal) -> sa.ColumnElement[bool]:
        orgs = principal.clinical_organisation_ids
        return TeleRequest.requester_organisation_id.in_(orgs) if orgs else sa.false()

    def expert_side(self, principal: Principal) -> sa.ColumnElement[bool]:
        """Experts of the answering organisation see its requests once sent; the assigned or paged professional
        always."""
        # Whoever was paged for it (an on-call rota may span several hospitals) sees it too.
        paged = TeleRequest.id.in_(
            sa.select(OnCallPage.subject_id).where(
                OnCallPage.subject_type == "tele_request",
                OnCallPage.paged_professional_id == principal.professional_id,
            )
        )
        assigned = sa.or_(TeleRequest.assigned_professional_id == principal.professional_id, paged)
        orgs = self._expert_organisations(principal)
        if not orgs:
            return assigned
        return sa.or_(
            assigned,
            sa.and_(TeleRequest.expert_organisation_id.in_(orgs), TeleRequest.status != RequestStatus.DRAFT),
        )

    def visible(self, principal: Principal) -> sa.ColumnElement[bool]:
        return sa.or_(self.requester_side(principal), self.expert_side(principal))

    async def get_visible(self, principal: Principal, request_id: uuid.UUID) -> TeleRequest | None:
        return await self.scalar(
            sa.select(TeleRequest).where(TeleRequest.id == request_id, self.visible(principal))
        )

    async def get_for_patients_gp(
        self, request_id: uuid.UUID, professional_id: uuid.UUID | None
    ) -> TeleRequest | None:
        """The request when ``professional_id`` is its patient's declared médecin traitant (for the signed report
        only: the service decides what the GP may read)."""
        if professional_id is None:
            return None
        return await self.scalar(
            sa.select(TeleRequest)
            .join(Patient, Patient.id == TeleRequest.patient_id)
            .where(TeleRequest.id == request_id, Patient.gp_professional_id == professional_id)
        )

    async def was_paged(self, request_id: uuid.UUID, professional_id: uuid.UUID) -> bool:
        return bool(
            await self.scalar(
                sa.select(sa.literal(True))
                .where(
                    OnCallPage.subject_type == "tele_request",
                    OnCallPage.subject_id == request_id,
                    OnCallPage.paged_professional_id == professional_id,
                )
                .limit(1)
            )
        )

    async def get_for_update(self, request_id: uuid.UUID) -> TeleRequest | None:
        """The request row locked for a status change (PostgreSQL row lock; SQLite writers are serialised)."""
        return await self.scalar(sa.select(TeleRequest).where(TeleRequest.id == request_id).with_for_update())

    async def claim(self, request_id: uuid.UUID, from_statuses: set[RequestStatus], values: dict) -> bool:
        """Conditional status change: true only for the one caller that found the request in ``from_statuses``
        (two experts accepting at once: exactly one wins)."""
        result = await self.session.execute(
            sa.update(TeleRequest)
            .where(TeleRequest.id == request_id, TeleRequest.status.in_(from_statuses))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def worklist(
        self, principal: Principal, criteria: WorklistFilter, page: PageRequest
    ) -> Page[WorklistRow]:
        if criteria.side == "requester":
            scope = self.requester_side(principal)
        elif criteria.side == "expert":
            scope = self.expert_side(principal)
        else:
            scope = self.visible(principal)
        page_for_me = (
            sa.select(OnCallPage.id)
            .where(
                OnCallPage.subject_type == "tele_request",
                OnCallPage.subject_id == TeleRequest.id,
                OnCallPage.paged_professional_id == principal.professional_id,
                OnCallPage.status == "pending",
            )
            .limit(1)
            .scalar_subquery()
        )
        stmt = (
            sa.select(TeleRequest, Offer.title, Offer.specialty, Patient, page_for_me.label("page_for_me"))
            .join(Offer, Offer.id == TeleRequest.offer_id)
            .join(Patient, Patient.id == TeleRequest.patient_id)
            .where(scope)
        )
        if criteria.statuses:
            stmt = stmt.where(TeleRequest.status.in_(criteria.statuses))
        if criteria.offer_id:
            stmt = stmt.where(TeleRequest.offer_id == criteria.offer_id)
        if criteria.patient_id:
            stmt = stmt.where(TeleRequest.patient_id == criteria.patient_id)
        if criteria.specialty:
            stmt = stmt.where(Offer.specialty == criteria.specialty)
        if criteria.urgent is not None:
            stmt = stmt.where(TeleRequest.urgent.is_(criteria.urgent))
        if criteria.overdue_at is not None:
            stmt = stmt.where(
                TeleRequest.deadline_at < criteria.overdue_at,
                TeleRequest.status.in_(
                    {
                        RequestStatus.SENT,
                        RequestStatus.ACCEPTED,
                        RequestStatus.IN_PROGRESS,
                        RequestStatus.EXPIRED,
                    }
                ),
            )
        total = await self.count(stmt.with_only_columns(TeleRequest.id))
        rows = await self.session.execute(
            stmt.order_by(
                TeleRequest.urgent.desc(),
                sa.func.coalesce(TeleRequest.deadline_at, TeleRequest.created_at),
                TeleRequest.id,
            )
            .offset(page.offset)
            .limit(page.limit)
        )
        items = [
            WorklistRow(request, title, specialty, patient.display_name, patient.birth_date, paged)
            for request, title, specialty, patient, paged in rows.all()
        ]
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    async def search(
        self, principal: Principal, criteria: RequestSearch, page: PageRequest
    ) -> Page[RequestFound]:
        """The FHIR searches: the principal's visible requests matching ``criteria``, newest first, with their
        offer's title and their signed report's id."""
        if criteria.statuses == ():
            return Page(items=[], total=0, offset=page.offset, limit=page.limit)
        stmt = (
            sa.select(TeleRequest, Offer.title, RequestReport.id)
            .join(Offer, Offer.id == TeleRequest.offer_id)
            .outerjoin(RequestReport, RequestReport.request_id == TeleRequest.id)
            .where(self.visible(principal))
        )
        exact = {
            TeleRequest.id: criteria.request_id,
            TeleRequest.patient_id: criteria.patient_id,
            TeleRequest.requester_professional_id: criteria.requester_professional_id,
            TeleRequest.requester_organisation_id: criteria.requester_organisation_id,
            TeleRequest.assigned_professional_id: criteria.performer_professional_id,
            TeleRequest.expert_organisation_id: criteria.performer_organisation_id,
        }
        for column, value in exact.items():
            if value is not None:
                stmt = stmt.where(column == value)
        if criteria.statuses is not None:
            stmt = stmt.where(TeleRequest.status.in_(criteria.statuses))
        authored = sa.func.coalesce(TeleRequest.sent_at, TeleRequest.created_at)
        for column, (start, end) in (
            (authored, criteria.authored),
            (TeleRequest.updated_at, criteria.updated),
        ):
            if start is not None:
                stmt = stmt.where(column >= start)
            if end is not None:
                stmt = stmt.where(column < end)
        if criteria.with_report:
            stmt = stmt.where(RequestReport.id.is_not(None))
        total = await self.count(stmt.with_only_columns(TeleRequest.id))
        rows = await self.session.execute(
            stmt.order_by(authored.desc(), TeleRequest.id).offset(page.offset).limit(page.limit)
        )
        items = [RequestFound(request, title, report_id) for request, title, report_id in rows.all()]
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    async def reports_by_id(self, report_ids: set[uuid.UUID]) -> dict[uuid.UUID, RequestReport]:
        if not report_ids:
            return {}
        rows = await self.all(sa.select(RequestReport).where(RequestReport.id.in_(report_ids)))
        return {report.id: report for report in rows}

    async def get_report_by_id(self, report_id: uuid.UUID) -> RequestReport | None:
        return await self.scalar(sa.select(RequestReport).where(RequestReport.id == report_id))

    # --- thread, attachments, report, transitions -----------------------------------------------------------

    async def add_transition(self, transition: RequestTransition) -> None:
        self.session.add(transition)
        await self.session.flush()

    async def list_transitions(self, request_id: uuid.UUID) -> list[RequestTransition]:
        return await self.all(
            sa.select(RequestTransition)
            .where(RequestTransition.request_id == request_id)
            .order_by(RequestTransition.at, RequestTransition.id)
        )

    async def list_messages(self, request_id: uuid.UUID) -> list[RequestMessage]:
        return await self.all(
            sa.select(RequestMessage)
            .where(RequestMessage.request_id == request_id)
            .order_by(RequestMessage.created_at, RequestMessage.id)
        )

    async def list_attachments(self, request_id: uuid.UUID) -> list[RequestAttachment]:
        return await self.all(
            sa.select(RequestAttachment)
            .where(RequestAttachment.request_id == request_id)
            .order_by(RequestAttachment.created_at, RequestAttachment.id)
        )

    async def get_attachment(
        self, request_id: uuid.UUID, attachment_id: uuid.UUID
    ) -> RequestAttachment | None:
        return await self.scalar(
            sa.select(RequestAttachment).where(
                RequestAttachment.id == attachment_id, RequestAttachment.request_id == request_id
            )
        )

    async def get_report(self, request_id: uuid.UUID) -> RequestReport | None:
        return await self.scalar(sa.select(RequestReport).where(RequestReport.request_id == request_id))

    # --- recipients -----------------------------------------------------------------------------------------

    async def accounts_of_professionals(self, professional_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        if not professional_ids:
            return set()
        rows = await self.session.execute(
            sa.select(Account.id).where(
                Account.professional_id.in_(professional_ids), Account.active.is_(True)
            )
        )
        return set(rows.scalars())

    async def expert_accounts(
        self, organisation_id: uuid.UUID, service_id: uuid.UUID | None
    ) -> set[uuid.UUID]:
        """Accounts of the experts of an organisation (of one service, when the offer names one)."""
        stmt = (
            sa.select(Account.id)
            .join(Membership, Membership.professional_id == Account.professional_id)
            .join(Professional, Professional.id == Account.professional_id)
            .where(
                Membership.organisation_id == organisation_id,
                Membership.role == Role.EXPERT,
                Membership.ended_at.is_(None),
                Account.active.is_(True),
                Professional.active.is_(True),
            )
        )
        if service_id is not None:
            stmt = stmt.where(sa.or_(Membership.service_id == service_id, Membership.service_id.is_(None)))
        return set((await self.session.execute(stmt)).scalars())

    async def account_emails(self, account_ids: set[uuid.UUID]) -> list[str]:
        if not account_ids:
            return []
        rows = await self.session.execute(
            sa.select(Account.email).where(Account.id.in_(account_ids), Account.active.is_(True))
        )
        return sorted(rows.scalars())

    async def gp_email(self, patient_id: uuid.UUID) -> str:
        """The médecin traitant's e-mail from the directory ('' when none is known)."""
        email = await self.scalar(
            sa.select(Professional.email)
            .join(Patient, Patient.gp_professional_id == Professional.id)
            .where(Patient.id == patient_id)
        )
        return email or ""

    async def list_due(self, now: datetime, limit: int = 100) -> list[uuid.UUID]:
        """Requests still waiting for an expert after their deadline (for the deadline timer's safety sweep)."""
        rows = await self.session.execute(
            sa.select(TeleRequest.id)
            .where(TeleRequest.status == RequestStatus.SENT, TeleRequest.deadline_at <= now)
            .limit(limit)
        )
        return list(rows.scalars())
