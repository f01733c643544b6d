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
