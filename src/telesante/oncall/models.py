"""On-call rotas (permanence des soins): rotas, weekly patterns, shifts, hand-overs, pages and their journal."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit import clock
from telesante.kit.models import Base, Timestamps, UTCDateTime, Uuid, UUIDPrimaryKey, str_enum


class RotaScope(enum.StrEnum):
    SERVICE = "service"  # one organisation's service
    NETWORK = "network"  # a regional network of several organisations


SCOPE_LABELS = {RotaScope.SERVICE: "Service d'un établissement", RotaScope.NETWORK: "Réseau territorial"}


class ShiftRole(enum.StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"


SHIFT_ROLE_LABELS = {ShiftRole.PRIMARY: "Titulaire", ShiftRole.BACKUP: "Second recours"}


class ShiftChangeKind(enum.StrEnum):
    REPLACEMENT = "replacement"  # the shift is handed to another member
    SWAP = "swap"  # two members exchange their shifts


CHANGE_KIND_LABELS = {ShiftChangeKind.REPLACEMENT: "Remplacement", ShiftChangeKind.SWAP: "Échange"}


class PageStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for an acknowledgement
    ACKNOWLEDGED = "acknowledged"
    EXHAUSTED = "exhausted"  # the head of service was paged and did not answer either
    CANCELLED = "cancelled"


PAGE_STATUS_LABELS = {
    PageStatus.PENDING: "En attente d'acquittement",
    PageStatus.ACKNOWLEDGED: "Acquitté",
    PageStatus.EXHAUSTED: "Sans réponse (escalade épuisée)",
    PageStatus.CANCELLED: "Annulé",
}


class PageTarget(enum.StrEnum):
    PRIMARY = "primary"
    BACKUP = "backup"
    HEAD = "head"


TARGET_LABELS = {
    PageTarget.PRIMARY: "Titulaire",
    PageTarget.BACKUP: "Second recours",
    PageTarget.HEAD: "Chef de service",
}


class PageEventKind(enum.StrEnum):
    PAGED = "paged"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    EXHAUSTED = "exhausted"
    SKIPPED = "skipped"  # a step without anyone on duty (uncovered slot, no backup)


class Rota(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "oncall_rotas"

    name: Mapped[str] = mapped_column(sa.String(200))
    scope: Mapped[RotaScope] = mapped_column(str_enum(RotaScope, 20))
    # The organisation that runs the rota (its administrators edit it); a network lists the others as well.
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    service_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("organisation_services.id"))
    head_professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    ack_minutes: Mapped[int] = mapped_column(default=5)
    active: Mapped[bool] = mapped_column(default=True)


class RotaOrganisation(Base):
    """Organisations whose members may hold shifts (the running organisation included)."""

    __tablename__ = "oncall_rota_organisations"

    rota_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("oncall_rotas.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"), primary_key=True)


class ShiftPattern(UUIDPrimaryKey, Base):
    """A weekly recurrence in Paris local time ("nuit en semaine 18:30→08:30"); an end at or before the start
    ends the next day. Expanded into shifts for a horizon."""

    __tablename__ = "oncall_patterns"

    rota_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("oncall_rotas.id"), index=True)
    professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    role: Mapped[ShiftRole] = mapped_column(str_enum(ShiftRole, 10))
    label: Mapped[str] = mapped_column(sa.String(100), default="")
    weekdays: Mapped[str] = mapped_column(sa.String(20))  # ISO weekdays "1,2,3,4,5" (1 = lundi)
    start_time: Mapped[time] = mapped_column(sa.Time)
    end_time: Mapped[time] = mapped_column(sa.Time)
    valid_from: Mapped[date] = mapped_column(sa.Date)
    valid_until: Mapped[date] = mapped_column(sa.Date)
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class Shift(UUIDPrimaryKey, Base):
    __tablename__ = "oncall_shifts"
    __table_args__ = (
        sa.Index("ix_oncall_shifts_rota_time", "rota_id", "starts_at", "ends_at"),
        sa.Index("ix_oncall_shifts_professional_time", "professional_id", "starts_at"),
        sa.CheckConstraint("ends_at > starts_at", name="end_after_start"),
    )

    rota_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("oncall_rotas.id"))
    professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    role: Mapped[ShiftRole] = mapped_column(str_enum(ShiftRole, 10))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    pattern_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("oncall_patterns.id"))
    # Who was first planned (before any replacement or swap).
    planned_professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    note: Mapped[str] = mapped_column(sa.String(300), default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ShiftChange(UUIDPrimaryKey, Base):
    """A hand-over of a shift: who gave it, who took it, who recorded it, when and why."""

    __tablename__ = "oncall_shift_changes"

    shift_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("oncall_shifts.id"), index=True)
    kind: Mapped[ShiftChangeKind] = mapped_column(str_enum(ShiftChangeKind, 20))
    from_professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    to_professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    other_shift_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("oncall_shifts.id"))
    reason: Mapped[str] = mapped_column(sa.String(500))
    recorded_by: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class Page(UUIDPrimaryKey, Base):
    """A call to the person on duty about a subject (a request, a case): never a patient's identity."""

    __tablename__ = "oncall_pages"
    __table_args__ = (sa.Index("ix_oncall_pages_subject", "subject_type", "subject_id"),)

    rota_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("oncall_rotas.id"), index=True)
    subject_type: Mapped[str] = mapped_column(sa.String(50))
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    summary: Mapped[str] = mapped_column(sa.String(300))
    urgent: Mapped[bool] = mapped_column(default=False)
    ack_minutes: Mapped[int]
    status: Mapped[PageStatus] = mapped_column(str_enum(PageStatus, 20), default=PageStatus.PENDING)
    target: Mapped[PageTarget] = mapped_column(str_enum(PageTarget, 10))
    paged_professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"), index=True)
    uncovered: Mapped[bool] = mapped_column(default=False)  # nobody was on duty: the head was paged directly
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    paged_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    escalate_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))


class PageEvent(UUIDPrimaryKey, Base):
    """The journal of a page: every call, escalation and acknowledgement, with its time."""

    __tablename__ = "oncall_page_events"
    __table_args__ = (sa.UniqueConstraint("page_id", "seq"),)

    page_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("oncall_pages.id"), index=True)
    seq: Mapped[int]  # order within the page (several entries may share a time)
    kind: Mapped[PageEventKind] = mapped_column(str_enum(PageEventKind, 20))
    target: Mapped[PageTarget | None] = mapped_column(str_enum(PageTarget, 10))
    professional_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    detail: Mapped[str] = mapped_column(sa.String(300), default="")


class CalendarFeed(UUIDPrimaryKey, Base):
    """A secret address for a professional's ICS feed (calendar apps cannot log in); only its hash is kept."""

    __tablename__ = "oncall_calendar_feeds"

    professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
