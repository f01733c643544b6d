"""Input and output shapes of the on-call domain."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from pydantic import Field, field_validator

from telesante.kit import clock
from telesante.kit.schemas import InputModel, ReadModel
from telesante.oncall.models import (
    PageEventKind,
    PageStatus,
    PageTarget,
    RotaScope,
    ShiftChangeKind,
    ShiftRole,
)

# Rotas are planned for real dates (and far dates would overflow): the bounds of every date typed by a person.
FIRST_YEAR, LAST_YEAR = clock.FIRST_YEAR, clock.LAST_YEAR


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"date attendue entre {FIRST_YEAR} et {LAST_YEAR}")


class RotaCreate(InputModel):
    name: str = Field(min_length=2, max_length=200)
    scope: RotaScope = RotaScope.SERVICE
    organisation_id: uuid.UUID
    service_id: uuid.UUID | None = None
    # A network rota: the other organisations whose members share the duty.
    network_organisation_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    head_professional_id: uuid.UUID
    ack_minutes: int | None = Field(None, ge=1, le=120)


class RotaUpdate(InputModel):
    name: str | None = Field(None, min_length=2, max_length=200)
    head_professional_id: uuid.UUID | None = None
    ack_minutes: int | None = Field(None, ge=1, le=120)
    active: bool | None = None


class RotaRead(ReadModel):
    id: uuid.UUID
    name: str
    scope: RotaScope
    organisation_id: uuid.UUID
    service_id: uuid.UUID | None
    head_professional_id: uuid.UUID
    ack_minutes: int
    active: bool
    organisation_ids: list[uuid.UUID] = []


class ShiftCreate(InputModel):
    professional_id: uuid.UUID
    role: ShiftRole = ShiftRole.PRIMARY
    starts_at: datetime
    ends_at: datetime
    note: str = Field("", max_length=300)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return clock.from_paris(value)  # without offset (an HTML datetime-local field): Paris time; in UTC


class PatternCreate(InputModel):
    """A weekly pattern in Paris local time; an end at or before the start ends the next day."""

    professional_id: uuid.UUID
    role: ShiftRole = ShiftRole.PRIMARY
    label: str = Field("", max_length=100)
    weekdays: list[int] = Field(min_length=1, max_length=7)  # ISO: 1 = lundi … 7 = dimanche
    start_time: time
    end_time: time
    valid_from: date
    valid_until: date

    @field_validator("valid_from", "valid_until")
    @classmethod
    def _dates(cls, value: date) -> date:
        _check_year(value.year)
        return value

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(d < 1 or d > 7 for d in value):
            raise ValueError("jours attendus de 1 (lundi) à 7 (dimanche)")
        return sorted(set(value))


class ReplacementCreate(InputModel):
    to_professional_id: uuid.UUID
    reason: str = Field(min_length=3, max_length=500)


class SwapCreate(InputModel):
    other_shift_id: uuid.UUID
    reason: str = Field(min_length=3, max_length=500)


class ShiftRead(ReadModel):
    id: uuid.UUID
    rota_id: uuid.UUID
    professional_id: uuid.UUID
    professional_name: str = ""
    role: ShiftRole
    starts_at: datetime
    ends_at: datetime
    pattern_id: uuid.UUID | None
    planned_professional_id: uuid.UUID
    note: str


class ShiftChangeRead(ReadModel):
    id: uuid.UUID
    shift_id: uuid.UUID
    kind: ShiftChangeKind
    from_professional_id: uuid.UUID
    to_professional_id: uuid.UUID
    other_shift_id: uuid.UUID | None
    reason: str
    recorded_by: uuid.UUID
    recorded_at: datetime


class CoverageGap(ReadModel):
    starts_at: datetime
    ends_at: datetime
    minutes: int


class CoverageRead(ReadModel):
    rota_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    covered: bool
    gaps: list[CoverageGap]


class OnDuty(ReadModel):
    rota_id: uuid.UUID
    at: datetime
    primary_professional_id: uuid.UUID | None
    primary_shift_id: uuid.UUID | None
    backup_professional_id: uuid.UUID | None
    backup_shift_id: uuid.UUID | None
    head_professional_id: uuid.UUID

    @property
    def covered(self) -> bool:
        return self.primary_professional_id is not None


class PageEventRead(ReadModel):
    kind: PageEventKind
    target: PageTarget | None
    professional_id: uuid.UUID | None
    at: datetime
    detail: str


class OnCallPage(ReadModel):
    id: uuid.UUID
    rota_id: uuid.UUID
    subject_type: str
    subject_id: uuid.UUID
    summary: str
    urgent: bool
    ack_minutes: int
    status: PageStatus
    target: PageTarget
    professional_id: uuid.UUID  # the person paged now
    uncovered: bool
    paged_at: datetime
    escalate_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None
    events: list[PageEventRead] = []
