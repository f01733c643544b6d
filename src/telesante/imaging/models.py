"""Imaging: the DICOM peers allowed to send, and the study / series / instance index of what was received.

The original bytes of each instance are kept unchanged (their transfer syntax included) in the blob store; the index
keeps what searches and metadata need — each instance's DICOM JSON without bulk data — so that metadata never reads
the image files again."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit import clock
from telesante.kit.models import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, str_enum


class PatientMatch(enum.StrEnum):
    """How a study came to be linked to a patient of the platform (identity vigilance)."""

    PENDING = "a_rapprocher"  # not surely matched: in the identity-vigilance queue
    INS = "ins"  # the INS sent in the DICOM header, traits agreeing
    IPP = "ipp"  # the sender's own patient identifier (IPP), traits agreeing
    REQUEST = "demande"  # attached to a request about this patient, traits agreeing
    MANUAL = "manuel"  # reconciled by a person


MATCH_LABELS = {
    PatientMatch.PENDING: "À rapprocher",
    PatientMatch.INS: "Rapprochée par l'INS",
    PatientMatch.IPP: "Rapprochée par l'IPP de l'émetteur",
    PatientMatch.REQUEST: "Rapprochée par la demande",
    PatientMatch.MANUAL: "Rapprochée manuellement",
}


class DicomPeer(UUIDPrimaryKey, Timestamps, Base):
    """A calling AE title known to belong to an organisation (its CT scanner, its PACS): only known peers may send."""

    __tablename__ = "dicom_peers"

    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    ae_title: Mapped[str] = mapped_column(sa.String(16), unique=True)
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    active: Mapped[bool] = mapped_column(default=True)


class ImagingStudy(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "imaging_studies"
    __table_args__ = (sa.Index("ix_imaging_studies_org_patient", "organisation_id", "dicom_patient_id"),)

    study_uid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))  # the sender
    patient_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    dicom_patient_id: Mapped[str] = mapped_column(sa.String(64), default="")  # (0010,0020) as sent
    dicom_patient_name: Mapped[str] = mapped_column(sa.String(200), default="")
    dicom_birth_date: Mapped[str] = mapped_column(sa.String(8), default="")
    study_date: Mapped[str] = mapped_column(sa.String(8), default="", index=True)
    study_time: Mapped[str] = mapped_column(sa.String(16), default="")
    accession_number: Mapped[str] = mapped_column(sa.String(16), default="", index=True)
    description: Mapped[str] = mapped_column(sa.String(64), default="")
    modalities: Mapped[str] = mapped_column(sa.String(100), default="")  # "CT\\SR", sorted
    series_count: Mapped[int] = mapped_column(default=0)
    instance_count: Mapped[int] = mapped_column(default=0)
    # study-level DICOM JSON attributes (patient and study modules), for QIDO-RS
    attributes: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    patient_match: Mapped[PatientMatch] = mapped_column(
        str_enum(PatientMatch, 20), default=PatientMatch.PENDING, server_default="a_rapprocher", index=True
    )
    matched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    matched_by_name: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")


class ImagingSeries(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "imaging_series"

    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("imaging_studies.id"), index=True)
    series_uid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    modality: Mapped[str] = mapped_column(sa.String(16), default="")
    series_number: Mapped[int | None] = mapped_column()
    description: Mapped[str] = mapped_column(sa.String(64), default="")
    instance_count: Mapped[int] = mapped_column(default=0)
    attributes: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)


class ImagingInstance(UUIDPrimaryKey, Base):
    __tablename__ = "imaging_instances"

    series_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("imaging_series.id"), index=True)
    sop_instance_uid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(sa.String(64))
    instance_number: Mapped[int | None] = mapped_column()
    transfer_syntax_uid: Mapped[str] = mapped_column(sa.String(64))
    number_of_frames: Mapped[int] = mapped_column(default=1)
    blob_key: Mapped[str] = mapped_column(sa.String(200))
    size: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    received_from: Mapped[str] = mapped_column(sa.String(40))  # "dicom:<calling AE>", "stow", "upload"
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # the instance's DICOM JSON (PS3.18 F.2) without bulk data: what WADO-RS /metadata returns
    metadata_json: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # where each frame lies in the stored file: [[[offset, length], ...fragments], ...frames]
    frames: Mapped[list[Any]] = mapped_column(sa.JSON, default=list, server_default="[]")


class RequestStudy(UUIDPrimaryKey, Base):
    """A study attached to a request: the request's parties see it (and the patient's prior studies)."""

    __tablename__ = "request_studies"
    __table_args__ = (sa.UniqueConstraint("request_id", "study_id"),)

    request_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tele_requests.id"), index=True)
    study_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("imaging_studies.id"), index=True)
    attached_by_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    attached_by_name: Mapped[str] = mapped_column(sa.String(200))
    attached_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
