from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date, datetime

from pydantic import EmailStr, Field, field_validator, model_validator

from telesante.kit import clock, identifiers
from telesante.kit.schemas import InputModel, ReadModel
from telesante.patients.models import CareRelationshipKind, IdentityEvidence, IdentityStatus, Sex

_NAME_RE = re.compile(r"^[A-Z][A-Z '\-]*$")


def ins_name(value: str) -> str:
    """Names as the INS referential writes them: capitals, no diacritics, hyphen and apostrophe kept."""
    decomposed = unicodedata.normalize("NFKD", value.replace("’", "'"))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    plain = plain.replace("Œ", "OE").replace("œ", "OE").replace("Æ", "AE").replace("æ", "AE")
    return re.sub(r"\s+", " ", plain).strip().upper()


def _check_name(value: str, label: str, max_length: int = 100) -> str:
    value = ins_name(value)
    if not value:
        raise ValueError(f"{label} : champ obligatoire.")
    if len(value) > max_length:
        raise ValueError(f"{label} : au plus {max_length} caractères.")
    if not _NAME_RE.match(value):
        raise ValueError(f"{label} : seules les lettres, espaces, traits d'union et apostrophes sont admis.")
    return value


def _check_birth_date(value: date) -> date:
    today = clock.to_paris(clock.now()).date()
    if value > today:
        raise ValueError("La date de naissance ne peut pas être dans le futur.")
    if value.year < 1880:
        raise ValueError("La date de naissance est invraisemblable (avant 1880).")
    return value


def _check_birth_place(value: str) -> str:
    from telesante.kit import communes

    value = value.upper()
    problem = identifiers.check_commune(value)
    if problem:
        raise ValueError(problem)
    if not value.startswith("99") and not communes.is_known_commune(value):
        raise ValueError(
            f"Le code INSEE {value} ne correspond à aucune commune du code officiel géographique."
        )
    return value


class PatientTraits(InputModel):
    birth_family_name: str = Field(min_length=1, max_length=100, description="Nom de naissance")
    birth_given_names: str = Field(min_length=1, max_length=200, description="Prénoms de naissance (liste)")
    first_given_name: str | None = Field(None, max_length=100, description="Premier prénom de naissance")
    birth_date: date = Field(description="Date de naissance (AAAA-MM-JJ)")
    sex: Sex
    birth_place_insee: str = Field(min_length=5, max_length=5, description="Code INSEE du lieu de naissance")

    @field_validator("birth_family_name")
    @classmethod
    def _family(cls, value: str) -> str:
        return _check_name(value, "Nom de naissance")

    @field_validator("birth_given_names")
    @classmethod
    def _given(cls, value: str) -> str:
        return _check_name(value, "Prénoms de naissance", max_length=200)

    @field_validator("first_given_name")
    @classmethod
    def _first(cls, value: str | None) -> str | None:
        return _check_name(value, "Premier prénom") if value else None

    @field_validator("birth_date")
    @classmethod
    def _birth_date(cls, value: date) -> date:
        return _check_birth_date(value)

    @field_validator("birth_place_insee")
    @classmethod
    def _birth_place(cls, value: str) -> str:
        return _check_birth_place(value)

    @model_validator(mode="after")
    def _first_given(self) -> PatientTraits:
        if not self.first_given_name:
            self.first_given_name = self.birth_given_names.split(" ")[0]
        elif not self.birth_given_names.startswith(self.first_given_name):
            raise ValueError("Le premier prénom doit être le premier de la liste des prénoms de naissance.")
        return self


class PatientContact(InputModel):
    used_family_name: str = Field("", max_length=100, description="Nom utilisé")
    used_given_name: str = Field("", max_length=100, description="Prénom utilisé")
    phone: str = Field("", max_length=30, pattern=r"^[0-9 +().\-]*$")
    email: EmailStr | None = None
    address_line: str = Field("", max_length=300)
    postal_code: str = Field("", pattern=r"^(\d{5})?$")
    city: str = Field("", max_length=100)
    gp_professional_id: uuid.UUID | None = Field(None, description="Médecin traitant (annuaire)")

    @field_validator("used_family_name", "used_given_name")
    @classmethod
    def _used(cls, value: str) -> str:
        return _check_name(value, "Nom ou prénom utilisé") if value else ""


class PatientCreate(PatientTraits, PatientContact):
    organisation_id: uuid.UUID | None = Field(
        None, description="Établissement d'enregistrement (par défaut le seul de l'utilisateur)"
    )
    ipp: str | None = Field(None, max_length=50, pattern=r"^[A-Za-z0-9\-_.]+$", description="IPP local")
    ins_matricule: str | None = Field(None, description="Matricule INS (NIR ou NIA, 15 caractères)")
    ins_oid: str | None = Field(None, description="OID de l'autorité d'affectation du matricule INS")
    confirm_duplicate: bool = Field(False, description="Créer malgré un doublon probable signalé")

    @field_validator("ins_matricule")
    @classmethod
    def _ins(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.replace(" ", "").upper()
        problem = identifiers.check_nir(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _ins_consistency(self) -> PatientCreate:
        if self.ins_matricule:
            self.ins_oid = self.ins_oid or identifiers.OID_INS_NIR
            if self.ins_oid not in identifiers.INS_OIDS:
                raise ValueError("OID du matricule INS inconnu.")
            problem = identifiers.check_nir_against_traits(self.ins_matricule, self.sex, self.birth_date)
            if problem:
                raise ValueError(problem)
        elif self.ins_oid:
            raise ValueError("Un OID INS sans matricule INS n'a pas de sens.")
        return self


class PatientUpdate(PatientContact):
    pass


class TraitsCorrection(PatientTraits):
    reason: str = Field(min_length=3, max_length=500, description="Motif de la correction")


class IdentityStatusChangeCreate(InputModel):
    status: IdentityStatus
    evidence: IdentityEvidence
    reason: str = Field(min_length=3, max_length=500)
    ins_matricule: str | None = Field(None, description="Matricule INS retourné par INSi")
    ins_oid: str | None = None

    @field_validator("ins_matricule")
    @classmethod
    def _ins(cls, value: str | None) -> str | None:
        if not value:
            return None
        value = value.replace(" ", "").upper()
        problem = identifiers.check_nir(value)
        if problem:
            raise ValueError(problem)
        return value


class LocalIdentifierCreate(InputModel):
    organisation_id: uuid.UUID
    value: str = Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9\-_.]+$")


class BreakGlassCreate(InputModel):
    reason: str = Field(
        min_length=15, max_length=1000, description="Motif de l'accès d'urgence (obligatoire)"
    )
    ins_matricule: str | None = None
    birth_family_name: str | None = Field(None, max_length=100)
    first_given_name: str | None = Field(None, max_length=100)
    birth_date: date | None = None

    @field_validator("birth_family_name", "first_given_name")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return _check_name(value, "Nom ou prénom") if value else None

    @model_validator(mode="after")
    def _criteria(self) -> BreakGlassCreate:
        if self.ins_matricule:
            self.ins_matricule = self.ins_matricule.replace(" ", "").upper()
            problem = identifiers.check_nir(self.ins_matricule)
            if problem:
                raise ValueError(problem)
        elif not (self.birth_family_name and self.first_given_name and self.birth_date):
            raise ValueError(
                "Identifiez le patient par son matricule INS, ou par nom de naissance, premier prénom et date de naissance."
            )
        return self


class BreakGlassReview(InputModel):
    comment: str = Field(min_length=3, max_length=1000)


class LocalIdentifierRead(ReadModel):
    organisation_id: uuid.UUID
    value: str


class PatientRead(ReadModel):
    id: uuid.UUID
    ins_matricule: str | None
    ins_oid: str | None
    birth_family_name: str
    birth_given_names: str
    first_given_name: str
    birth_date: date
    sex: Sex
    birth_place_insee: str
    used_family_name: str
    used_given_name: str
    identity_status: IdentityStatus
    phone: str
    email: str
    address_line: str
    postal_code: str
    city: str
    gp_professional_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class PatientDetail(PatientRead):
    local_identifiers: list[LocalIdentifierRead]
    via_break_glass: bool = False


class ProbableDuplicate(ReadModel):
    id: uuid.UUID | None = Field(None, description="Absent si le patient n'est pas dans votre périmètre")
    display: str


class PatientCreated(ReadModel):
    patient: PatientRead
    warnings: list[str] = []


class IdentityStatusChangeRead(ReadModel):
    id: uuid.UUID
    from_status: IdentityStatus | None
    to_status: IdentityStatus
    evidence: IdentityEvidence
    reason: str
    changed_by_name: str
    changed_at: datetime


class CareRelationshipRead(ReadModel):
    organisation_id: uuid.UUID
    kind: CareRelationshipKind
    source_ref: str
    created_at: datetime


class BreakGlassRead(ReadModel):
    id: uuid.UUID
    account_id: uuid.UUID
    patient_id: uuid.UUID
    reason: str
    granted_at: datetime
    expires_at: datetime
    reviewed_at: datetime | None
    review_comment: str


class AccessLogEntry(ReadModel):
    seq: int
    occurred_at: datetime
    actor: str
    roles: str
    organisations: str
    action: str
    object_type: str
    channel: str
    break_glass: bool
