"""Every patient query. Reads for users go through the *visible* methods, which take the principal and
narrow to the patients it may see: a care relationship of one of its organisations, or a live emergency
(break-the-glass) grant. This is the one place where patient access is scoped."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

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

    def has_identity_filters(self) -> bool:
        return bool(self.sex or self.ins_matricule or self.ins_oid or self.identity_status or self.ipp)


def _in_range(column: sa.ColumnElement[str], key: str) -> sa.ColumnElement[bool]:
    """``column`` starts with the folded ``key``, as an index range (``LIKE`` would not use the index)."""
    return sa.and_(column >= key, column < prefix_upper_bound(key))


def _family_range(
    birth: sa.ColumnElement[str], used: sa.ColumnElement[str], key: str
) -> sa.ColumnElement[bool]:
    return sa.or_(_in_range(birth, key), _in_range(used, key))


def _candidate(*columns: sa.ColumnElement[Any]) -> tuple[sa.ColumnElement[Any], ...]:
    """A search candidate: the patient and its sort keys, named alike whatever table they come from."""
    return tuple(
        column.label(name)
        for column, name in zip(columns, ("patient_id", "family", "given", "birth_date"), strict=True)
    )


def _given_match(column: sa.ColumnElement[str], key: str) -> sa.ColumnElement[bool]:
    """The first given name, or any later one, starts with ``key``."""
    return sa.or_(_in_range(column, key), column.contains(" " + key, autoescape=True))


def care_search_keys(patient: Any) -> dict[str, Any]:
    """The copies of a patient's search keys a care relationship holds (a ``Patient`` or a row of its
    columns). The used name is kept only when it differs from the birth name, so the two ranges are disjoint."""
    used = patient.search_used_family
    return {
        "search_birth_family": patient.search_birth_family,
        "search_used_family": "" if used == patient.search_birth_family else used,
        "search_given": patient.search_given,
        "birth_date": patient.birth_date,
    }


_SEARCH_KEYS = frozenset({"search_birth_family", "search_used_family", "search_given", "birth_date"})


class PatientRepository(RepositoryBase[Patient]):
    model = Patient

    # --- scoping ------------------------------------------------------------------------------------------

    def _care_condition(self, principal: Principal, identity: bool = False) -> sa.ColumnElement[bool]:
        """Followed by one of the principal's clinical organisations; with ``identity``, also by one whose medical
        secretariat it is (identity and agenda only: the services decide what ``identity`` opens)."""
        org_ids = principal.identity_organisation_ids if identity else principal.clinical_organisation_ids
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

    def visible(self, principal: Principal, identity: bool = False) -> sa.ColumnElement[bool]:
        return sa.or_(
            self._care_condition(principal, identity), self._break_glass_condition(principal, clock.now())
        )

    async def get_visible(
        self, principal: Principal, patient_id: uuid.UUID, identity: bool = False
    ) -> tuple[Patient, bool, bool] | None:
        """The patient if visible, whether only an emergency grant makes it so, and whether it is visible clinically
        (not only through a secretariat, ``identity``)."""
        # One statement: the patient, its local identifiers, and whether care (not an emergency grant) shows it.
        through_care = self._care_condition(principal, identity).label("through_care")
        clinical = self.visible(principal).label("clinical")
        row = (
            (
                await self.session.execute(
                    sa.select(Patient, through_care, clinical)
                    .where(Patient.id == patient_id, self.visible(principal, identity))
                    .options(joinedload(Patient.local_identifiers))
                )
            )
            .unique()
            .first()
        )
        if row is None:
            return None
        patient, through_care, clinical = row
        return patient, not bool(through_care), bool(clinical)

    async def search_visible(
        self, principal: Principal, criteria: PatientCriteria, page: PageRequest, identity: bool = False
    ) -> Page[Patient]:
        """Patients the principal may see (``identity``: also through a secretariat) that match ``criteria``,
        sorted by birth name, given names, birth date, with the exact total."""
        if fold(criteria.family):
            return await self._search_by_family(principal, criteria, page, identity)
        return await self._search_filtered(self.visible(principal, identity), criteria, page)

    async def _search_filtered(
        self, scope: sa.ColumnElement[bool], criteria: PatientCriteria, page: PageRequest
    ) -> Page[Patient]:
        """Every criterion applied to the patients table, within ``scope``."""
        stmt = sa.select(Patient).where(scope)
        if key := fold(criteria.family):
            stmt = stmt.where(_family_range(Patient.search_birth_family, Patient.search_used_family, key))
        if given := fold(criteria.given):
            stmt = stmt.where(_given_match(Patient.search_given, given))
        if criteria.birth_date:
            stmt = stmt.where(Patient.birth_date == criteria.birth_date)
        stmt = self._identity_filters(stmt, criteria)
        total = await self.count(stmt)
        items = await self.all(
            stmt.order_by(Patient.search_birth_family, Patient.search_given, Patient.birth_date, Patient.id)
            .options(selectinload(Patient.local_identifiers))
            .offset(page.offset)
            .limit(page.limit)
        )
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    async def _search_by_family(
        self, principal: Principal, criteria: PatientCriteria, page: PageRequest, identity: bool = False
    ) -> Page[Patient]:
        """A name search, answered from the care relationships' (organisation, name, given names, birth date,
        patient) indexes: the matches of the principal's organisations are read from the index alone, sorted,
        cut to the page and counted without touching a patient row; then the page's patients are loaded.

        The candidates are a ``UNION ALL`` of disjoint sets — the birth-name range, the used-name range minus
        patients already in the birth-name range, the live emergency grants — deduplicated only for a patient
        linked several times to the principal's organisations."""
        key = fold(criteria.family)
        parts: list[sa.Select] = []
        org_ids = principal.identity_organisation_ids if identity else principal.clinical_organisation_ids
        if org_ids:
            care = CareRelationship
            keys = _candidate(care.patient_id, care.search_birth_family, care.search_given, care.birth_date)
            by_birth = _in_range(care.search_birth_family, key)
            for name_condition in (
                by_birth,
                sa.and_(_in_range(care.search_used_family, key), sa.not_(by_birth)),
            ):
                part = sa.select(*keys).where(care.organisation_id.in_(org_ids), name_condition)
                parts.append(self._trait_filters(part, care.search_given, care.birth_date, criteria))
        grants = (
            sa.select(
                *_candidate(Patient.id, Patient.search_birth_family, Patient.search_given, Patient.birth_date)
            )
            .join(BreakGlassAccess, BreakGlassAccess.patient_id == Patient.id)
            .where(
                BreakGlassAccess.account_id == principal.account_id,
                BreakGlassAccess.expires_at > clock.now(),
                _family_range(Patient.search_birth_family, Patient.search_used_family, key),
            )
        )
        parts.append(self._trait_filters(grants, Patient.search_given, Patient.birth_date, criteria))
        union = sa.union_all(*parts).subquery("candidates")
        candidates = sa.select(
            union.c.patient_id, union.c.family, union.c.given, union.c.birth_date
        ).distinct()
        if criteria.has_identity_filters():
            candidates = self._identity_filters(
                candidates.join(Patient, Patient.id == union.c.patient_id), criteria
            )
        matches = candidates.subquery("matches")
        # The page and the total in one pass over the matches (a window count), a separate count only when the
        # page is past the end.
        rows = (
            await self.session.execute(
                sa.select(matches.c.patient_id, sa.func.count().over().label("total"))
                .order_by(matches.c.family, matches.c.given, matches.c.birth_date, matches.c.patient_id)
                .offset(page.offset)
                .limit(page.limit)
            )
        ).all()
        page_ids = [row.patient_id for row in rows]
        if rows:
            total = int(rows[0].total)
        elif page.offset:
            total = await self.count(sa.select(matches.c.patient_id))
        else:
            total = 0
        if not page_ids:
            return Page(items=[], total=total, offset=page.offset, limit=page.limit)
        loaded = {
            patient.id: patient
            for patient in await self.all(
                sa.select(Patient)
                .where(Patient.id.in_(page_ids))
                .options(selectinload(Patient.local_identifiers))
            )
        }
        items = [loaded[patient_id] for patient_id in page_ids if patient_id in loaded]
        return Page(items=items, total=total, offset=page.offset, limit=page.limit)

    @staticmethod
    def _trait_filters(
        stmt: sa.Select,
        given_column: sa.ColumnElement[str],
        birth_column: sa.ColumnElement[date],
        criteria: PatientCriteria,
    ) -> sa.Select:
        if given := fold(criteria.given):
            stmt = stmt.where(_given_match(given_column, given))
        if criteria.birth_date:
            stmt = stmt.where(birth_column == criteria.birth_date)
        return stmt

    @staticmethod
    def _identity_filters(stmt: sa.Select, criteria: PatientCriteria) -> sa.Select:
        """Criteria only the patients table holds (sex, INS, identity status, IPP)."""
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
        return stmt

    async def visible_ids(
        self, principal: Principal, ids: list[uuid.UUID], identity: bool = False
    ) -> set[uuid.UUID]:
        if not ids:
            return set()
        rows = await self.session.execute(
            sa.select(Patient.id).where(Patient.id.in_(ids), self.visible(principal, identity))
        )
        return set(rows.scalars().all())

    async def visible_names(
        self, principal: Principal, ids: list[uuid.UUID], identity: bool = False
    ) -> dict[uuid.UUID, str]:
        """Display names of the patients among ``ids`` that the principal may see (a list of appointments)."""
        if not ids:
            return {}
        rows = await self.session.execute(
            sa.select(Patient).where(Patient.id.in_(set(ids)), self.visible(principal, identity))
        )
        return {patient.id: patient.display_name for patient in rows.scalars().all()}

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
        *,
        new: bool = False,
    ) -> CareRelationship:
        """The relationship, added unless it exists (``new``: the caller knows it cannot exist yet)."""
        if not new:
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
        patient: Any = self.session.identity_map.get(self.session.identity_key(Patient, patient_id))
        if patient is None or sa.inspect(patient).expired_attributes & _SEARCH_KEYS:
            # not in the session (or stale): only the search keys are read
            patient = (
                await self.session.execute(
                    sa.select(
                        Patient.search_birth_family,
                        Patient.search_used_family,
                        Patient.search_given,
                        Patient.birth_date,
                    ).where(Patient.id == patient_id)
                )
            ).one()
        relation = CareRelationship(
            patient_id=patient_id,
            organisation_id=organisation_id,
            kind=kind,
            source_ref=source_ref,
            **care_search_keys(patient),
        )
        self.session.add(relation)
        await self.session.flush()
        return relation

    async def refresh_care_search_keys(self, patient: Patient) -> None:
        """Keep the per-organisation search keys in step with the patient's names and birth date."""
        await self.session.execute(
            sa.update(CareRelationship)
            .where(CareRelationship.patient_id == patient.id)
            .values(**care_search_keys(patient))
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
