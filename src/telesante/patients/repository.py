"""Every patient query. Reads for users go through the *visible* methods, which take the principal and
narrow to the patients it may see: a care relationship of one of its organisations, or a live emergency
(break-the-glass) grant. This is the one place where patient access is scoped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from telesante.auth.principal import Principal
from telesante.kit import clock
from telesante.kit.pagination import Page, PageRequest
from telesante.kit.repository import RepositoryBase
from telesante.kit.text import fold, prefix_upper_bound
from telesante.patients.models import (
    BreakGlassAccess,
    CareRelationship,
    CareRelationshipKind,
    IdentityStatus,
    IdentityStatusChange,
    Patient,
    PatientLocalIdentifier,
    Sex,
)


@dataclass(frozen=True)
class PatientCriteria:
    family: str = ""
    given: str = ""
    birth_date: date | None = None
    sex: Sex | None = None
    ins_matricule: str = ""
    ipp: str = ""
    # Narrowing used by identifier searches (FHIR): the INS assigning authority, the organisation that
    # assigned the IPP, and the identity status (an INS may only be used once the identity is qualifiée).
    ins_oid: str = ""
    ipp_organisation_id: uuid.UUID | None = None
    identity_status: IdentityStatus | None = None

    def is_empty(self) -> bool:
        return not (self.family or self.given or self.birth_date or self.ins_matricule or self.ipp)


class PatientRepository(RepositoryBase[Patient]):
    model = Patient

    # --- scoping ------------------------------------------------------------------------------------------

    def _care_condition(self, principal: Principal) -> sa.ColumnElement[bool]:
        org_ids = principal.clinical_organisation_ids
        if not org_ids:
            return sa.false()
        return Patient.id.in_(
            sa.select(CareRelationship.patient_id).where(CareRelationship.organisation_id.in_(org_ids))
        )

    def _break_glass_condition(self, principal: Principal, at: datetime) -> sa.ColumnElement[bool]:
        return Patient.id.in_(
            sa.select(BreakGlassAccess.patient_id).where(
                BreakGlassAccess.account_id == principal.account_id, BreakGlassAccess.expires_at > at
            )
        )

    def _scoped_with_family(self, principal: Principal, key: str, upper: str) -> sa.ColumnElement[bool]:
        """Patients of the principal's organisations whose name starts with ``key``, or under a live emergency
        grant: a single ``IN (… UNION ALL …)`` (no OR, so both engines plan a semi-join) over a narrow range of
        the (organisation, name) indexes instead of each organisation's whole patient list."""
        care = CareRelationship
        parts: list[sa.Select] = [
            sa.select(BreakGlassAccess.patient_id).where(
                BreakGlassAccess.account_id == principal.account_id, BreakGlassAccess.expires_at > clock.now()
            )
        ]
        for column in (care.search_birth_family, care.search_used_family):
            if principal.clinical_organisation_ids:
                parts.append(
                    sa.select(care.patient_id).where(
                        care.organisation_id.in_(principal.clinical_organisation_ids),
                        column >= key,
                        column < upper,
                    )
                )
        return Patient.id.in_(sa.union_all(*parts))

    def visible(self, principal: Principal) -> sa.ColumnElement[bool]:
        return sa.or_(self._care_condition(principal), self._break_glass_condition(principal, clock.now()))

    async def get_visible(self, principal: Principal, patient_id: uuid.UUID) -> tuple[Patient, bool] | None:
        """The patient if visible, and whether only an emergency grant makes it so."""
        patient = await self.scalar(
            sa.select(Patient)
            .where(Patient.id == patient_id, self.visible(principal))
            .options(selectinload(Patient.local_identifiers))
        )
        if patient is None:
            return None
        through_care = await self.scalar(
            sa.select(sa.literal(True)).where(Patient.id == patient_id, self._care_condition(principal))
        )
        return patient, not bool(through_care)

    async def search_visible(
        self, principal: Principal, criteria: PatientCriteria, page: PageRequest
    ) -> Page[Patient]:
        if criteria.family:
            key = fold(criteria.family)
            upper = prefix_upper_bound(key)
            scope = self._scoped_with_family(principal, key, upper)
        else:
            scope = self.visible(principal)
        stmt = sa.select(Patient).where(scope)
        if criteria.family:
            key = fold(criteria.family)
            upper = prefix_upper_bound(key)
            stmt = stmt.where(
                sa.or_(
                    sa.and_(Patient.search_birth_family >= key, Patient.search_birth_family < upper),
                    sa.and_(Patient.search_used_family >= key, Patient.search_used_family < upper),
                )
            )
        if criteria.given:
            key = fold(criteria.given)
            stmt = stmt.where(
                sa.or_(
                    sa.and_(Patient.search_given >= key, Patient.search_given < prefix_upper_bound(key)),
                    Patient.search_given.contains(" " + key, autoescape=True),
                )
            )
        if criteria.birth_date:
            stmt = stmt.where(Patient.birth_date == criteria.birth_date)
        if criteria.sex:
            stmt = stmt.where(Patient.sex == criteria.sex)
        if criteria.ins_matricule:
            stmt = stmt.where(Patient.ins_matricule == criteria.ins_matricule)
        if criteria.ins_oid:
            stmt = stmt.where(Patient.ins_oid == criteria.ins_oid)
        if criteria.identity_status:
            stmt = stmt.where(Patient.identity_status == criteria.identity_status)
        if criteria.ipp:
            local = sa.select(PatientLocalIdentifier.patient_id).where(
                PatientLocalIdentifier.value == criteria.ipp
            )
            if criteria.ipp_organisation_id:
                local = local.where(PatientLocalIdentifier.organisation_id == criteria.ipp_organisation_id)
            stmt = stmt.where(Patient.id.in_(local))
        total = await self.count(stmt)
        items = await self.all(
            stmt.order_by(Patient.search_birth_family, Patient.search_given, Patient.birth_date, Patient.id)
            .options(selectinload(Patient.local_identifiers))
            .offset(page.offset)
            .limit(page.limit)
        )
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    async def visible_ids(self, principal: Principal, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        if not ids:
            return set()
        rows = await self.session.execute(
            sa.select(Patient.id).where(Patient.id.in_(ids), self.visible(principal))
        )
        return set(rows.scalars().all())

    # --- identity-vigilance look-ups (not scoped: return only what the service decides to reveal) ---------

    async def get_by_ins(self, matricule: str) -> Patient | None:
        return await self.scalar(sa.select(Patient).where(Patient.ins_matricule == matricule))

    async def find_same_traits(
        self, folded_family: str, folded_first_given: str, birth_date: date, limit: int = 10
    ) -> list[Patient]:
        """Probable duplicates: same birth (or used) name, same first given name, same birth date."""
        return await self.all(
            sa.select(Patient)
            .where(
                Patient.birth_date == birth_date,
                sa.or_(
                    Patient.search_birth_family == folded_family, Patient.search_used_family == folded_family
                ),
                sa.or_(
                    Patient.search_given == folded_first_given,
                    Patient.search_given.startswith(folded_first_given + " ", autoescape=True),
                ),
            )
            .limit(limit)
        )

    # --- writes and details -------------------------------------------------------------------------------

    async def add_care_relationship(
        self,
        patient_id: uuid.UUID,
        organisation_id: uuid.UUID,
        kind: CareRelationshipKind,
        source_ref: str = "",
    ) -> CareRelationship:
        existing = await self.scalar(
            sa.select(CareRelationship).where(
                CareRelationship.patient_id == patient_id,
                CareRelationship.organisation_id == organisation_id,
                CareRelationship.kind == kind,
                CareRelationship.source_ref == source_ref,
            )
        )
        if existing is not None:
            return existing
        keys = (
            await self.session.execute(
                sa.select(Patient.search_birth_family, Patient.search_used_family).where(
                    Patient.id == patient_id
                )
            )
        ).one()
        relation = CareRelationship(
            patient_id=patient_id,
            organisation_id=organisation_id,
            kind=kind,
            source_ref=source_ref,
            search_birth_family=keys.search_birth_family,
            search_used_family=keys.search_used_family,
        )
        self.session.add(relation)
        await self.session.flush()
        return relation

    async def refresh_care_search_keys(self, patient: Patient) -> None:
        """Keep the per-organisation search keys in step with the patient's names."""
        await self.session.execute(
            sa.update(CareRelationship)
            .where(CareRelationship.patient_id == patient.id)
            .values(
                search_birth_family=patient.search_birth_family, search_used_family=patient.search_used_family
            )
        )

    async def list_care_relationships(self, patient_id: uuid.UUID) -> list[CareRelationship]:
        return await self.all(
            sa.select(CareRelationship)
            .where(CareRelationship.patient_id == patient_id)
            .order_by(CareRelationship.created_at)
        )

    async def get_local_identifier(
        self, organisation_id: uuid.UUID, value: str
    ) -> PatientLocalIdentifier | None:
        return await self.scalar(
            sa.select(PatientLocalIdentifier).where(
                PatientLocalIdentifier.organisation_id == organisation_id,
                PatientLocalIdentifier.value == value,
            )
        )

    async def get_local_identifier_for(
        self, patient_id: uuid.UUID, organisation_id: uuid.UUID
    ) -> PatientLocalIdentifier | None:
        return await self.scalar(
            sa.select(PatientLocalIdentifier).where(
                PatientLocalIdentifier.patient_id == patient_id,
                PatientLocalIdentifier.organisation_id == organisation_id,
            )
        )

    async def add_local_identifier(self, identifier: PatientLocalIdentifier) -> PatientLocalIdentifier:
        self.session.add(identifier)
        await self.session.flush()
        return identifier

    async def add_status_change(self, change: IdentityStatusChange) -> IdentityStatusChange:
        self.session.add(change)
        await self.session.flush()
        return change

    async def list_status_changes(self, patient_id: uuid.UUID) -> list[IdentityStatusChange]:
        return await self.all(
            sa.select(IdentityStatusChange)
            .where(IdentityStatusChange.patient_id == patient_id)
            .order_by(IdentityStatusChange.changed_at.desc())
        )


class BreakGlassRepository(RepositoryBase[BreakGlassAccess]):
    model = BreakGlassAccess

    async def find_candidates(
        self,
        *,
        ins_matricule: str | None,
        folded_family: str,
        folded_first_given: str,
        birth_date: date | None,
    ) -> list[Patient]:
        if ins_matricule:
            stmt = sa.select(Patient).where(Patient.ins_matricule == ins_matricule)
        else:
            stmt = sa.select(Patient).where(
                Patient.birth_date == birth_date,
                sa.or_(
                    Patient.search_birth_family == folded_family, Patient.search_used_family == folded_family
                ),
                sa.or_(
                    Patient.search_given == folded_first_given,
                    Patient.search_given.startswith(folded_first_given + " ", autoescape=True),
                ),
            )
        return await self.all(stmt.limit(6))

    async def list_pending(self, page: PageRequest) -> Page[BreakGlassAccess]:
        stmt = sa.select(BreakGlassAccess).where(BreakGlassAccess.reviewed_at.is_(None))
        total = await self.count(stmt)
        items = await self.all(
            stmt.order_by(BreakGlassAccess.granted_at.desc()).offset(page.offset).limit(page.limit)
        )
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)


class PatientStatisticsRepository(RepositoryBase[Patient]):
    """Aggregated figures only (evaluators): never returns a patient row."""

    model = Patient

    async def count_by_identity_status(self) -> dict[str, int]:
        rows = await self.session.execute(
            sa.select(Patient.identity_status, sa.func.count()).group_by(Patient.identity_status)
        )
        return {str(status.value if hasattr(status, "value") else status): int(n) for status, n in rows.all()}
