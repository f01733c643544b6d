"""Input and output shapes of the scheduling domain."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from pydantic import Field, field_validator, model_validator

from telesante.kit.schemas import InputModel, ReadModel
from telesante.scheduling.models import EQUIPMENT, AppointmentStatus, SiteKind, SlotStatus

PHONE_PATTERN = r"^\+?[0-9 .()-]{6,30}$"


class SiteCreate(InputModel):
    organisation_id: uuid.UUID
    name: str = Field(min_length=2, max_length=200, description="Ex. « Cabine de la pharmacie du Port »")
    kind: SiteKind
    equipment: list[str] = Field(default_factory=list, max_length=len(EQUIPMENT))
    phone: str = Field("", max_length=30)
    instructions: str = Field("", max_length=1000)
    staff_professional_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)

    @field_validator("equipment")
    @classmethod
    def _known_equipment(cls, value: list[str]) -> list[str]:
        unknown = [code for code in value if code not in EQUIPMENT]
        if unknown:
            raise ValueError(f"équipement inconnu : {', '.join(unknown)} (attendu : {', '.join(EQUIPMENT)})")
        return list(dict.fromkeys(value))


class SiteRead(ReadModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    name: str
    kind: SiteKind
    equipment: list[str]
    phone: str
    instructions: str
    active: bool
    staff_professional_ids: list[uuid.UUID] = []


class PatternCreate(InputModel):
    professional_id: uuid.UUID
    offer_id: uuid.UUID
    weekdays: list[int] = Field(min_length=1, max_length=7, description="1 = lundi … 7 = dimanche")
    start_time: time = Field(description="Heure de Paris, ex. 09:00")
    end_time: time = Field(description="Heure de Paris, ex. 12:00")
    slot_minutes: int = Field(ge=5, le=240, description="Durée d'un créneau, en minutes")
    valid_from: date
    valid_until: date
    skip_public_holidays: bool = True

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(day < 1 or day > 7 for day in value):
            raise ValueError("jours attendus de 1 (lundi) à 7 (dimanche)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _order(self) -> PatternCreate:
        if self.end_time <= self.start_time:
            raise ValueError("L'heure de fin doit suivre l'heure de début (même journée).")
        if self.valid_until < self.valid_from:
            raise ValueError("La date de fin doit suivre la date de début.")
        return self


class PatternRead(ReadModel):
    id: uuid.UUID
    professional_id: uuid.UUID
    offer_id: uuid.UUID
    weekdays: list[int]
    start_time: time
    end_time: time
    slot_minutes: int
    valid_from: date
    valid_until: date
    skip_public_holidays: bool
    ended_at: datetime | None


class PatternResult(ReadModel):
    pattern: PatternRead
    slots_created: int


class ExceptionCreate(InputModel):
    professional_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str = Field("", max_length=300, description="Ex. « Congés », « Formation »")

    @model_validator(mode="after")
    def _order(self) -> ExceptionCreate:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("Dates attendues avec leur fuseau (ex. 2026-12-24T00:00:00+01:00).")
        if self.ends_at <= self.starts_at:
            raise ValueError("La fin de l'indisponibilité doit suivre son début.")
        return self


class ExceptionRead(ReadModel):
    id: uuid.UUID
    professional_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str
    removed_at: datetime | None


class ExceptionResult(ReadModel):
    exception: ExceptionRead
    slots_blocked: int
    appointments_to_move: list[uuid.UUID]


class SlotRead(ReadModel):
    id: uuid.UUID
    professional_id: uuid.UUID
    offer_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    status: SlotStatus
    professional_name: str = ""


class AppointmentCreate(InputModel):
    slot_id: uuid.UUID
    patient_id: uuid.UUID
    site_id: uuid.UUID | None = Field(None, description="Lieu de la téléconsultation (absent : domicile)")
    organisation_id: uuid.UUID | None = Field(
        None, description="Établissement qui réserve, si vous exercez dans plusieurs"
    )
    reason: str = Field(min_length=3, max_length=1000, description="Motif de la téléconsultation")
    callback_phone: str = Field(
        "", max_length=30, description="Numéro où rappeler le patient si la vidéo échoue"
    )

    @field_validator("callback_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        import re

        if value and not re.fullmatch(PHONE_PATTERN, value):
            raise ValueError("numéro de téléphone invalide (chiffres, espaces, +, points)")
        return value


class CallPreparation(InputModel):
    """Before the call (HAS): the eligibility checklist, the callback number; consent is checked, not typed here."""

    physical_exam_needed: bool
    bad_news: bool
    data_unavailable: bool
    communication_impossible: bool
    justification: str = Field(
        "", max_length=2000, description="Pourquoi maintenir la téléconsultation malgré tout"
    )
    callback_phone: str = Field(
        min_length=6, max_length=30, description="Numéro où rappeler si la vidéo échoue"
    )

    @field_validator("callback_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        import re

        if not re.fullmatch(PHONE_PATTERN, value):
            raise ValueError("numéro de téléphone invalide (chiffres, espaces, +, points)")
        return value


class AppointmentCancel(InputModel):
    reason: str = Field(min_length=3, max_length=1000)


class AppointmentReschedule(InputModel):
    slot_id: uuid.UUID
    reason: str = Field("Report du rendez-vous", min_length=3, max_length=1000)


class AppointmentRead(ReadModel):
    id: uuid.UUID
    slot_id: uuid.UUID | None
    offer_id: uuid.UUID
    professional_id: uuid.UUID
    expert_organisation_id: uuid.UUID
    patient_id: uuid.UUID
    organisation_id: uuid.UUID
    site_id: uuid.UUID | None
    starts_at: datetime
    ends_at: datetime
    status: AppointmentStatus
    reason: str
    callback_phone: str
    booked_by_name: str
    cancelled_at: datetime | None
    cancelled_by_name: str
    cancel_reason: str
    rescheduled_to_id: uuid.UUID | None
    eligibility: dict = {}
    eligibility_justification: str = ""
    prepared_at: datetime | None = None
    prepared_by_name: str = ""
    request_id: uuid.UUID | None = None


class WaitingCreate(InputModel):
    offer_id: uuid.UUID
    patient_id: uuid.UUID
    site_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    reason: str = Field(min_length=3, max_length=1000)
    callback_phone: str = Field("", max_length=30)

    @field_validator("callback_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        import re

        if value and not re.fullmatch(PHONE_PATTERN, value):
            raise ValueError("numéro de téléphone invalide (chiffres, espaces, +, points)")
        return value


class WaitingRead(ReadModel):
    id: uuid.UUID
    offer_id: uuid.UUID
    patient_id: uuid.UUID
    organisation_id: uuid.UUID
    site_id: uuid.UUID | None
    reason: str
    status: str
    created_by_name: str
    created_at: datetime
    taken_at: datetime | None
    appointment_id: uuid.UUID | None
