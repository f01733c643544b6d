from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import Field, model_validator

from telesante.kit.schemas import InputModel, ReadModel
from telesante.offers.models import ActType
from telesante.requests.models import MessageKind, RequestStatus

EMERGENCY_EXEMPTION_MIN = 15


class RequestCreate(InputModel):
    offer_id: uuid.UUID
    patient_id: uuid.UUID
    requester_organisation_id: uuid.UUID | None = Field(
        None, description="Établissement requérant (obligatoire si vous exercez dans plusieurs)"
    )
    urgent: bool | None = Field(None, description="Par défaut : l'urgence de l'offre")
    answers: dict[str, Any] = Field(default_factory=dict, description="Réponses au formulaire de l'offre")


class RequestDraftUpdate(InputModel):
    answers: dict[str, Any]
    urgent: bool | None = None


class RequestSend(InputModel):
    emergency_exemption: str = Field(
        "",
        max_length=1000,
        description="Urgence empêchant de recueillir le consentement : motif documenté (15 caractères au moins)",
    )

    @model_validator(mode="after")
    def _exemption(self) -> RequestSend:
        if self.emergency_exemption and len(self.emergency_exemption.strip()) < EMERGENCY_EXEMPTION_MIN:
            raise ValueError(
                f"Le motif de l'urgence doit être documenté ({EMERGENCY_EXEMPTION_MIN} caractères au moins)."
            )
        return self


class ReasonInput(InputModel):
    reason: str = Field(min_length=3, max_length=1000)


class MessageCreate(InputModel):
    kind: MessageKind
    body: str = Field(min_length=1, max_length=10000)


class RequestAnswer(InputModel):
    answers: dict[str, Any] = Field(default_factory=dict, description="Réponse codée (formulaire de réponse)")
    conclusion: str = Field(min_length=3, max_length=20000, description="Avis de l'expert")


class Participant(InputModel):
    name: str = Field(min_length=2, max_length=200)
    role: str = Field(
        min_length=2, max_length=200, description="Ex. « médecin requérant », « neurochirurgien »"
    )


class ReportCreate(InputModel):
    conclusion: str = Field(min_length=3, max_length=20000)
    prescriptions: str = Field(
        max_length=20000, description="Prescriptions et actes (écrire « aucune » s'il n'y en a pas)"
    )
    participants: list[Participant] = Field(min_length=1, max_length=20)
    performed_at: datetime = Field(description="Date et heure de réalisation de l'acte")
    duration_minutes: int | None = Field(
        None, ge=0, le=600, description="Durée de l'acte (appel vidéo), en minutes"
    )
    technical_incident: bool = Field(description="Incident technique survenu pendant l'acte")
    technical_incident_details: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _rules(self) -> ReportCreate:
        if not self.prescriptions.strip():
            raise ValueError("Indiquez les prescriptions et actes, ou « aucune ».")
        if self.technical_incident and len(self.technical_incident_details.strip()) < 3:
            raise ValueError("Décrivez l'incident technique.")
        return self


class TransitionRead(ReadModel):
    from_status: RequestStatus | None
    to_status: RequestStatus
    at: datetime
    actor_name: str
    reason: str


class MessageRead(ReadModel):
    id: uuid.UUID
    kind: MessageKind
    body: str
    author_name: str
    from_expert: bool
    created_at: datetime


class AttachmentRead(ReadModel):
    id: uuid.UUID
    message_id: uuid.UUID | None
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by_name: str
    created_at: datetime


class ReportRead(ReadModel):
    conclusion: str
    prescriptions: str
    participants: list[dict[str, str]]
    performed_at: datetime
    technical_incident: bool
    technical_incident_details: str
    signed_by_name: str
    signed_at: datetime
    content_hash: str


class RequestRead(ReadModel):
    id: uuid.UUID
    offer_id: uuid.UUID
    patient_id: uuid.UUID
    act_type: ActType
    status: RequestStatus
    urgent: bool
    requester_organisation_id: uuid.UUID
    requester_name: str
    expert_organisation_id: uuid.UUID
    assigned_professional_id: uuid.UUID | None
    assigned_name: str
    form_code: str
    form_version: int
    answers: dict[str, Any]
    expert_answers: dict[str, Any]
    emergency_exemption: str
    decline_reason: str
    cancel_reason: str
    created_at: datetime
    sent_at: datetime | None
    deadline_at: datetime | None
    accepted_at: datetime | None
    answered_at: datetime | None
    closed_at: datetime | None


class RequestDetail(RequestRead):
    transitions: list[TransitionRead]
    messages: list[MessageRead]
    attachments: list[AttachmentRead]
    report: ReportRead | None


class WorklistItem(ReadModel):
    id: uuid.UUID
    status: RequestStatus
    urgent: bool
    overdue: bool
    offer_title: str
    specialty: str
    patient_id: uuid.UUID
    patient_name: str
    patient_birth_date: date
    requester_name: str
    assigned_name: str
    sent_at: datetime | None
    deadline_at: datetime | None
