"""Every query of the scheduling domain."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from telesante.auth.principal import Principal
from telesante.kit.repository import RepositoryBase
from telesante.scheduling.models import (
    Appointment,
    AppointmentStatus,
    AvailabilityException,
    AvailabilityPattern,
    SiteStaff,
    Slot,
    SlotStatus,
    TeleconsultationSite,
    WaitingEntry,
    WaitingStatus,
)


class SiteRepository(RepositoryBase[TeleconsultationSite]):
    model = TeleconsultationSite

    async def list_sites(self, organisation_ids: frozenset[uuid.UUID] | None) -> list[TeleconsultationSite]:
        """Active sites of these organisations (None: of the whole region), by name."""
        stmt = sa.select(TeleconsultationSite).where(TeleconsultationSite.active.is_(True))
        if organisation_ids is not None:
            stmt = stmt.where(TeleconsultationSite.organisation_id.in_(organisation_ids))
        return await self.all(stmt.order_by(TeleconsultationSite.name))

    async def get_by_name(self, organisation_id: uuid.UUID, name: str) -> TeleconsultationSite | None:
        return await self.scalar(
            sa.select(TeleconsultationSite).where(
                TeleconsultationSite.organisation_id == organisation_id, TeleconsultationSite.name == name
            )
        )

    async def staff_of(self, site_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        rows = await self.session.execute(
            sa.select(SiteStaff.site_id, SiteStaff.professional_id).where(SiteStaff.site_id.in_(site_ids))
        )
        staff: dict[uuid.UUID, list[uuid.UUID]] = {site_id: [] for site_id in site_ids}
        for site_id, professional_id in rows:
            staff[site_id].append(professional_id)
        return staff

    async def set_staff(self, site_id: uuid.UUID, professional_ids: list[uuid.UUID]) -> None:
        await self.session.execute(sa.delete(SiteStaff).where(SiteStaff.site_id == site_id))
        self.session.add_all(SiteStaff(site_id=site_id, professional_id=p) for p in professional_ids)
        await self.session.flush()


class PatternRepository(RepositoryBase[AvailabilityPattern]):
    model = AvailabilityPattern

    async def list_for_professional(self, professional_id: uuid.UUID) -> list[AvailabilityPattern]:
        return await self.all(
            sa.select(AvailabilityPattern)
            .where(AvailabilityPattern.professional_id == professional_id)
            .order_by(AvailabilityPattern.valid_from, AvailabilityPattern.start_time)
        )


class ExceptionRepository(RepositoryBase[AvailabilityException]):
    model = AvailabilityException

    async def active_overlapping(
        self, professional_id: uuid.UUID, starts_at: datetime, ends_at: datetime
    ) -> list[AvailabilityException]:
        return await self.all(
            sa.select(AvailabilityException).where(
                AvailabilityException.professional_id == professional_id,
                AvailabilityException.removed_at.is_(None),
                AvailabilityException.starts_at < ends_at,
                AvailabilityException.ends_at > starts_at,
            )
        )

    async def list_for_professional(
        self, professional_id: uuid.UUID, since: datetime
    ) -> list[AvailabilityException]:
        return await self.all(
            sa.select(AvailabilityException)
            .where(
                AvailabilityException.professional_id == professional_id,
                AvailabilityException.removed_at.is_(None),
                AvailabilityException.ends_at > since,
            )
            .order_by(AvailabilityException.starts_at)
        )


class SlotRepository(RepositoryBase[Slot]):
    model = Slot

    async def periods_between(
        self, professional_id: uuid.UUID, starts_at: datetime, ends_at: datetime
    ) -> list[tuple[datetime, datetime]]:
        """Every slot of the professional (any status, any offer) overlapping the period."""
        rows = await self.session.execute(
            sa.select(Slot.starts_at, Slot.ends_at)
            .where(
                Slot.professional_id == professional_id, Slot.starts_at < ends_at, Slot.ends_at > starts_at
            )
            .order_by(Slot.starts_at)
        )
        return [(start, end) for start, end in rows]

    async def add_many(self, slots: list[Slot]) -> None:
        self.session.add_all(slots)
        await self.session.flush()

    async def claim(self, slot_id: uuid.UUID, now: datetime) -> bool:
        """Mark a free future slot booked, in one conditional statement: of two transactions claiming the same slot,
        the second finds it booked (PostgreSQL re-reads the row after the first commits; SQLite runs writers one
        at a time) and gets False."""
        result = await self.session.execute(
            sa.update(Slot)
            .where(Slot.id == slot_id, Slot.status == SlotStatus.FREE, Slot.starts_at > now)
            .values(status=SlotStatus.BOOKED)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def set_status(self, slot_id: uuid.UUID, status: SlotStatus) -> None:
        await self.session.execute(
            sa.update(Slot)
            .where(Slot.id == slot_id)
            .values(status=status)
            .execution_options(synchronize_session=False)
        )

    async def block_free(self, professional_id: uuid.UUID, starts_at: datetime, ends_at: datetime) -> int:
        result = await self.session.execute(
            sa.update(Slot)
            .where(
                Slot.professional_id == professional_id,
                Slot.status == SlotStatus.FREE,
                Slot.starts_at < ends_at,
                Slot.ends_at > starts_at,
            )
            .values(status=SlotStatus.BLOCKED)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount

    async def blocked_between(
        self, professional_id: uuid.UUID, starts_at: datetime, ends_at: datetime
    ) -> list[Slot]:
        return await self.all(
            sa.select(Slot).where(
                Slot.professional_id == professional_id,
                Slot.status == SlotStatus.BLOCKED,
                Slot.starts_at < ends_at,
                Slot.ends_at > starts_at,
            )
        )

    async def free_slots(
        self,
        offer_id: uuid.UUID,
        starts_at: datetime,
        ends_at: datetime,
        professional_id: uuid.UUID | None = None,
        limit: int = 200,
    ) -> list[Slot]:
        stmt = sa.select(Slot).where(
            Slot.offer_id == offer_id,
            Slot.status == SlotStatus.FREE,
            Slot.starts_at >= starts_at,
            Slot.starts_at < ends_at,
        )
        if professional_id is not None:
            stmt = stmt.where(Slot.professional_id == professional_id)
        return await self.all(stmt.order_by(Slot.starts_at, Slot.professional_id).limit(limit))

    async def delete_unbooked_of_pattern(self, pattern_id: uuid.UUID, after: datetime) -> int:
        result = await self.session.execute(
            sa.delete(Slot)
            .where(Slot.pattern_id == pattern_id, Slot.status != SlotStatus.BOOKED, Slot.starts_at > after)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount


class AppointmentRepository(RepositoryBase[Appointment]):
    model = Appointment

    @staticmethod
    def _scope(principal: Principal, clinical: bool = False):
        """The one access rule: the booking side's organisation or the doctor's organisation, through a clinical
        role or its medical secretariat (a regional administrator sees none: appointments carry patient data).
        ``clinical``: through a clinical role only (preparing the call, the call itself)."""
        organisations = (
            principal.clinical_organisation_ids if clinical else principal.identity_organisation_ids
        )
        return sa.or_(
            Appointment.organisation_id.in_(organisations),
            Appointment.expert_organisation_id.in_(organisations),
        )

    async def get_visible(
        self, principal: Principal, appointment_id: uuid.UUID, clinical: bool = False
    ) -> Appointment | None:
        return await self.scalar(
            sa.select(Appointment).where(Appointment.id == appointment_id, self._scope(principal, clinical))
        )

    async def list_visible(
        self,
        principal: Principal,
        starts_at: datetime,
        ends_at: datetime,
        *,
        professional_id: uuid.UUID | None = None,
        patient_id: uuid.UUID | None = None,
        statuses: frozenset[AppointmentStatus] | None = None,
        limit: int = 500,
    ) -> list[Appointment]:
        stmt = sa.select(Appointment).where(
            self._scope(principal), Appointment.starts_at >= starts_at, Appointment.starts_at < ends_at
        )
        if professional_id is not None:
            stmt = stmt.where(Appointment.professional_id == professional_id)
        if patient_id is not None:
            stmt = stmt.where(Appointment.patient_id == patient_id)
        if statuses:
            stmt = stmt.where(Appointment.status.in_(statuses))
        return await self.all(stmt.order_by(Appointment.starts_at).limit(limit))

    async def booked_between(
        self, professional_id: uuid.UUID, starts_at: datetime, ends_at: datetime
    ) -> list[Appointment]:
        return await self.all(
            sa.select(Appointment)
            .where(
                Appointment.professional_id == professional_id,
                Appointment.status == AppointmentStatus.BOOKED,
                Appointment.starts_at < ends_at,
                Appointment.ends_at > starts_at,
            )
            .order_by(Appointment.starts_at)
        )

    async def for_professional(self, professional_id: uuid.UUID, since: datetime) -> list[Appointment]:
        return await self.all(
            sa.select(Appointment)
            .where(Appointment.professional_id == professional_id, Appointment.starts_at >= since)
            .order_by(Appointment.starts_at)
        )


class WaitingRepository(RepositoryBase[WaitingEntry]):
    model = WaitingEntry

    async def waiting(
        self, *, offer_ids: set[uuid.UUID] | None = None, organisation_ids: frozenset[uuid.UUID] | None = None
    ) -> list[WaitingEntry]:
        """Entries still waiting, oldest first: for these offers (the doctors' side) or from these organisations
        (the patients' side)."""
        stmt = sa.select(WaitingEntry).where(WaitingEntry.status == WaitingStatus.WAITING)
        if offer_ids is not None:
            stmt = stmt.where(WaitingEntry.offer_id.in_(offer_ids))
        if organisation_ids is not None:
            stmt = stmt.where(WaitingEntry.organisation_id.in_(organisation_ids))
        return await self.all(stmt.order_by(WaitingEntry.created_at, WaitingEntry.id).limit(500))

    async def recent_of(self, organisation_ids: frozenset[uuid.UUID], since: datetime) -> list[WaitingEntry]:
        return await self.all(
            sa.select(WaitingEntry)
            .where(WaitingEntry.organisation_id.in_(organisation_ids), WaitingEntry.created_at >= since)
            .order_by(WaitingEntry.created_at.desc())
            .limit(200)
        )

    async def claim_oldest(
        self, offer_id: uuid.UUID, professional_id: uuid.UUID, now: datetime
    ) -> WaitingEntry | None:
        """Take the oldest waiting entry of the offer with a conditional update: two doctors pressing « next » at
        once get two different patients (or one gets none)."""
        for _attempt in range(5):
            oldest = await self.scalar(
                sa.select(WaitingEntry.id)
                .where(WaitingEntry.offer_id == offer_id, WaitingEntry.status == WaitingStatus.WAITING)
                .order_by(WaitingEntry.created_at, WaitingEntry.id)
                .limit(1)
            )
            if oldest is None:
                return None
            result = await self.session.execute(
                sa.update(WaitingEntry)
                .where(WaitingEntry.id == oldest, WaitingEntry.status == WaitingStatus.WAITING)
                .values(status=WaitingStatus.TAKEN, taken_by_professional_id=professional_id, taken_at=now)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                entry = await self.get(oldest)
                await self.session.refresh(entry)
                return entry
        return None
