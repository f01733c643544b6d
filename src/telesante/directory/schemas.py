from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import EmailStr, Field, field_validator, model_validator

from telesante.directory.models import OrganisationType, Profession, Role, ServiceType
from telesante.kit import identifiers
from telesante.kit.schemas import InputModel, ReadModel


class OrganisationCreate(InputModel):
    finess: str = Field(min_length=9, max_length=9, description="Numéro FINESS (9 caractères, clé de Luhn)")
    name: str = Field(min_length=2, max_length=200)
    type: OrganisationType
    address_line: str = Field("", max_length=300)
    postal_code: str = Field("", pattern=r"^(\d{5})?$", description="Code postal (5 chiffres)")
    city: str = Field("", max_length=100)
    commune_insee: str = Field(min_length=5, max_length=5, description="Code INSEE de la commune (COG)")
    departement: str | None = Field(None, max_length=3)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    phone: str = Field("", max_length=30)

    @field_validator("finess")
    @classmethod
    def _finess(cls, value: str) -> str:
        value = value.upper()
        problem = identifiers.check_finess(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("commune_insee")
    @classmethod
    def _commune(cls, value: str) -> str:
        value = value.upper()
        problem = identifiers.check_commune(value)
        if problem or value.startswith("99"):
            raise ValueError(problem or "Une commune française est attendue (pas un code pays 99xxx).")
        return value

    @model_validator(mode="after")
    def _departement(self) -> OrganisationCreate:
        derived = identifiers.departement_of_commune(self.commune_insee)
        if self.departement and self.departement.upper() != derived:
            raise ValueError(
                f"Le département {self.departement} ne correspond pas à la commune {self.commune_insee}."
            )
        self.departement = derived
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("Latitude et longitude vont ensemble : renseignez les deux ou aucune.")
        return self


class OrganisationUpdate(InputModel):
    name: str | None = Field(None, min_length=2, max_length=200)
    address_line: str | None = Field(None, max_length=300)
    postal_code: str | None = Field(None, pattern=r"^(\d{5})?$")
    city: str | None = Field(None, max_length=100)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    phone: str | None = Field(None, max_length=30)
    active: bool | None = None


class ServiceCreate(InputModel):
    type: ServiceType
    name: str = Field(min_length=2, max_length=200)
    phone: str = Field("", max_length=30)


class ServiceRead(ReadModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    type: ServiceType
    name: str
    phone: str
    active: bool


class OrganisationRead(ReadModel):
    id: uuid.UUID
    finess: str
    name: str
    type: OrganisationType
    address_line: str
    postal_code: str
    city: str
    commune_insee: str
    departement: str
    latitude: float | None
    longitude: float | None
    phone: str
    active: bool
    created_at: datetime


class OrganisationDetail(OrganisationRead):
    services: list[ServiceRead]


# Professions whose members are all registered in the RPPS: the number is mandatory.
RPPS_MANDATORY = {Profession.MEDECIN, Profession.PHARMACIEN, Profession.SAGE_FEMME}


class ProfessionalCreate(InputModel):
    rpps: str | None = Field(None, description="Numéro RPPS (11 chiffres, clé de Luhn)")
    family_name: str = Field(min_length=1, max_length=100)
    given_name: str = Field(min_length=1, max_length=100)
    profession: Profession
    specialty: str = Field("", max_length=100)
    phone: str = Field("", max_length=30)
    email: EmailStr | None = None

    @field_validator("rpps")
    @classmethod
    def _rpps(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        problem = identifiers.check_rpps(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _rpps_required(self) -> ProfessionalCreate:
        if self.rpps is None and self.profession in RPPS_MANDATORY:
            raise ValueError("Le numéro RPPS est obligatoire pour cette profession.")
        return self


class ProfessionalUpdate(InputModel):
    family_name: str | None = Field(None, min_length=1, max_length=100)
    given_name: str | None = Field(None, min_length=1, max_length=100)
    specialty: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=30)
    email: EmailStr | None = None
    active: bool | None = None


class MembershipRead(ReadModel):
    id: uuid.UUID
    professional_id: uuid.UUID
    organisation_id: uuid.UUID | None
    service_id: uuid.UUID | None
    role: Role
    ended_at: datetime | None


class ProfessionalRead(ReadModel):
    id: uuid.UUID
    rpps: str | None
    idnps: str
    family_name: str
    given_name: str
    profession: Profession
    specialty: str
    phone: str
    email: str
    active: bool


class ProfessionalDetail(ProfessionalRead):
    memberships: list[MembershipRead]


class MembershipCreate(InputModel):
    professional_id: uuid.UUID
    organisation_id: uuid.UUID | None = None
    service_id: uuid.UUID | None = None
    role: Role
