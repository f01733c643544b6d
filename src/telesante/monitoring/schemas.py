"""Input and output shapes of remote monitoring."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from telesante.consents.models import ConsentDecision, ConsentGiver, ConsentMethod
from telesante.kit.schemas import InputModel, ReadModel
from telesante.monitoring.models import AlertAction, AlertStatus, EnrolmentStatus, ReadingSource

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ProgrammeCreate(InputModel):
    """A programme from the shipped templates (``rules.PROGRAMMES``), run by one team."""

    organisation_id: uuid.UUID
    code: str = Field(min_length=2, max_length=60, description="insuffisance_cardiaque, diabete, …")
    team_name: str = Field(min_length=2, max_length=200)
    team_phone: str = Field("", max_length=30)
    declaration_reference: str = Field("", max_length=100, description="Déclaration de l'opérateur")
    days: list[int] = Field([1, 2, 3, 4, 5], min_length=1, max_length=7, description="Jours ISO (1 = lundi)")
    opens: str = "08:00"
    closes: str = "18:00"

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[int]) -> list[int]:
        if any(day < 1 or day > 7 for day in days):
            raise ValueError("jours de 1 (lundi) à 7 (dimanche) attendus")
        return sorted(set(days))

    @field_validator("opens", "closes")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _TIME.match(value):
            raise ValueError("heure HH:MM attendue")
        return value

    @model_validator(mode="after")
    def _range(self) -> ProgrammeCreate:
        if self.closes <= self.opens:
            raise ValueError("l'heure de fin doit suivre l'heure de début")
        return self


class ProgrammeRead(ReadModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    code: str
    version: int
    title: str
    current: bool
    declaration_reference: str
    team_name: str
    team_phone: str
    days: list[int]
    opens: str
    closes: str
    measures: list[dict[str, Any]]
    rules: list[dict[str, Any]]
    education_plan: list[str]
    revision_note: str = ""
    created_by_name: str = ""
    created_at: datetime | None = None


class DeviceIn(InputModel):
    serial: str = Field(
        min_length=1, max_length=100, description="Numéro de série (celui que la passerelle envoie)"
    )
    kind: str = Field(min_length=2, max_length=100, description="Balance, tensiomètre, oxymètre…")


class EnrolmentCreate(InputModel):
    """Enrol a patient, or record their refusal. The consent covers the act (télésurveillance) and the programme's
    data processing; both notices are the current versions."""

    programme_id: uuid.UUID
    indication: str = Field(min_length=2, max_length=500)
    prescriber_name: str = Field(min_length=2, max_length=200)
    decision: ConsentDecision
    method: ConsentMethod = ConsentMethod.ORAL
    given_by: ConsentGiver = ConsentGiver.PATIENT
    representative_name: str = Field("", max_length=200)
    conventional_follow_up_offered: bool = False
    refusal_reason: str = Field("", max_length=1000)
    starts_on: date | None = None
    ends_on: date | None = None
    overrides: dict[str, dict[str, float | int | None]] = Field(default_factory=dict)
    devices: list[DeviceIn] = Field(default_factory=list, max_length=10)


class EnrolmentRead(ReadModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    programme_id: uuid.UUID
    organisation_id: uuid.UUID
    programme_code: str
    status: EnrolmentStatus
    indication: str
    prescriber_name: str
    starts_on: date | None
    ends_on: date | None
    overrides: dict[str, Any]
    conventional_follow_up_offered: bool
    colour: str
    last_reading_at: datetime | None


class ReadingIn(InputModel):
    """One reading typed on the patient page or by a professional (LOINC code or measure key, value, unit)."""

    measure: str = Field(min_length=2, max_length=30)
    value: float
    unit: str | None = None
    effective_at: datetime | None = None


class ObservationRead(ReadModel):
    id: uuid.UUID
    enrolment_id: uuid.UUID
    patient_id: uuid.UUID
    measure: str
    code: str
    value: float
    unit: str
    effective_at: datetime
    received_at: datetime
    source: ReadingSource


class AlertRead(ReadModel):
    id: uuid.UUID
    enrolment_id: uuid.UUID
    patient_id: uuid.UUID
    rule_code: str
    severity: str
    message: str
    status: AlertStatus
    raised_at: datetime
    outside_hours: bool
    seen_from: datetime | None
    filtered_by_name: str
    interpreted_by_name: str
    interpretation: str
    action: AlertAction | None
    action_at: datetime | None
    appointment_id: uuid.UUID | None


class AlertFilter(InputModel):
    note: str = Field("", max_length=1000)


class RulesRevision(InputModel):
    """A new version of a team's programme with revised rules (each rule as ``rules.rule_to_data`` writes it)."""

    rules: list[dict[str, Any]] = Field(min_length=1, max_length=100)
    note: str = Field(min_length=3, max_length=1000, description="Pourquoi cette révision")
    move_enrolments: bool = Field(True, description="Les patients suivis passent à la nouvelle version")
    from_template: bool = Field(False, description="Reprendre mesures et règles du modèle livré")


class RulesReplay(InputModel):
    """Rules to try on the past readings of the team's patients (nothing is changed)."""

    rules: list[dict[str, Any]] = Field(min_length=1, max_length=100)
    days: int = Field(30, ge=1, le=180)


class AlertAppointment(InputModel):
    appointment_id: uuid.UUID


class AlertInterpretation(InputModel):
    interpretation: str = Field(min_length=2, max_length=2000)
    action: AlertAction


class EducationCreate(InputModel):
    topic: str = Field(min_length=2, max_length=200)
    held_at: datetime | None = None
    notes: str = Field("", max_length=2000)
