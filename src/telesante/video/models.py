"""Video teleconsultation: the room of an appointment, guests' one-time links, and the call's journal."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit import clock
from telesante.kit.models import Base, UTCDateTime, UUIDPrimaryKey, str_enum


class RoomStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class VideoRoom(UUIDPrimaryKey, Base):
    """One call: a teleconsultation appointment's room (at most one per appointment), or the room of an act opened
    without an appointment (a stroke alert's neurology opinion: at most one per request)."""

    __tablename__ = "video_rooms"
    __table_args__ = (
        sa.CheckConstraint("appointment_id IS NOT NULL OR request_id IS NOT NULL", name="room_has_an_act"),
    )

    appointment_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("appointments.id"), unique=True)
    request_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tele_requests.id"), unique=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    host_professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("organisations.id")
    )  # the patient's side
    expert_organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))
    status: Mapped[RoomStatus] = mapped_column(str_enum(RoomStatus, 10), default=RoomStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    created_by_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # two participants first connected
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GuestRole(enum.StrEnum):
    PATIENT = "patient"
    RELATIVE = "relative"
    INTERPRETER = "interpreter"
    PROFESSIONAL = "professional"  # a professional without an account here (GP, carer)


GUEST_ROLE_LABELS = {
    GuestRole.PATIENT: "Patient",
    GuestRole.RELATIVE: "Proche",
    GuestRole.INTERPRETER: "Interprète",
    GuestRole.PROFESSIONAL: "Professionnel invité",
}


class GuestLink(UUIDPrimaryKey, Base):
    """A one-time invitation: the secret of the link (hash only) works once; the browser that used it then holds a
    second secret (cookie, hash only) that lets it come back after a reload or a network drop, until the link
    expires or is revoked. It shows nothing of the patient before the doctor admits the guest."""

    __tablename__ = "video_guest_links"

    room_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("video_rooms.id"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[GuestRole] = mapped_column(str_enum(GuestRole, 15))
    created_by_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    created_by_name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    browser_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_name: Mapped[str] = mapped_column(sa.String(200), default="")


class CallEventKind(enum.StrEnum):
    JOINED = "joined"  # connected to the room (waiting room included)
    ADMITTED = "admitted"
    REFUSED = "refused"
    LEFT = "left"  # left by choice
    DROPPED = "dropped"  # the connection was lost
    RECONNECTED = "reconnected"  # back after a drop or a reload
    REPLACED = "replaced"  # the same participant opened the call in another tab
    ICE_RESTART = "ice_restart"  # the media path was renegotiated
    AUDIO_ONLY = "audio_only"  # switched to audio only (weak network) or back
    SCREEN_SHARE = "screen_share"
    FILE_SHARED = "file_shared"
    ROOM_FULL = "room_full"
    ENDED = "ended"


class CallEvent(UUIDPrimaryKey, Base):
    """The call's journal, for the compte rendu (participants, duration, technical incidents)."""

    __tablename__ = "video_call_events"
    __table_args__ = (sa.Index("ix_video_call_events_room_at", "room_id", "at"),)

    room_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("video_rooms.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    kind: Mapped[CallEventKind] = mapped_column(str_enum(CallEventKind, 15))
    participant: Mapped[str] = mapped_column(sa.String(80))  # "a-<account id>" or "g-<guest link id>"
    participant_name: Mapped[str] = mapped_column(sa.String(200))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


class CallMessage(UUIDPrimaryKey, Base):
    """In-call chat, kept with the call (it is part of what was exchanged)."""

    __tablename__ = "video_call_messages"

    room_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("video_rooms.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    participant: Mapped[str] = mapped_column(sa.String(80))
    participant_name: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.String(2000))
    blob_key: Mapped[str] = mapped_column(sa.String(200), default="")  # a shared document or photo
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    content_type: Mapped[str] = mapped_column(sa.String(100), default="")
    size: Mapped[int] = mapped_column(sa.BigInteger, default=0)
