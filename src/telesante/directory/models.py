"""Directory: organisations, their services, professionals and memberships (with roles)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telesante.kit.models import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, str_enum


class OrganisationType(enum.StrEnum):
    CHU = "chu"
    CH = "ch"
    CLINIQUE = "clinique"
    EHPAD = "ehpad"
    PHARMACIE = "pharmacie"
    MSP = "msp"
    CENTRE_SANTE = "centre_sante"
    SAMU = "samu"
    CABINET = "cabinet"


ORGANISATION_TYPE_LABELS = {
    OrganisationType.CHU: "Centre hospitalier universitaire",
    OrganisationType.CH: "Centre hospitalier",
    OrganisationType.CLINIQUE: "Clinique",
    OrganisationType.EHPAD: "EHPAD",
    OrganisationType.PHARMACIE: "Pharmacie d'officine",
    OrganisationType.MSP: "Maison de santé pluriprofessionnelle",
    OrganisationType.CENTRE_SANTE: "Centre de santé",
    OrganisationType.SAMU: "SAMU – Centre 15",
    OrganisationType.CABINET: "Cabinet libéral",
}


class ServiceType(enum.StrEnum):
    URGENCES = "urgences"
    NEUROLOGIE = "neurologie"
    UNV = "unv"
    NEUROCHIRURGIE = "neurochirurgie"
    RADIOLOGIE = "radiologie"
    GERIATRIE = "geriatrie"
    CARDIOLOGIE = "cardiologie"
    REANIMATION = "reanimation"
    MEDECINE_POLYVALENTE = "medecine_polyvalente"
    PEDIATRIE = "pediatrie"
    DERMATOLOGIE = "dermatologie"
    PSYCHIATRIE = "psychiatrie"
    REGULATION = "regulation"
    SOINS_EHPAD = "soins_ehpad"
    OFFICINE = "officine"
    SOINS_PRIMAIRES = "soins_primaires"
    CABINE_TELECONSULTATION = "cabine_teleconsultation"
    TELESURVEILLANCE = "telesurveillance"


SERVICE_TYPE_LABELS = {
    ServiceType.URGENCES: "Urgences",
    ServiceType.NEUROLOGIE: "Neurologie",
    ServiceType.UNV: "Unité neurovasculaire (UNV)",
    ServiceType.NEUROCHIRURGIE: "Neurochirurgie",
    ServiceType.RADIOLOGIE: "Radiologie / imagerie",
    ServiceType.GERIATRIE: "Gériatrie",
    ServiceType.CARDIOLOGIE: "Cardiologie",
    ServiceType.REANIMATION: "Réanimation",
    ServiceType.MEDECINE_POLYVALENTE: "Médecine polyvalente",
    ServiceType.PEDIATRIE: "Pédiatrie",
    ServiceType.DERMATOLOGIE: "Dermatologie",
    ServiceType.PSYCHIATRIE: "Psychiatrie",
    ServiceType.REGULATION: "Régulation médicale (Centre 15)",
    ServiceType.SOINS_EHPAD: "Soins (EHPAD)",
    ServiceType.OFFICINE: "Officine",
    ServiceType.SOINS_PRIMAIRES: "Soins primaires",
    ServiceType.CABINE_TELECONSULTATION: "Cabine de téléconsultation",
    ServiceType.TELESURVEILLANCE: "Télésurveillance",
}


class Profession(enum.StrEnum):
    MEDECIN = "medecin"
    INFIRMIER = "infirmier"
    PHARMACIEN = "pharmacien"
    SAGE_FEMME = "sage_femme"
    MANIPULATEUR_RADIO = "manipulateur_radio"
    MASSEUR_KINE = "masseur_kine"
    AIDE_SOIGNANT = "aide_soignant"
    ASSISTANT_REGULATION = "assistant_regulation"
    ADMINISTRATIF = "administratif"


PROFESSION_LABELS = {
    Profession.MEDECIN: "Médecin",
    Profession.INFIRMIER: "Infirmier / infirmière",
    Profession.PHARMACIEN: "Pharmacien / pharmacienne",
    Profession.SAGE_FEMME: "Sage-femme",
    Profession.MANIPULATEUR_RADIO: "Manipulateur en électroradiologie",
    Profession.MASSEUR_KINE: "Masseur-kinésithérapeute",
    Profession.AIDE_SOIGNANT: "Aide-soignant(e)",
    Profession.ASSISTANT_REGULATION: "Assistant(e) de régulation médicale",
    Profession.ADMINISTRATIF: "Personnel administratif",
}

# Professions registered in the RPPS (the others have no RPPS number).
RPPS_PROFESSIONS = {
    Profession.MEDECIN,
    Profession.INFIRMIER,
    Profession.PHARMACIEN,
    Profession.SAGE_FEMME,
    Profession.MANIPULATEUR_RADIO,
    Profession.MASSEUR_KINE,
}


class Role(enum.StrEnum):
    REGIONAL_ADMIN = "regional_admin"
    ORG_ADMIN = "org_admin"
    REQUESTER = "requester"
    EXPERT = "expert"
    ASSISTANT = "assistant"
    SAMU_REGULATOR = "samu_regulator"
    MONITORING_OPERATOR = "monitoring_operator"
    EVALUATOR = "evaluator"
    MEDICAL_SECRETARY = "medical_secretary"


ROLE_LABELS = {
    Role.REGIONAL_ADMIN: "Administrateur régional",
    Role.ORG_ADMIN: "Administrateur d'établissement",
    Role.REQUESTER: "Professionnel requérant",
    Role.EXPERT: "Expert requis",
    Role.ASSISTANT: "Professionnel accompagnant (infirmier, pharmacien)",
    Role.SAMU_REGULATOR: "Régulateur SAMU",
    Role.MONITORING_OPERATOR: "Opérateur de télésurveillance",
    Role.EVALUATOR: "Évaluateur (statistiques agrégées)",
    Role.MEDICAL_SECRETARY: "Secrétariat médical",
}

# Roles that give access to patient data (through a care relationship of the organisation).
CLINICAL_ROLES = frozenset(
    {Role.REQUESTER, Role.EXPERT, Role.ASSISTANT, Role.SAMU_REGULATOR, Role.MONITORING_OPERATOR}
)
# Roles that see patients' identity and agenda in their organisation, never clinical content (requests, reports,
# consents, images, calls): the medical secretariat books and moves appointments for the organisation's doctors.
SECRETARIAT_ROLES = frozenset({Role.MEDICAL_SECRETARY})
ADMIN_ROLES = frozenset({Role.REGIONAL_ADMIN, Role.ORG_ADMIN})
# Roles held region-wide, without an organisation.
REGIONAL_ROLES = frozenset({Role.REGIONAL_ADMIN, Role.EVALUATOR})


class Organisation(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "organisations"

    finess: Mapped[str] = mapped_column(sa.String(9), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    type: Mapped[OrganisationType] = mapped_column(str_enum(OrganisationType, 20))
    address_line: Mapped[str] = mapped_column(sa.String(300), default="")
    postal_code: Mapped[str] = mapped_column(sa.String(5), default="")
    city: Mapped[str] = mapped_column(sa.String(100), default="")
    commune_insee: Mapped[str] = mapped_column(sa.String(5))
    departement: Mapped[str] = mapped_column(sa.String(3), index=True)
    latitude: Mapped[float | None] = mapped_column(sa.Float)
    longitude: Mapped[float | None] = mapped_column(sa.Float)
    phone: Mapped[str] = mapped_column(sa.String(30), default="")
    active: Mapped[bool] = mapped_column(default=True)

    services: Mapped[list[OrganisationService]] = relationship(
        back_populates="organisation", lazy="raise", order_by="OrganisationService.name"
    )


class OrganisationService(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "organisation_services"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "name"),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    type: Mapped[ServiceType] = mapped_column(str_enum(ServiceType, 30))
    name: Mapped[str] = mapped_column(sa.String(200))
    phone: Mapped[str] = mapped_column(sa.String(30), default="")
    active: Mapped[bool] = mapped_column(default=True)

    organisation: Mapped[Organisation] = relationship(back_populates="services", lazy="raise")


class Professional(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "professionals"

    rpps: Mapped[str | None] = mapped_column(sa.String(11), unique=True)
    idnps: Mapped[str] = mapped_column(sa.String(20), unique=True)
    family_name: Mapped[str] = mapped_column(sa.String(100))
    given_name: Mapped[str] = mapped_column(sa.String(100))
    profession: Mapped[Profession] = mapped_column(str_enum(Profession, 30))
    specialty: Mapped[str] = mapped_column(sa.String(100), default="")
    phone: Mapped[str] = mapped_column(sa.String(30), default="")
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    active: Mapped[bool] = mapped_column(default=True)

    memberships: Mapped[list[Membership]] = relationship(back_populates="professional", lazy="raise")

    @property
    def display_name(self) -> str:
        title = "Dr " if self.profession == Profession.MEDECIN else ""
        return f"{title}{self.given_name} {self.family_name}"


class Membership(UUIDPrimaryKey, Timestamps, Base):
    """A professional's role in an organisation (or region-wide for REGIONAL_ROLES)."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint("professional_id", "organisation_id", "service_id", "role"),
        sa.CheckConstraint(
            "organisation_id IS NOT NULL OR role IN ('regional_admin', 'evaluator')", name="org_required"
        ),
    )

    professional_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("professionals.id"), index=True)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    service_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("organisation_services.id"))
    role: Mapped[Role] = mapped_column(str_enum(Role, 30))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    professional: Mapped[Professional] = relationship(back_populates="memberships", lazy="raise")
    organisation: Mapped[Organisation | None] = relationship(lazy="raise")
    service: Mapped[OrganisationService | None] = relationship(lazy="raise")
