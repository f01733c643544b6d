"""TéléAVC: a stroke case is the time-critical record around one tele-expertise request (the neurology opinion on
call): its clocks (last known well, arrival), its milestones, the NIHSS of each side, the measures the decision
needs, the thrombolysis checklist, and the decision."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit import clock
from telesante.kit.models import Base, UTCDateTime, UUIDPrimaryKey, str_enum


class CaseStatus(enum.StrEnum):
    ALERT = "alert"  # sent, waiting for the neurologist
    IN_PROGRESS = "in_progress"  # the neurologist acknowledged
    DECIDED = "decided"  # the decision is recorded
    CLOSED = "closed"  # the compte rendu is signed


CASE_STATUS_LABELS = {
    CaseStatus.ALERT: "Alerte en attente du neurologue",
    CaseStatus.IN_PROGRESS: "Prise en charge par le neurologue",
    CaseStatus.DECIDED: "Décision prise",
    CaseStatus.CLOSED: "Clos (compte rendu signé)",
}


class Milestone(enum.StrEnum):
    ARRIVAL = "arrival"
    ALERT = "alert"
    ACKNOWLEDGED = "acknowledged"
    VIDEO_STARTED = "video_started"
    IMAGING_AVAILABLE = "imaging_available"
    IMAGING_READ = "imaging_read"
    DECISION = "decision"
    NEEDLE = "needle"
    DEPARTURE = "departure"


MILESTONE_LABELS = {
    Milestone.ARRIVAL: "Arrivée aux urgences",
    Milestone.ALERT: "Alerte AVC",
    Milestone.ACKNOWLEDGED: "Neurologue joint",
    Milestone.VIDEO_STARTED: "Vidéo commencée",
    Milestone.IMAGING_AVAILABLE: "Imagerie disponible",
    Milestone.IMAGING_READ: "Imagerie lue",
    Milestone.DECISION: "Décision",
    Milestone.NEEDLE: "Début de la thrombolyse (aiguille)",
    Milestone.DEPARTURE: "Départ (transfert)",
}


class Disposition(enum.StrEnum):
    THROMBOLYSIS = "thrombolysis"  # IV thrombolysis on site (with or without a transfer for thrombectomy)
    TRANSFER = "transfer"  # thrombectomy (or neurosurgery) in another centre, without thrombolysis
    MONITORING = "monitoring"  # neither: monitoring on site (or in the stroke unit)


DISPOSITION_LABELS = {
    Disposition.THROMBOLYSIS: "Thrombolyse intraveineuse",
    Disposition.TRANSFER: "Transfert sans thrombolyse",
    Disposition.MONITORING: "Ni thrombolyse ni transfert : surveillance",
}


class TransportMode(enum.StrEnum):
    SMUR = "smur"
    HELICOPTER = "helicoptere"
    AMBULANCE = "ambulance"


TRANSPORT_LABELS = {
    TransportMode.SMUR: "SMUR terrestre",
    TransportMode.HELICOPTER: "Hélicoptère (HéliSMUR)",
    TransportMode.AMBULANCE: "Ambulance (transport paramédicalisé)",
}


class NihssRole(enum.StrEnum):
    EMERGENCY = "emergency"  # the emergency doctor at the patient's side
    NEUROLOGIST = "neurologist"  # the neurologist, by video (confirmation)


NIHSS_ROLE_LABELS = {NihssRole.EMERGENCY: "Urgentiste", NihssRole.NEUROLOGIST: "Neurologue"}


class StrokeCase(UUIDPrimaryKey, Base):
    __tablename__ = "stroke_cases"
    __table_args__ = (
        sa.CheckConstraint("onset_known = false OR last_known_well_at IS NOT NULL", name="onset_time_set"),
        sa.Index("ix_stroke_cases_organisation_alert", "organisation_id", "alert_at"),
    )

    request_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tele_requests.id"), unique=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))  # the ED's hospital
    expert_organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))
    status: Mapped[CaseStatus] = mapped_column(str_enum(CaseStatus, 15), default=CaseStatus.ALERT)
    # Clocks (UTC, server time). Without a known onset, the last time seen well, if any, starts the windows.
    onset_known: Mapped[bool] = mapped_column(sa.Boolean)
    last_known_well_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    onset_note: Mapped[str] = mapped_column(sa.String(300), default="")  # e.g. "réveil avec le déficit"
    arrival_at: Mapped[datetime] = mapped_column(UTCDateTime())
    alert_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    callback_phone: Mapped[str] = mapped_column(sa.String(30))
    # The head CT's accession number given by the RIS, when known: the study sent by the scanner with this number
    # (and the case's patient) joins the case by itself.
    accession_number: Mapped[str] = mapped_column(sa.String(16), default="", index=True)
    created_by_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    created_by_name: Mapped[str] = mapped_column(sa.String(200))
    neurologist_professional_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))
    neurologist_name: Mapped[str] = mapped_column(sa.String(200), default="")
    # Measures for the decision (the latest values; each change is audited)
    systolic: Mapped[int | None] = mapped_column(sa.Integer)
    diastolic: Mapped[int | None] = mapped_column(sa.Integer)
    glucose_mmol: Mapped[float | None] = mapped_column(sa.Float)
    platelets: Mapped[int | None] = mapped_column(sa.Integer)  # per mm³
    inr: Mapped[float | None] = mapped_column(sa.Float)
    weight_kg: Mapped[float | None] = mapped_column(sa.Float)
    anticoagulant: Mapped[str | None] = mapped_column(sa.String(20))
    last_anticoagulant_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    measures_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    measures_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    # Thrombolysis checklist: the answers given by hand (code -> oui/non/inconnu); measures decide the others
    checklist: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    checklist_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checklist_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    # Decision
    disposition: Mapped[Disposition | None] = mapped_column(str_enum(Disposition, 15))
    decision_reasons: Mapped[str] = mapped_column(sa.String(2000), default="")
    override_reason: Mapped[str] = mapped_column(
        sa.String(1000), default=""
    )  # thrombolysis despite the checklist
    overridden_items: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    agent: Mapped[str] = mapped_column(sa.String(20), default="")  # alteplase / tenecteplase
    dose_mg: Mapped[float | None] = mapped_column(sa.Float)
    bolus_mg: Mapped[float | None] = mapped_column(sa.Float)
    infusion_mg: Mapped[float | None] = mapped_column(sa.Float)
    dose_text: Mapped[str] = mapped_column(sa.String(300), default="")
    thrombectomy: Mapped[bool | None] = mapped_column(sa.Boolean)
    receiving_organisation_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("organisations.id"))
    transport_mode: Mapped[TransportMode | None] = mapped_column(str_enum(TransportMode, 15))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    decided_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the compte rendu signed


class StrokeMilestone(UUIDPrimaryKey, Base):
    """One stamped milestone (one of each kind per case), at the server's time unless corrected with a reason."""

    __tablename__ = "stroke_milestones"
    __table_args__ = (sa.UniqueConstraint("case_id", "kind"),)

    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("stroke_cases.id"))
    kind: Mapped[Milestone] = mapped_column(str_enum(Milestone, 20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    recorded_by_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    recorded_by_name: Mapped[str] = mapped_column(sa.String(200))
    correction_reason: Mapped[str] = mapped_column(sa.String(300), default="")


class NihssAssessment(UUIDPrimaryKey, Base):
    """An NIHSS by one side; every assessment is kept (the emergency doctor's and the neurologist's confirmation,
    and any later one)."""

    __tablename__ = "stroke_nihss"
    __table_args__ = (sa.Index("ix_stroke_nihss_case_at", "case_id", "assessed_at"),)

    case_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("stroke_cases.id"))
    role: Mapped[NihssRole] = mapped_column(str_enum(NihssRole, 15))
    items: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    total: Mapped[int] = mapped_column(sa.Integer)
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    assessed_by_account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    assessed_by_name: Mapped[str] = mapped_column(sa.String(200))
