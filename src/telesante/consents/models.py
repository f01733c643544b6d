"""Information given to the patient and consent (or refusal) recorded before any act."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telesante.kit import clock
from telesante.kit.models import Base, UTCDateTime, UUIDPrimaryKey, str_enum


class ConsentScopeType(enum.StrEnum):
    ACT = "act"
    MONITORING_PROGRAMME = "monitoring_programme"
    DATA_PROCESSING = "data_processing"


SCOPE_TYPE_LABELS = {
    ConsentScopeType.ACT: "Acte de télésanté",
    ConsentScopeType.MONITORING_PROGRAMME: "Programme de télésurveillance",
    ConsentScopeType.DATA_PROCESSING: "Traitement de données",
}

# R.6316-1 CSP acts, plus télésoin (L.6316-2).
ACT_CODES = {
    "teleconsultation": "Téléconsultation",
    "teleexpertise": "Téléexpertise",
    "telesurveillance": "Télésurveillance médicale",
    "teleassistance": "Téléassistance médicale",
    "regulation": "Régulation médicale",
    "telesoin": "Télésoin",
}
DATA_PROCESSING_CODES = {
    "partage_equipe_soins": "Échange et partage entre professionnels hors équipe de soins (L.1110-4 CSP)",
    "recherche": "Réutilisation des données pour la recherche",
}


class ConsentDecision(enum.StrEnum):
    GIVEN = "given"
    REFUSED = "refused"


class ConsentMethod(enum.StrEnum):
    ORAL = "oral"
    WRITTEN = "written"
    ELECTRONIC = "electronic"


class ConsentGiver(enum.StrEnum):
    PATIENT = "patient"
    LEGAL_REPRESENTATIVE = "legal_representative"
    TRUSTED_PERSON = "trusted_person"


class InformationText(UUIDPrimaryKey, Base):
    """A versioned information notice shown to the patient before consent."""

    __tablename__ = "information_texts"
    __table_args__ = (sa.UniqueConstraint("scope_type", "scope_code", "version"),)

    scope_type: Mapped[ConsentScopeType] = mapped_column(str_enum(ConsentScopeType, 30))
    scope_code: Mapped[str] = mapped_column(sa.String(60))
    version: Mapped[str] = mapped_column(sa.String(20))
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Consent(UUIDPrimaryKey, Base):
    __tablename__ = "consents"
    __table_args__ = (sa.Index("ix_consents_patient_scope", "patient_id", "scope_type", "scope_code"),)

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    scope_type: Mapped[ConsentScopeType] = mapped_column(str_enum(ConsentScopeType, 30))
    scope_code: Mapped[str] = mapped_column(sa.String(60))
    decision: Mapped[ConsentDecision] = mapped_column(str_enum(ConsentDecision, 10))
    information_text_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("information_texts.id"))
    method: Mapped[ConsentMethod] = mapped_column(str_enum(ConsentMethod, 15))
    given_by: Mapped[ConsentGiver] = mapped_column(str_enum(ConsentGiver, 25))
    representative_name: Mapped[str] = mapped_column(sa.String(200), default="")
    comment: Mapped[str] = mapped_column(sa.String(1000), default="")
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("organisations.id"))
    collected_by_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    collected_by_name: Mapped[str] = mapped_column(sa.String(200))
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    withdrawn_by_name: Mapped[str] = mapped_column(sa.String(200), default="")
    withdrawal_reason: Mapped[str] = mapped_column(sa.String(1000), default="")

    information_text: Mapped[InformationText] = relationship(lazy="raise")
