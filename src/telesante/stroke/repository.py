"""Every query of the stroke domain."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from telesante.auth.models import Account
from telesante.auth.principal import Principal
from telesante.directory.models import CLINICAL_ROLES, Membership, Organisation, OrganisationType
from telesante.kit.repository import RepositoryBase
from telesante.requests.models import TeleRequest
from telesante.requests.repository import RequestRepository
from telesante.stroke.models import CaseStatus, Milestone, NihssAssessment, StrokeCase, StrokeMilestone


class StrokeCaseRepository(RepositoryBase[StrokeCase]):
    model = StrokeCase

    def visible(self, principal: Principal) -> sa.ColumnElement[bool]:
        """The one access rule: whoever sees the case's request (the emergency side, the neurologists of the
        answering side, the neurologist paged for it), and the clinicians of the centre receiving the patient
        for a thrombectomy once it is requested."""
        requests = RequestRepository(self.session)
        return sa.or_(
            StrokeCase.request_id.in_(sa.select(TeleRequest.id).where(requests.visible(principal))),
            StrokeCase.receiving_organisation_id.in_(principal.clinical_organisation_ids),
        )

    async def get_visible(self, principal: Principal, case_id: uuid.UUID) -> StrokeCase | None:
        return await self.scalar(
            sa.select(StrokeCase).where(StrokeCase.id == case_id, self.visible(principal))
        )

    async def get_for_update(self, case_id: uuid.UUID) -> StrokeCase | None:
        return await self.scalar(sa.select(StrokeCase).where(StrokeCase.id == case_id).with_for_update())

    async def for_request(self, request_id: uuid.UUID) -> StrokeCase | None:
        return await self.scalar(sa.select(StrokeCase).where(StrokeCase.request_id == request_id))

    async def list_visible(
        self, principal: Principal, *, open_only: bool, limit: int = 100
    ) -> list[StrokeCase]:
        stmt = sa.select(StrokeCase).where(self.visible(principal))
        if open_only:
            stmt = stmt.where(StrokeCase.status != CaseStatus.CLOSED)
        return await self.all(stmt.order_by(StrokeCase.alert_at.desc()).limit(limit))

    async def of_organisation(
        self, organisation_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[StrokeCase]:
        """The alerts raised by one hospital's emergency department in [start, end) (quality dashboard)."""
        return await self.all(
            sa.select(StrokeCase)
            .where(
                StrokeCase.organisation_id == organisation_id,
                StrokeCase.alert_at >= start,
                StrokeCase.alert_at < end,
            )
            .order_by(StrokeCase.alert_at)
        )

    async def awaiting_images(self, organisation_id: uuid.UUID, since: datetime) -> list[StrokeCase]:
        """Open cases of a hospital alerted since ``since``: the ones a study arriving from it may belong to."""
        return await self.all(
            sa.select(StrokeCase)
            .where(
                StrokeCase.organisation_id == organisation_id,
                StrokeCase.status != CaseStatus.CLOSED,
                StrokeCase.alert_at >= since,
            )
            .order_by(StrokeCase.alert_at.desc())
        )

    async def dashboard_organisations(self, principal: Principal) -> list[tuple[uuid.UUID, str, bool]]:
        """Hospitals whose quality dashboard the principal may read, with whether they ever raised an alert: those
        where they hold a clinical role, and those whose alerts their organisation answered (the stroke centre)."""
        organisations = principal.clinical_organisation_ids
        if not organisations:
            return []
        raised = sa.select(StrokeCase.organisation_id).where(
            sa.or_(
                StrokeCase.organisation_id.in_(organisations),
                StrokeCase.expert_organisation_id.in_(organisations),
            )
        )
        rows = await self.session.execute(
            sa.select(Organisation.id, Organisation.name, Organisation.id.in_(raised))
            .where(sa.or_(Organisation.id.in_(raised), Organisation.id.in_(organisations)))
            .order_by(Organisation.name)
        )
        return [(organisation_id, name, bool(alerts)) for organisation_id, name, alerts in rows.all()]

    async def clinician_accounts(self, organisation_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        """Active accounts holding a clinical role in these organisations (who is told that a case changed)."""
        if not organisation_ids:
            return set()
        rows = await self.session.execute(
            sa.select(Account.id)
            .join(Membership, Membership.professional_id == Account.professional_id)
            .where(
                Membership.organisation_id.in_(organisation_ids),
                Membership.role.in_(CLINICAL_ROLES),
                Membership.ended_at.is_(None),
                Account.active.is_(True),
            )
        )
        return set(rows.scalars())

    async def organisation_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = await self.session.execute(
            sa.select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))
        )
        return {organisation_id: name for organisation_id, name in rows.all()}

    async def hospitals(self) -> list[tuple[uuid.UUID, str]]:
        rows = await self.session.execute(
            sa.select(Organisation.id, Organisation.name)
            .where(
                Organisation.active.is_(True),
                Organisation.type.in_((OrganisationType.CHU, OrganisationType.CH, OrganisationType.CLINIQUE)),
            )
            .order_by(Organisation.name)
        )
        return [(organisation_id, name) for organisation_id, name in rows.all()]

    # --- the FHIR facade (fhir/stroke.py) ---------------------------------------------------------------------

    async def search_visible(
        self,
        principal: Principal,
        *,
        patient_id: uuid.UUID | None = None,
        request_id: uuid.UUID | None = None,
        statuses: tuple[CaseStatus, ...] | None = None,
        overlapping: tuple[datetime | None, datetime | None] = (None, None),
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[StrokeCase], int]:
        """The cases the principal may see that match, latest arrival first, and how many match. A case lasts from
        the patient's arrival to its closure (still open: until now); ``overlapping`` keeps the cases whose stay meets
        the interval [start, end)."""
        stmt = sa.select(StrokeCase).where(self.visible(principal))
        if patient_id is not None:
            stmt = stmt.where(StrokeCase.patient_id == patient_id)
        if request_id is not None:
            stmt = stmt.where(StrokeCase.request_id == request_id)
        if statuses is not None:
            stmt = stmt.where(StrokeCase.status.in_(statuses))
        start, end = overlapping
        if start is not None:
            stmt = stmt.where(sa.or_(StrokeCase.closed_at.is_(None), StrokeCase.closed_at >= start))
        if end is not None:
            stmt = stmt.where(StrokeCase.arrival_at < end)
        total = await self.count(stmt)
        stmt = stmt.order_by(StrokeCase.arrival_at.desc(), StrokeCase.id).offset(offset)
        return await self.all(stmt if limit is None else stmt.limit(limit)), total

    async def get_visible_for_request(self, principal: Principal, request_id: uuid.UUID) -> StrokeCase | None:
        return await self.scalar(
            sa.select(StrokeCase).where(StrokeCase.request_id == request_id, self.visible(principal))
        )

    async def professionals_of_accounts(self, account_ids: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """The professional behind each account (who raised an alert, who scored an NIHSS)."""
        if not account_ids:
            return {}
        rows = await self.session.execute(
            sa.select(Account.id, Account.professional_id).where(Account.id.in_(account_ids))
        )
        return {account_id: professional_id for account_id, professional_id in rows.all()}


class MilestoneRepository(RepositoryBase[StrokeMilestone]):
    model = StrokeMilestone

    async def for_case(self, case_id: uuid.UUID) -> list[StrokeMilestone]:
        return await self.all(
            sa.select(StrokeMilestone).where(StrokeMilestone.case_id == case_id).order_by(StrokeMilestone.at)
        )

    async def for_cases(self, case_ids: list[uuid.UUID]) -> list[StrokeMilestone]:
        if not case_ids:
            return []
        return await self.all(sa.select(StrokeMilestone).where(StrokeMilestone.case_id.in_(case_ids)))

    async def find(self, case_id: uuid.UUID, kind: Milestone) -> StrokeMilestone | None:
        return await self.scalar(
            sa.select(StrokeMilestone).where(StrokeMilestone.case_id == case_id, StrokeMilestone.kind == kind)
        )


class NihssRepository(RepositoryBase[NihssAssessment]):
    model = NihssAssessment

    async def for_case(self, case_id: uuid.UUID) -> list[NihssAssessment]:
        return await self.all(
            sa.select(NihssAssessment)
            .where(NihssAssessment.case_id == case_id)
            .order_by(NihssAssessment.assessed_at, NihssAssessment.id)
        )

    async def for_cases(self, case_ids: list[uuid.UUID]) -> list[NihssAssessment]:
        if not case_ids:
            return []
        return await self.all(
            sa.select(NihssAssessment)
            .where(NihssAssessment.case_id.in_(case_ids))
            .order_by(NihssAssessment.assessed_at, NihssAssessment.id)
        )

    async def get_visible(self, principal: Principal, assessment_id: uuid.UUID) -> NihssAssessment | None:
        """One assessment, through its case's access rule."""
        return await self.scalar(
            sa.select(NihssAssessment)
            .join(StrokeCase, StrokeCase.id == NihssAssessment.case_id)
            .where(NihssAssessment.id == assessment_id, StrokeCaseRepository(self.session).visible(principal))
        )
