"""Patient identity (INS / RNIV), local identifiers, care relationships and emergency access."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telesante.kit import clock
from telesante.kit.models import Base, Timestamps, UTCDateTime, Uuid, UUIDPrimaryKey, ci_string, str_enum


class Sex(enum.StrEnum):
    M = "M"
    F = "F"
    I = "I"  # noqa: E741 - INS trait "indéterminé"


SEX_LABELS = {Sex.M: "Masculin", Sex.F: "Féminin", Sex.I: "Indéterminé"}


class IdentityStatus(enum.StrEnum):
    """RNIV statuses: provisoire, récupérée, validée, qualifiée."""

    PROVISOIRE = "provisoire"
    RECUPEREE = "recuperee"
    VALIDEE = "validee"
    QUALIFIEE = "qualifiee"


IDENTITY_STATUS_LABELS = {
    IdentityStatus.PROVISOIRE: "Identité provisoire",
    IdentityStatus.RECUPEREE: "Identité récupérée",
    IdentityStatus.VALIDEE: "Identité validée",
    IdentityStatus.QUALIFIEE: "Identité qualifiée",
}


class IdentityEvidence(enum.StrEnum):
    """Identity documents; the first three are of high trust level (RNIV)."""

    CNI = "cni"
    PASSEPORT = "passeport"
    TITRE_SEJOUR = "titre_sejour"
    LIVRET_FAMILLE = "livret_famille"
    EXTRAIT_NAISSANCE = "extrait_naissance"
    TELESERVICE_INSI = "teleservice_insi"
    AUCUN = "aucun"


EVIDENCE_LABELS = {
    IdentityEvidence.CNI: "Carte nationale d'identité",
    IdentityEvidence.PASSEPORT: "Passeport",
    IdentityEvidence.TITRE_SEJOUR: "Titre de séjour",
    IdentityEvidence.LIVRET_FAMILLE: "Livret de famille (mineur, avec pièce du représentant légal)",
    IdentityEvidence.EXTRAIT_NAISSANCE: "Extrait d'acte de naissance (mineur, avec pièce du représentant légal)",
    IdentityEvidence.TELESERVICE_INSI: "Appel au téléservice INSi",
    IdentityEvidence.AUCUN: "Aucun justificatif",
}

HIGH_TRUST_EVIDENCE = frozenset(
    {
        IdentityEvidence.CNI,
        IdentityEvidence.PASSEPORT,
        IdentityEvidence.TITRE_SEJOUR,
        IdentityEvidence.LIVRET_FAMILLE,
        IdentityEvidence.EXTRAIT_NAISSANCE,
    }
)
# For minors only, together with the legal representative's own document (RNIV).
MINOR_ONLY_EVIDENCE = frozenset({IdentityEvidence.LIVRET_FAMILLE, IdentityEvidence.EXTRAIT_NAISSANCE})


class CareRelationshipKind(enum.StrEnum):
    REGISTERED = "registered"  # patient registered in the organisation (IPP or creation there)
    ACT = "act"  # organisation involved in a telemedicine act with the patient


class Patient(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "patients"
    __table_args__ = (
        sa.Index("ix_patients_search_birth_family_birth_date", "search_birth_family", "birth_date"),
        sa.Index("ix_patients_search_used_family_birth_date", "search_used_family", "birth_date"),
        sa.Index("ix_patients_birth_date", "birth_date"),
    )

    ins_matricule: Mapped[str | None] = mapped_column(sa.String(15), unique=True)
    ins_oid: Mapped[str | None] = mapped_column(sa.String(40))
    birth_family_name: Mapped[str] = mapped_column(sa.String(100))
    birth_given_names: Mapped[str] = mapped_column(sa.String(200))
    first_given_name: Mapped[str] = mapped_column(sa.String(100))
    birth_date: Mapped[date] = mapped_column(sa.Date)
    sex: Mapped[Sex] = mapped_column(str_enum(Sex, 1))
    birth_place_insee: Mapped[str] = mapped_column(sa.String(5))
    used_family_name: Mapped[str] = mapped_column(sa.String(100), default="")
    used_given_name: Mapped[str] = mapped_column(sa.String(100), default="")
    # Folded copies (no accents, upper case) used by trait search; kept in step by the service.
    search_birth_family: Mapped[str] = mapped_column(ci_string(100))
    search_used_family: Mapped[str] = mapped_column(ci_string(100))
    search_given: Mapped[str] = mapped_column(ci_string(200))

    identity_status: Mapped[IdentityStatus] = mapped_column(
        str_enum(IdentityStatus, 20), default=IdentityStatus.PROVISOIRE
    )
    phone: Mapped[str] = mapped_column(sa.String(30), default="")
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    address_line: Mapped[str] = mapped_column(sa.String(300), default="")
    postal_code: Mapped[str] = mapped_column(sa.String(5), default="")
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    gp_professional_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))
    created_by_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    local_identifiers: Mapped[list[PatientLocalIdentifier]] = relationship(lazy="raise")

    @property
    def display_name(self) -> str:
        used = f" ({self.used_family_name})" if self.used_family_name else ""
        return f"{self.birth_family_name}{used} {self.first_given_name}"


class PatientLocalIdentifier(UUIDPrimaryKey, Timestamps, Base):
    """IPP: the patient's identifier in one organisation's own information system."""

    __tablename__ = "patient_local_identifiers"
    __table_args__ = (
        sa.UniqueConstraint("organisation_id", "value"),
        sa.UniqueConstraint("patient_id", "organisation_id"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))
    value: Mapped[str] = mapped_column(sa.String(50))


class IdentityStatusChange(UUIDPrimaryKey, Base):
    __tablename__ = "identity_status_changes"

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    from_status: Mapped[IdentityStatus | None] = mapped_column(str_enum(IdentityStatus, 20))
    to_status: Mapped[IdentityStatus] = mapped_column(str_enum(IdentityStatus, 20))
    evidence: Mapped[IdentityEvidence] = mapped_column(str_enum(IdentityEvidence, 30))
    reason: Mapped[str] = mapped_column(sa.String(500))
    changed_by_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    changed_by_name: Mapped[str] = mapped_column(sa.String(200))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)


class CareRelationship(UUIDPrimaryKey, Base):
    """Why an organisation may see a patient: registration there, or an act involving it."""

    __tablename__ = "care_relationships"
    __table_args__ = (
        sa.Index("ix_care_relationships_org_patient", "organisation_id", "patient_id"),
        # Scoped trait search, read from these two indexes alone (no table row, no patient row) up to the page
        # of 20: one narrow range per organisation, holding the sort keys and the patient (docs/performance.md).
        sa.Index(
            "ix_care_relationships_org_birth_family",
            "organisation_id",
            "search_birth_family",
            "search_given",
            "birth_date",
            "patient_id",
        ),
        sa.Index(
            "ix_care_relationships_org_used_family",
            "organisation_id",
            "search_used_family",
            "search_birth_family",
            "search_given",
            "birth_date",
            "patient_id",
        ),
        sa.UniqueConstraint("patient_id", "organisation_id", "kind", "source_ref"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"))
    kind: Mapped[CareRelationshipKind] = mapped_column(str_enum(CareRelationshipKind, 20))
    source_ref: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    # Copies of the patient's search keys, kept in step by the patients service (``care_search_keys``). The used
    # name is kept only when it differs from the birth name ("" otherwise), so the two name ranges are disjoint.
    search_birth_family: Mapped[str] = mapped_column(ci_string(100), default="", server_default="")
    search_used_family: Mapped[str] = mapped_column(ci_string(100), default="", server_default="")
    search_given: Mapped[str] = mapped_column(ci_string(200), default="", server_default="")
    birth_date: Mapped[date] = mapped_column(sa.Date)


class BreakGlassAccess(UUIDPrimaryKey, Base):
    """Emergency access outside any care relationship: mandatory reason, limited time, reviewed later."""

    __tablename__ = "break_glass_accesses"
    __table_args__ = (sa.Index("ix_break_glass_accesses_account_patient", "account_id", "patient_id"),)

    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("accounts.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    reason: Mapped[str] = mapped_column(sa.String(1000))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reviewed_by_account_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("accounts.id"))
    review_comment: Mapped[str] = mapped_column(sa.String(1000), default="")
