"""Tele-expertise / teleconsultation requests: the request, its timestamped transitions, its thread, its
attachments and its compte rendu (report)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit import clock
from telesante.kit.models import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, str_enum
from telesante.offers.models import ActType


class RequestStatus(enum.StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


STATUS_LABELS = {
    RequestStatus.DRAFT: "Brouillon",
    RequestStatus.SENT: "Envoyée",
    RequestStatus.ACCEPTED: "Acceptée",
    RequestStatus.DECLINED: "Refusée",
    RequestStatus.IN_PROGRESS: "En cours",
    RequestStatus.ANSWERED: "Répondue",
    RequestStatus.CLOSED: "Clôturée",
    RequestStatus.CANCELLED: "Annulée",
    RequestStatus.EXPIRED: "Délai dépassé",
}

OPEN_STATUSES = frozenset(
    {RequestStatus.SENT, RequestStatus.ACCEPTED, RequestStatus.IN_PROGRESS, RequestStatus.ANSWERED}
)


class MessageKind(enum.StrEnum):
    INFORMATION = "information"  # the requester adds information
    QUESTION = "question"  # the expert asks something back
    REPLY = "reply"  # the requester answers the expert's question
    COMMENT = "comment"


MESSAGE_KIND_LABELS = {
    MessageKind.INFORMATION: "Complément d'information",
    MessageKind.QUESTION: "Question de l'expert",
    MessageKind.REPLY: "Réponse du requérant",
    MessageKind.COMMENT: "Commentaire",
}


class TeleRequest(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "tele_requests"
    __table_args__ = (
        sa.Index("ix_tele_requests_requester_org_status", "requester_organisation_id", "status"),
        sa.Index("ix_tele_requests_expert_org_status", "expert_organisation_id", "status"),
        sa.Index("ix_tele_requests_status_deadline", "status", "deadline_at"),
    )

    offer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("offers.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    act_type: Mapped[ActType] = mapped_column(str_enum(ActType, 20))
    status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus, 20), default=RequestStatus.DRAFT)
    urgent: Mapped[bool] = mapped_column(default=False)
    requester_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    requester_professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    requester_organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))
    requester_name: Mapped[str] = mapped_column(sa.String(200))
    expert_organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))
    assigned_professional_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))
    assigned_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    assigned_name: Mapped[str] = mapped_column(sa.String(200), default="")
    form_code: Mapped[str] = mapped_column(sa.String(50))
    form_version: Mapped[int] = mapped_column()
    answers: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    expert_answers: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    consent_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("consents.id"))
    emergency_exemption: Mapped[str] = mapped_column(sa.String(1000), default="")
    decline_reason: Mapped[str] = mapped_column(sa.String(1000), default="")
    cancel_reason: Mapped[str] = mapped_column(sa.String(1000), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RequestTransition(UUIDPrimaryKey, Base):
    """Every change of status: when, by whom, why."""

    __tablename__ = "tele_request_transitions"

    request_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tele_requests.id"), index=True)
    from_status: Mapped[RequestStatus | None] = mapped_column(str_enum(RequestStatus, 20))
    to_status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus, 20))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    actor_name: Mapped[str] = mapped_column(sa.String(200))  # "Système" for timers
    reason: Mapped[str] = mapped_column(sa.String(1000), default="")


class RequestMessage(UUIDPrimaryKey, Base):
    __tablename__ = "tele_request_messages"

    request_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tele_requests.id"), index=True)
    kind: Mapped[MessageKind] = mapped_column(str_enum(MessageKind, 20))
    body: Mapped[str] = mapped_column(sa.Text)
    author_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    author_name: Mapped[str] = mapped_column(sa.String(200))
    from_expert: Mapped[bool] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class RequestAttachment(UUIDPrimaryKey, Base):
    __tablename__ = "tele_request_attachments"

    request_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tele_requests.id"), index=True)
    message_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tele_request_messages.id"))
    blob_key: Mapped[str] = mapped_column(sa.String(200))
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    uploaded_by_name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class RequestReport(UUIDPrimaryKey, Base):
    """The compte rendu (CSP R.6316-4): conclusion, prescriptions, participants, date and time, technical
    incidents; signed by the expert (account, time, SHA-256 of the canonical content) and rendered as a PDF."""

    __tablename__ = "tele_request_reports"

    request_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tele_requests.id"), unique=True)
    conclusion: Mapped[str] = mapped_column(sa.Text)
    prescriptions: Mapped[str] = mapped_column(sa.Text, default="")
    participants: Mapped[list[dict[str, str]]] = mapped_column(sa.JSON, default=list)
    performed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int | None] = mapped_column()  # a call's length (teleconsultation), when known
    technical_incident: Mapped[bool] = mapped_column()
    technical_incident_details: Mapped[str] = mapped_column(sa.String(2000), default="")
    signed_by_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    signed_by_name: Mapped[str] = mapped_column(sa.String(200))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    pdf_blob_key: Mapped[str] = mapped_column(sa.String(200), default="")
