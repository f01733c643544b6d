"""Télésurveillance: a programme run by a monitoring team (an organisation, the operator), the patients enrolled in
it with their consent, their devices, the readings received, and the alerts the rules raise on them.

A programme is versioned: changing its rules makes a new version, and an enrolment keeps the version it was made
under (its per-patient thresholds override that version's defaults). Readings are stored in one unit per measure
(``clinical.MEASURES``); a reading sent twice (same device reading, or same measure and time from the same source)
is stored once. An alert is one finding of a rule, kept open while the rule keeps firing, and carries who filtered
it (first line, often a nurse), who interpreted it (a doctor), the action taken and when."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, column_property, mapped_column

from telesante.kit import clock
from telesante.kit.models import Base, UTCDateTime, Uuid, UUIDPrimaryKey, str_enum, uuid7


class EnrolmentStatus(enum.StrEnum):
    ACTIVE = "active"
    REFUSED = "refused"  # the patient declined; conventional follow-up was offered
    ENDED = "ended"


ENROLMENT_STATUS_LABELS = {
    EnrolmentStatus.ACTIVE: "Suivi en cours",
    EnrolmentStatus.REFUSED: "Refus du patient (suivi conventionnel proposé)",
    EnrolmentStatus.ENDED: "Suivi terminé",
}


class ReadingSource(enum.StrEnum):
    PATIENT = "patient"  # the patient's page (link + PIN)
    DEVICE = "device"  # a device or its gateway (FHIR)
    PROFESSIONAL = "professional"  # typed by a professional (a home nurse's visit)


SOURCE_LABELS = {
    ReadingSource.PATIENT: "Saisie du patient",
    ReadingSource.DEVICE: "Appareil connecté",
    ReadingSource.PROFESSIONAL: "Saisie d'un professionnel",
}


class AlertStatus(enum.StrEnum):
    OPEN = "open"  # raised, nobody has looked at it yet
    FILTERED = "filtered"  # first-line review done (confirmed, needs a doctor)
    CLOSED = "closed"  # interpreted, with the action taken


ALERT_STATUS_LABELS = {
    AlertStatus.OPEN: "À filtrer",
    AlertStatus.FILTERED: "Filtrée, à interpréter",
    AlertStatus.CLOSED: "Interprétée",
}


class AlertAction(enum.StrEnum):
    NONE = "none"
    CALL = "call"
    TREATMENT = "treatment"
    TELECONSULTATION = "teleconsultation"
    REFERRAL = "referral"
    EMERGENCY = "emergency"


ACTION_LABELS = {
    AlertAction.NONE: "Aucune action (alerte expliquée)",
    AlertAction.CALL: "Appel du patient",
    AlertAction.TREATMENT: "Adaptation du traitement",
    AlertAction.TELECONSULTATION: "Téléconsultation programmée",
    AlertAction.REFERRAL: "Orientation vers l'hôpital (consultation ou hospitalisation)",
    AlertAction.EMERGENCY: "Appel du SAMU (15)",
}


class MonitoringProgramme(UUIDPrimaryKey, Base):
    """One version of a programme run by a monitoring team. A new version replaces the previous one for new
    enrolments; the enrolments made under an older version keep it until they are moved."""

    __tablename__ = "monitoring_programmes"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "code", "version"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))  # the operator
    code: Mapped[str] = mapped_column(sa.String(60))  # e.g. insuffisance_cardiaque
    version: Mapped[int] = mapped_column(sa.Integer)
    title: Mapped[str] = mapped_column(sa.String(200))
    current: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # The operator's declaration to the ARS / the CNAM listing (e.g. "ARS HDF 2024-TLS-031"), shown on reports.
    declaration_reference: Mapped[str] = mapped_column(sa.String(100), default="")
    team_name: Mapped[str] = mapped_column(sa.String(200))
    team_phone: Mapped[str] = mapped_column(sa.String(30), default="")
    # Declared hours: ISO weekdays (1 = Monday) and a local (Europe/Paris) time range; public holidays excluded.
    days: Mapped[list[int]] = mapped_column(sa.JSON)
    opens: Mapped[str] = mapped_column(sa.String(5))  # "08:00"
    closes: Mapped[str] = mapped_column(sa.String(5))  # "18:00"
    measures: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)  # [{"measure", "frequency"}]
    rules: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)  # rules.rule_to_data() of each rule
    education_plan: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # sessions planned, in order
    # Why this version was made (a rule revision: "seuil de PAS abaissé après revue de dossiers"), shown in its history
    revision_note: Mapped[str] = mapped_column(sa.String(1000), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    created_by_name: Mapped[str] = mapped_column(sa.String(200))


class Enrolment(UUIDPrimaryKey, Base):
    """A patient in a programme (or the record of their refusal)."""

    __tablename__ = "monitoring_enrolments"
    __table_args__ = (
        sa.Index("ix_monitoring_enrolments_org_status", "organisation_id", "status"),
        # a patient's enrolments; unique with the id, it is also what a reading's (enrolment, patient) refers to
        sa.Index("uq_monitoring_enrolments_patient_id_id", "patient_id", "id", unique=True),
        # room on each page for the triage updates of every device batch (migration 6a7b0e01a005)
        {"postgresql_with": {"fillfactor": 70}},
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    programme_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("monitoring_programmes.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))  # the programme's
    programme_code: Mapped[str] = mapped_column(sa.String(60))
    status: Mapped[EnrolmentStatus] = mapped_column(str_enum(EnrolmentStatus, 10))
    indication: Mapped[str] = mapped_column(sa.String(500))  # the prescriber's words (e.g. "ICFEr NYHA III")
    prescriber_name: Mapped[str] = mapped_column(sa.String(200))
    starts_on: Mapped[date | None] = mapped_column(sa.Date)
    ends_on: Mapped[date | None] = mapped_column(sa.Date)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # missing-data rules count from here
    # Per-patient rule parameters overriding the programme's: {rule code: {"above"|"below"|"change"|"days": x}}
    overrides: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    act_consent_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("consents.id"))
    data_consent_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("consents.id"))
    conventional_follow_up_offered: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    refusal_reason: Mapped[str] = mapped_column(sa.String(1000), default="")
    # The patient's page: a personal link (its SHA-256 kept, not the link) and a PIN (argon2)
    link_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    pin_hash: Mapped[str] = mapped_column(sa.String(200), default="")
    pin_failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    link_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Triage colour, kept up to date by every evaluation (the worklist reads it without evaluating); the time of the
    # last reading is read from the readings themselves (``last_reading_at`` below, migration 2026-12-07-0500)
    colour: Mapped[str] = mapped_column(sa.String(6), default="green")
    reviewed_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime()
    )  # readings seen up to here ("green" ack)
    reviewed_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    created_by_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    created_by_name: Mapped[str] = mapped_column(sa.String(200))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str] = mapped_column(sa.String(500), default="")


class Device(UUIDPrimaryKey, Base):
    """A device lent to an enrolled patient, known by its serial number (what the gateway sends)."""

    __tablename__ = "monitoring_devices"
    __table_args__ = (
        sa.Index("ix_monitoring_devices_serial", "serial"),
        # an enrolment's devices; unique with the id, it is also what a reading's (device, enrolment) refers to
        sa.Index("uq_monitoring_devices_enrolment_id_id", "enrolment_id", "id", unique=True),
    )

    enrolment_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("monitoring_enrolments.id"))
    serial: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(100))  # e.g. "Balance connectée"
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    unlinked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Observation(UUIDPrimaryKey, Base):
    """One reading, in the measure's stored unit. ``dedup_key`` makes a reading sent twice land once."""

    __tablename__ = "monitoring_observations"
    __table_args__ = (
        sa.UniqueConstraint("enrolment_id", "dedup_key"),
        # every read of readings is an enrolment's over a time range (the rules' window, charts, the patient's file):
        # the time right after the enrolment bounds the scan (migration 2026-12-07-0400)
        sa.Index("ix_monitoring_observations_enrolment_at", "enrolment_id", "effective_at"),
        # Two checks per reading instead of three, each stronger than the one-column keys they replace (migration
        # 2026-12-07-0010): the reading's patient is its enrolment's patient, and its device one lent for that
        # enrolment. A check costs PostgreSQL a row lock on the row referred to (docs/performance.md, issue 7).
        sa.ForeignKeyConstraint(
            ["enrolment_id", "patient_id"], ["monitoring_enrolments.id", "monitoring_enrolments.patient_id"]
        ),
        sa.ForeignKeyConstraint(
            ["device_id", "enrolment_id"], ["monitoring_devices.id", "monitoring_devices.enrolment_id"]
        ),
    )

    # time-ordered keys: readings arrive in bulk, and each new key lands at the end of the primary key's index
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid7)
    enrolment_id: Mapped[uuid.UUID] = mapped_column()
    # not indexed: a patient's readings are found through the patient's enrolments (migration 2026-12-06-2040); the
    # patient exists since the enrolment refers to it
    patient_id: Mapped[uuid.UUID] = mapped_column()
    measure: Mapped[str] = mapped_column(sa.String(30))  # clinical.MEASURES key
    # the code as sent: LOINC, or Télésanté's own for the questionnaires' answers (migration 2026-12-07-1000)
    code: Mapped[str] = mapped_column(sa.String(60))
    value: Mapped[float] = mapped_column(sa.Float)
    unit: Mapped[str] = mapped_column(sa.String(20))  # the stored UCUM unit
    sent_value: Mapped[float] = mapped_column(sa.Float)  # as sent, before conversion
    sent_unit: Mapped[str] = mapped_column(sa.String(20))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    source: Mapped[ReadingSource] = mapped_column(str_enum(ReadingSource, 12))
    device_id: Mapped[uuid.UUID | None] = mapped_column()
    dedup_key: Mapped[str] = mapped_column(sa.String(200))
    entered_by_name: Mapped[str] = mapped_column(sa.String(200), default="")


# The time of an enrolment's last reading (the worklist's "last reading", and what "all green seen" marks as seen), read
# with the enrolment: one search of the readings' (enrolment, time) index, at its end. It was a column written by every
# judging of every reading (a device batch rewrote hundreds of enrolment rows, on SQLite hundreds of pages again in the
# write-ahead log) for a value the readings already hold.
Enrolment.last_reading_at = column_property(
    sa.select(sa.func.max(Observation.effective_at))
    .where(Observation.enrolment_id == Enrolment.id)
    .correlate_except(Observation)
    .scalar_subquery(),
    # kept when the enrolment's own row is written (a new enrolment has none; ``EnrolmentRepository.keep_in_step``
    # moves it for the enrolments a session holds when readings are judged): never read again behind the caller
    expire_on_flush=False,
)


class Alert(UUIDPrimaryKey, Base):
    """A finding of a rule. While the rule keeps firing, the open alert is updated rather than repeated."""

    __tablename__ = "monitoring_alerts"
    __table_args__ = (
        sa.Index("ix_monitoring_alerts_enrolment_status", "enrolment_id", "status"),
        sa.Index("ix_monitoring_alerts_org_status", "organisation_id", "status", "raised_at"),
    )

    enrolment_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("monitoring_enrolments.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))
    rule_code: Mapped[str] = mapped_column(sa.String(60))
    # What fired: the latest reading's id (threshold, trend), or the last reading's time (missing data). The same
    # trigger never raises a second alert, even after the first was closed.
    trigger: Mapped[str] = mapped_column(sa.String(80))
    programme_version: Mapped[int] = mapped_column(sa.Integer)
    severity: Mapped[str] = mapped_column(sa.String(6))  # red / orange / blue
    message: Mapped[str] = mapped_column(sa.String(500))
    readings: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)  # [{"id", "value", "at"}] that caused it
    status: Mapped[AlertStatus] = mapped_column(str_enum(AlertStatus, 10), default=AlertStatus.OPEN)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # Raised outside the team's declared hours: it waits for the next opening, and says so
    outside_hours: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    seen_from: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the next opening, when outside hours
    filtered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    filtered_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    filter_note: Mapped[str] = mapped_column(sa.String(1000), default="")
    interpreted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    interpreted_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    interpretation: Mapped[str] = mapped_column(sa.String(2000), default="")
    action: Mapped[AlertAction | None] = mapped_column(str_enum(AlertAction, 20))
    action_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("appointments.id"))


class EducationSession(UUIDPrimaryKey, Base):
    """A therapeutic education session held with an enrolled patient (ETP)."""

    __tablename__ = "monitoring_education_sessions"

    enrolment_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("monitoring_enrolments.id"), index=True)
    topic: Mapped[str] = mapped_column(sa.String(200))
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())
    held_by_name: Mapped[str] = mapped_column(sa.String(200))
    notes: Mapped[str] = mapped_column(sa.String(2000), default="")
