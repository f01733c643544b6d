"""Teleradiology (G4 charter): the radiologist's justification of the exam before its acquisition. The rest of the
story is the request's (sending, acceptance, images attached, answer, signed report) and the imaging domain's."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit import clock
from telesante.kit.models import Base, UTCDateTime, UUIDPrimaryKey, str_enum


class JustificationDecision(enum.StrEnum):
    JUSTIFIED = "justifie"  # the exam as asked
    MODIFIED = "modifie"  # justified with another protocol or another exam
    NOT_JUSTIFIED = "non_justifie"  # not to be done: the request is declined with the reason


JUSTIFICATION_LABELS = {
    JustificationDecision.JUSTIFIED: "Examen justifié",
    JustificationDecision.MODIFIED: "Justifié avec un autre protocole ou un autre examen",
    JustificationDecision.NOT_JUSTIFIED: "Examen non justifié",
}


class ExamJustification(UUIDPrimaryKey, Base):
    """Teleradiology: the radiologist's validation of the indication and the protocol, before the acquisition
    (justification of an exposure to ionising radiation, CSP R.1333-46; G4 charter)."""

    __tablename__ = "exam_justifications"

    request_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tele_requests.id"), unique=True)
    decision: Mapped[JustificationDecision] = mapped_column(str_enum(JustificationDecision, 20))
    protocol: Mapped[str] = mapped_column(sa.String(4000), default="")
    comment: Mapped[str] = mapped_column(sa.String(4000), default="")
    radiologist_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    radiologist_name: Mapped[str] = mapped_column(sa.String(200))
    radiologist_organisation: Mapped[str] = mapped_column(sa.String(300), default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
