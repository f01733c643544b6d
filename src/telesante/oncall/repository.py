"""Every query of the on-call domain."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from telesante.auth.models import Account
from telesante.directory.models import Membership, Organisation, Professional
from telesante.kit.repository import RepositoryBase
from telesante.oncall.models import (
    CalendarFeed,
    Page,
    PageEvent,
    PageStatus,
    Rota,
    RotaOrganisation,
    Shift,
    ShiftChange,
    ShiftPattern,
    ShiftRole,
)


class RotaRepository(RepositoryBase[Rota]):
    model = Rota

    async def organisation_ids(self, rota_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self.session.execute(
            sa.select(RotaOrganisation.organisation_id).where(RotaOrganisation.rota_id == rota_id)
        )
        return list(rows.scalars())

    async def organisation_names(self, rota_id: uuid.UUID) -> list[str]:
        rows = await self.session.execute(
            sa.select(Organisation.name)
            .join(RotaOrganisation, RotaOrganisation.organisation_id == Organisation.id)
            .where(RotaOrganisation.rota_id == rota_id)
            .order_by(Organisation.name)
        )
        return list(rows.scalars())

    async def add_organisation(self, rota_id: uuid.UUID, organisation_id: uuid.UUID) -> None:
        self.session.add(RotaOrganisation(rota_id=rota_id, organisation_id=organisation_id))
        await self.session.flush()

    async def list_for_organisation(self, organisation_id: uuid.UUID) -> list[Rota]:
        """Active rotas in which this organisation takes part (run by it or shared with it)."""
        return await self.all(
            sa.select(Rota)
            .join(RotaOrganisation, RotaOrganisation.rota_id == Rota.id)
            .where(RotaOrganisation.organisation_id == organisation_id, Rota.active.is_(True))
            .order_by(Rota.name)
        )

    async def list_visible(
        self, organisation_ids: frozenset[uuid.UUID] | None, professional_id: uuid.UUID
    ) -> list[Rota]:
        """Rotas of these organisations, or headed by this professional; ``None``: every rota (regional)."""
        stmt = sa.select(Rota).order_by(Rota.name)
        if organisation_ids is not None:
            shared = sa.select(RotaOrganisation.rota_id).where(
                RotaOrganisation.organisation_id.in_(organisation_ids or {uuid.UUID(int=0)})
            )
            stmt = stmt.where(sa.or_(Rota.id.in_(shared), Rota.head_professional_id == professional_id))
        return await self.all(stmt)

    async def is_member(self, professional_id: uuid.UUID, organisation_ids: list[uuid.UUID]) -> bool:
        """An active membership of this professional in one of these organisations."""
        stmt = sa.select(sa.literal(True)).where(
            Membership.professional_id == professional_id,
            Membership.organisation_id.in_(organisation_ids),
            Membership.ended_at.is_(None),
        )
        return bool(await self.scalar(stmt.limit(1)))

    async def members(self, organisation_ids: list[uuid.UUID]) -> list[Professional]:
        return await self.all(
            sa.select(Professional)
            .where(
                Professional.id.in_(
                    sa.select(Membership.professional_id).where(
                        Membership.organisation_id.in_(organisation_ids), Membership.ended_at.is_(None)
                    )
                ),
                Professional.active.is_(True),
            )
            .order_by(Professional.family_name, Professional.given_name)
        )

    async def professional_names(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = await self.all(sa.select(Professional).where(Professional.id.in_(ids)))
        return {p.id: p.display_name for p in rows}

    async def account_ids(self, professional_id: uuid.UUID) -> frozenset[uuid.UUID]:
        rows = await self.session.execute(
            sa.select(Account.id).where(Account.professional_id == professional_id, Account.active.is_(True))
        )
        return frozenset(rows.scalars())


class ShiftRepository(RepositoryBase[Shift]):
    model = Shift

    def _live(self) -> sa.ColumnElement[bool]:
        return Shift.cancelled_at.is_(None)

    async def overlapping(
        self,
        rota_id: uuid.UUID,
        starts_at: datetime,
        ends_at: datetime,
        *,
        role: ShiftRole | None = None,
        professional_id: uuid.UUID | None = None,
        exclude: set[uuid.UUID] | None = None,
    ) -> list[Shift]:
        stmt = sa.select(Shift).where(
            Shift.rota_id == rota_id, self._live(), Shift.starts_at < ends_at, Shift.ends_at > starts_at
        )
        if role is not None:
            stmt = stmt.where(Shift.role == role)
        if professional_id is not None:
            stmt = stmt.where(Shift.professional_id == professional_id)
        if exclude:
            stmt = stmt.where(Shift.id.not_in(exclude))
        return await self.all(stmt.order_by(Shift.starts_at))

    async def between(
        self, rota_id: uuid.UUID, start: datetime, end: datetime, role: ShiftRole | None = None
    ) -> list[Shift]:
        return await self.overlapping(rota_id, start, end, role=role)

    async def at(self, rota_id: uuid.UUID, at: datetime) -> list[Shift]:
        return await self.all(
            sa.select(Shift)
            .where(Shift.rota_id == rota_id, self._live(), Shift.starts_at <= at, Shift.ends_at > at)
            .order_by(Shift.starts_at)
        )

    async def for_professional(
        self, professional_id: uuid.UUID, start: datetime, end: datetime | None = None
    ) -> list[tuple[Shift, str]]:
        stmt = (
            sa.select(Shift, Rota.name)
            .join(Rota, Rota.id == Shift.rota_id)
            .where(Shift.professional_id == professional_id, self._live(), Shift.ends_at > start)
        )
        if end is not None:
            stmt = stmt.where(Shift.starts_at < end)
        rows = await self.session.execute(stmt.order_by(Shift.starts_at))
        return [(s, n) for s, n in rows.all()]

    async def add_pattern(self, pattern: ShiftPattern) -> ShiftPattern:
        self.session.add(pattern)
        await self.session.flush()
        return pattern

    async def add_change(self, change: ShiftChange) -> ShiftChange:
        self.session.add(change)
        await self.session.flush()
        return change

    async def changes(self, shift_ids: list[uuid.UUID]) -> list[ShiftChange]:
        if not shift_ids:
            return []
        return await self.all(
            sa.select(ShiftChange)
            .where(ShiftChange.shift_id.in_(shift_ids))
            .order_by(ShiftChange.recorded_at)
        )


class PageRepository(RepositoryBase[Page]):
    model = Page

    async def get_for_update(self, page_id: uuid.UUID) -> Page | None:
        """The page, row-locked on PostgreSQL (an acknowledgement and an escalation never interleave)."""
        return await self.scalar(sa.select(Page).where(Page.id == page_id).with_for_update())

    async def for_subject(self, subject_type: str, subject_id: uuid.UUID) -> list[Page]:
        return await self.all(
            sa.select(Page)
            .where(Page.subject_type == subject_type, Page.subject_id == subject_id)
            .order_by(Page.created_at, Page.id)
        )

    async def pending_for_professional(self, professional_id: uuid.UUID) -> list[Page]:
        return await self.all(
            sa.select(Page)
            .where(
                Page.paged_professional_id == professional_id,
                Page.status.in_([PageStatus.PENDING, PageStatus.EXHAUSTED]),
            )
            .order_by(Page.paged_at.desc())
        )

    async def add_event(self, event: PageEvent, seq: int | None = None) -> PageEvent:
        """Append to the page's journal (the page row is locked by the caller when it can race). ``seq``: the rank,
        when the caller knows it (the journal of a page it has just created); otherwise the next one."""
        if seq is None:
            last = await self.scalar(
                sa.select(sa.func.max(PageEvent.seq)).where(PageEvent.page_id == event.page_id)
            )
            seq = (last or 0) + 1
        event.seq = seq
        self.session.add(event)
        await self.session.flush()
        return event

    async def events(self, page_ids: list[uuid.UUID]) -> list[PageEvent]:
        if not page_ids:
            return []
        return await self.all(
            sa.select(PageEvent)
            .where(PageEvent.page_id.in_(page_ids))
            .order_by(PageEvent.page_id, PageEvent.seq)
        )


class CalendarFeedRepository(RepositoryBase[CalendarFeed]):
    model = CalendarFeed

    async def for_professional(self, professional_id: uuid.UUID) -> CalendarFeed | None:
        return await self.scalar(
            sa.select(CalendarFeed).where(CalendarFeed.professional_id == professional_id)
        )

    async def by_hash(self, token_hash: str) -> CalendarFeed | None:
        return await self.scalar(sa.select(CalendarFeed).where(CalendarFeed.token_hash == token_hash))
