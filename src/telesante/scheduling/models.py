"""Teleconsultation sites, doctors' availability, slots and appointments."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit import clock
from telesante.kit.models import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, str_enum


class SiteKind(enum.StrEnum):
    BOOTH = "booth"  # a closed teleconsultation booth (pharmacy, MSP)
    ROOM = "room"  # a room equipped for teleconsultation (EHPAD, hospital)
    HOME = "home"  # the assisting professional goes to the patient's home


SITE_KIND_LABELS = {
    SiteKind.BOOTH: "Cabine de téléconsultation",
    SiteKind.ROOM: "Salle de téléconsultation",
    SiteKind.HOME: "Domicile du patient",
}

# Equipment a site may hold (what the distant doctor can ask the assisting professional to use).
EQUIPMENT = {
    "camera": "Caméra mobile d'examen",
    "stethoscope": "Stéthoscope connecté",
    "otoscope": "Otoscope connecté",
    "dermatoscope": "Dermatoscope connecté",
    "oximeter": "Oxymètre de pouls",
    "blood_pressure": "Tensiomètre",
    "thermometer": "Thermomètre",
    "scales": "Balance",
    "ecg": "Électrocardiographe connecté",
    "glucometer": "Lecteur de glycémie",
}


class TeleconsultationSite(UUIDPrimaryKey, Timestamps, Base):
    """Where the patient sits during a teleconsultation, with what equipment, and who assists there."""

    __tablename__ = "teleconsultation_sites"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "name"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[SiteKind] = mapped_column(str_enum(SiteKind, 10))
    equipment: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    phone: Mapped[str] = mapped_column(sa.String(30), default="")
    instructions: Mapped[str] = mapped_column(sa.String(1000), default="")
    active: Mapped[bool] = mapped_column(default=True)


class SiteStaff(Base):
    """The professionals who assist patients at a site (nurse, pharmacist, care assistant)."""

    __tablename__ = "teleconsultation_site_staff"

    site_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("teleconsultation_sites.id", ondelete="CASCADE"), primary_key=True
    )
    professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"), primary_key=True)


class AvailabilityPattern(UUIDPrimaryKey, Timestamps, Base):
    """A doctor's recurring availability for one offer: weekdays, hours (Paris time), slot length, validity."""

    __tablename__ = "availability_patterns"
    __table_args__ = (
        sa.CheckConstraint("slot_minutes >= 5 AND slot_minutes <= 240", name="slot_minutes_range"),
        sa.CheckConstraint("end_time > start_time", name="hours_order"),
        sa.CheckConstraint("valid_until >= valid_from", name="validity_order"),
    )

    professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"), index=True)
    offer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("offers.id"), index=True)
    weekdays: Mapped[list[int]] = mapped_column(sa.JSON)  # ISO: 1 = Monday … 7 = Sunday
    start_time: Mapped[time] = mapped_column(sa.Time)
    end_time: Mapped[time] = mapped_column(sa.Time)
    slot_minutes: Mapped[int] = mapped_column()
    valid_from: Mapped[date] = mapped_column(sa.Date)
    valid_until: Mapped[date] = mapped_column(sa.Date)
    skip_public_holidays: Mapped[bool] = mapped_column(default=True)
    created_by_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AvailabilityException(UUIDPrimaryKey, Base):
    """A period when the doctor is not available (leave, training): free slots in it are blocked."""

    __tablename__ = "availability_exceptions"

    professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(sa.String(300), default="")
    created_by_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SlotStatus(enum.StrEnum):
    FREE = "free"
    BOOKED = "booked"
    BLOCKED = "blocked"  # inside an availability exception


class Slot(UUIDPrimaryKey, Base):
    """One bookable period of a doctor for an offer (FHIR Slot). Booking claims it with a conditional update, so
    that of two simultaneous bookings exactly one succeeds."""

    __tablename__ = "slots"
    __table_args__ = (
        sa.UniqueConstraint("professional_id", "starts_at"),
        sa.Index("ix_slots_offer_status_start", "offer_id", "status", "starts_at"),
    )

    professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    offer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("offers.id"))
    pattern_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("availability_patterns.id"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[SlotStatus] = mapped_column(str_enum(SlotStatus, 10), default=SlotStatus.FREE)


class AppointmentStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"
    NOSHOW = "noshow"


APPOINTMENT_STATUS_LABELS = {
    AppointmentStatus.BOOKED: "Programmé",
    AppointmentStatus.CANCELLED: "Annulé",
    AppointmentStatus.FULFILLED: "Réalisé",
    AppointmentStatus.NOSHOW: "Patient absent",
}


class Appointment(UUIDPrimaryKey, Timestamps, Base):
    """A booked teleconsultation (FHIR Appointment): a patient, a doctor's slot, a site, who booked it."""

    __tablename__ = "appointments"
    __table_args__ = (
        # one live appointment per slot, whatever happens in the code above it
        sa.Index(
            "uq_appointments_booked_slot",
            "slot_id",
            unique=True,
            sqlite_where=sa.text("status = 'booked'"),
            postgresql_where=sa.text("status = 'booked'"),
        ),
        sa.Index("ix_appointments_professional_start", "professional_id", "starts_at"),
        sa.Index("ix_appointments_organisation_start", "organisation_id", "starts_at"),
    )

    slot_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("slots.id"))
    offer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("offers.id"))
    professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"))
    expert_organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))  # the booking side
    site_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("teleconsultation_sites.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[AppointmentStatus] = mapped_column(
        str_enum(AppointmentStatus, 12), default=AppointmentStatus.BOOKED
    )
    reason: Mapped[str] = mapped_column(sa.String(1000))
    callback_phone: Mapped[str] = mapped_column(sa.String(30), default="")
    booked_by_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    booked_by_name: Mapped[str] = mapped_column(sa.String(200))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    cancel_reason: Mapped[str] = mapped_column(sa.String(1000), default="")
    rescheduled_to_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("appointments.id"))
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # before the call: the HAS eligibility checklist, consent checked, the act (request) opened
    eligibility: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    eligibility_justification: Mapped[str] = mapped_column(sa.String(2000), default="")
    prepared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    prepared_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    request_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tele_requests.id"))


# HAS, « Téléconsultation et téléexpertise : guide de bon usage » (2019): situations where a teleconsultation is
# not advised and a face-to-face visit should be preferred unless the doctor judges otherwise.
ELIGIBILITY_QUESTIONS = {
    "physical_exam_needed": "Un examen physique complet est nécessaire (palpation, examen neurologique…)",
    "bad_news": "Une annonce difficile est prévue (diagnostic grave, mauvaise nouvelle)",
    "data_unavailable": "Les données utiles (dossier, examens, traitements) ne seront pas disponibles",
    "communication_impossible": "Le patient ne peut pas communiquer, et personne ne l'assiste pour le faire",
}


class WaitingStatus(enum.StrEnum):
    WAITING = "waiting"
    TAKEN = "taken"
    CANCELLED = "cancelled"


class WaitingEntry(UUIDPrimaryKey, Base):
    """Unscheduled care (*soins non programmés*): a patient waiting at a site for the next available doctor of an
    offer. The first doctor who takes the entry gets an appointment starting now."""

    __tablename__ = "waiting_entries"
    __table_args__ = (
        sa.Index("ix_waiting_entries_offer_status_created", "offer_id", "status", "created_at"),
    )

    offer_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("offers.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("organisations.id")
    )  # the patient's side
    site_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("teleconsultation_sites.id"))
    reason: Mapped[str] = mapped_column(sa.String(1000))
    callback_phone: Mapped[str] = mapped_column(sa.String(30), default="")
    status: Mapped[WaitingStatus] = mapped_column(str_enum(WaitingStatus, 10), default=WaitingStatus.WAITING)
    created_by_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    created_by_name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    taken_by_professional_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("appointments.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str] = mapped_column(sa.String(1000), default="")
