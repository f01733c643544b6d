from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, Field, ValidationInfo, field_validator, model_validator

from telesante.kit.schemas import InputModel, ReadModel
from telesante.patients.models import Sex
from telesante.stroke.models import (
    CaseStatus,
    Disposition,
    Milestone,
    NihssRole,
    TransportMode,
)

REASON_MIN = 15  # a written reason, not a word

GlucoseUnit = Literal["mmol/L", "g/L"]  # UCUM codes, as in the FHIR Observation
# 1 g/L of glucose is 1000 / 180.16 (its molar mass, g/mol) = 5.5506 mmol/L, taken to four figures.
GLUCOSE_MMOL_PER_G = 5.551
GLUCOSE_MIN_MMOL, GLUCOSE_MAX_MMOL = 0.5, 60.0


def glucose_in_mmol(value: float, unit: GlucoseUnit) -> float:
    """A glycaemia in mmol/L, the unit stored and compared with the thresholds; from g/L rounded to 0.1 mmol/L."""
    return round(value * GLUCOSE_MMOL_PER_G, 1) if unit == "g/L" else value


class ProvisionalIdentity(InputModel):
    """A patient not yet registered here: a provisional identity, reconciled later by identity vigilance."""

    birth_family_name: str = Field(min_length=1, max_length=100, description="Nom (de naissance si connu)")
    birth_given_names: str = Field(min_length=1, max_length=200, description="Prénom(s)")
    birth_date: date = Field(description="Date de naissance, estimée si inconnue (AAAA-MM-JJ)")
    sex: Sex


def accession_number(value: str) -> str:
    """A DICOM Short String (AccessionNumber, VR SH): at most 16 characters, no backslash nor control character;
    compared as the scanner sends it (spaces around dropped)."""
    value = value.strip()
    if any(c == "\\" or ord(c) < 32 for c in value):
        raise ValueError(
            "caractère interdit dans un n° d'examen (barre oblique inverse ou caractère de contrôle)"
        )
    return value


class AlertCreate(InputModel):
    patient_id: uuid.UUID | None = Field(None, description="Patient déjà enregistré")
    provisional_identity: ProvisionalIdentity | None = Field(
        None, description="Sinon : identité provisoire, rapprochée plus tard"
    )
    offer_id: uuid.UUID | None = Field(
        None, description="Filière TéléAVC (obligatoire s'il y en a plusieurs)"
    )
    organisation_id: uuid.UUID | None = Field(None, description="Établissement des urgences, si plusieurs")
    onset_known: bool = Field(description="Heure de début connue (faux : inconnue ou AVC du réveil)")
    last_known_well_at: AwareDatetime | None = Field(
        None, description="Début des symptômes, ou dernier moment vu normal si le début est inconnu"
    )
    onset_note: str = Field("", max_length=300, description="Précision (ex. : réveil avec le déficit)")
    arrival_at: AwareDatetime | None = Field(
        None, description="Arrivée aux urgences (par défaut : maintenant)"
    )
    callback_phone: str = Field(min_length=4, max_length=30, description="Numéro où rappeler l'urgentiste")
    accession_number: str = Field(
        "",
        max_length=16,
        description="N° d'examen du scanner (accession number du RIS), s'il est connu",
    )

    @field_validator("accession_number")
    @classmethod
    def _accession(cls, value: str) -> str:
        return accession_number(value)

    summary: str = Field("", max_length=2000, description="Éléments cliniques")

    @model_validator(mode="after")
    def _coherent(self) -> AlertCreate:
        if (self.patient_id is None) == (self.provisional_identity is None):
            raise ValueError(
                "Indiquez le patient enregistré, ou bien une identité provisoire (pas les deux)."
            )
        if self.onset_known and self.last_known_well_at is None:
            raise ValueError(
                "Heure de début des symptômes requise (ou cochez « début inconnu / AVC du réveil »)."
            )
        return self

    @field_validator("callback_phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        digits = [c for c in value if c.isdigit()]
        if len(digits) < 4 or any(c not in "0123456789 +.-()" for c in value):
            raise ValueError("Numéro de rappel invalide : chiffres, espaces, + . - ( ) seulement.")
        return value


class MilestoneStamp(InputModel):
    kind: Milestone
    at: AwareDatetime | None = Field(
        None, description="Heure corrigée (par défaut : maintenant, heure du serveur)"
    )
    correction_reason: str = Field(
        "", max_length=300, description="Motif, obligatoire avec une heure corrigée"
    )


class NihssCreate(InputModel):
    items: dict[str, Any] = Field(
        description="Les 15 items du NIHSS (1a … 11) : entier, ou « UN » si non testable"
    )


class MeasuresUpdate(InputModel):
    systolic: int | None = Field(None, ge=40, le=300, description="Pression artérielle systolique (mmHg)")
    diastolic: int | None = Field(None, ge=20, le=200, description="Pression artérielle diastolique (mmHg)")
    glucose_mmol: float | None = Field(
        None, ge=GLUCOSE_MIN_MMOL, le=GLUCOSE_MAX_MMOL, description="Glycémie (mmol/L)"
    )
    # Or the glycaemia as the lab or the meter gives it, converted to glucose_mmol here (neither is stored as such).
    glucose_unit: GlucoseUnit = Field(
        "mmol/L", exclude=True, description="Unité de « glucose » : mmol/L (par défaut) ou g/L"
    )
    glucose: float | None = Field(
        None, exclude=True, description="Glycémie dans l'unité « glucose_unit », au lieu de glucose_mmol"
    )
    platelets: int | None = Field(None, ge=1_000, le=2_000_000, description="Plaquettes (/mm³)")
    inr: float | None = Field(None, ge=0.5, le=15, description="INR")
    weight_kg: float | None = Field(None, ge=20, le=350, description="Poids (kg)")
    anticoagulant: str | None = Field(None, description="Traitement anticoagulant (code)")
    last_anticoagulant_at: AwareDatetime | None = Field(None, description="Dernière prise d'anticoagulant")

    @field_validator("glucose_unit")
    @classmethod
    def _unit_of_glucose(cls, value: GlucoseUnit, info: ValidationInfo) -> GlucoseUnit:
        if value != "mmol/L" and info.data.get("glucose_mmol") is not None:
            raise ValueError("unité de « glucose » seulement (glucose_mmol est toujours en mmol/L)")
        return value

    @field_validator("glucose")
    @classmethod
    def _glucose(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is None or "glucose_unit" not in info.data:  # a bad unit is reported on its own
            return value
        if info.data.get("glucose_mmol") is not None:
            raise ValueError("glycémie donnée deux fois : « glucose » ou « glucose_mmol », pas les deux")
        if not GLUCOSE_MIN_MMOL <= glucose_in_mmol(value, info.data["glucose_unit"]) <= GLUCOSE_MAX_MMOL:
            low, high = (f"{x:g}".replace(".", ",") for x in (GLUCOSE_MIN_MMOL, GLUCOSE_MAX_MMOL))
            low_g, high_g = (
                f"{x / GLUCOSE_MMOL_PER_G:.2f}".replace(".", ",")
                for x in (GLUCOSE_MIN_MMOL, GLUCOSE_MAX_MMOL)
            )
            raise ValueError(
                f"glycémie attendue entre {low} et {high} mmol/L (environ {low_g} à {high_g} g/L)"
            )
        return value

    @model_validator(mode="after")
    def _glucose_in_mmol(self) -> MeasuresUpdate:
        if self.glucose is not None:
            self.glucose_mmol = glucose_in_mmol(self.glucose, self.glucose_unit)
        return self

    @model_validator(mode="after")
    def _pressure(self) -> MeasuresUpdate:
        if (self.systolic is None) != (self.diastolic is None):
            raise ValueError("Pression artérielle : systolique et diastolique ensemble.")
        if self.systolic is not None and self.diastolic is not None and self.diastolic >= self.systolic:
            raise ValueError("Pression artérielle : la diastolique doit être inférieure à la systolique.")
        return self


class ImagingExpected(InputModel):
    accession_number: str = Field(
        max_length=16,
        description="N° d'examen du scanner (accession number du RIS) ; vide pour l'effacer",
    )

    @field_validator("accession_number")
    @classmethod
    def _accession(cls, value: str) -> str:
        return accession_number(value)


class ChecklistUpdate(InputModel):
    answers: dict[str, str] = Field(description="Code de la contre-indication → oui / non / inconnu")


class DecisionCreate(InputModel):
    disposition: Disposition
    reasons: str = Field("", max_length=2000, description="Motifs de la décision")
    agent: str = Field("", description="Thrombolytique : alteplase ou tenecteplase")
    override_reason: str = Field(
        "", max_length=1000, description="Thrombolyse malgré une contre-indication : motif écrit"
    )
    thrombectomy: bool = Field(False, description="Thrombectomie indiquée")
    receiving_organisation_id: uuid.UUID | None = Field(None, description="Centre receveur (thrombectomie)")
    transport_mode: TransportMode | None = None


class CaseRead(ReadModel):
    id: uuid.UUID
    request_id: uuid.UUID
    patient_id: uuid.UUID
    organisation_id: uuid.UUID
    expert_organisation_id: uuid.UUID
    status: CaseStatus
    onset_known: bool
    last_known_well_at: datetime | None
    onset_note: str
    arrival_at: datetime
    alert_at: datetime
    callback_phone: str
    created_by_name: str
    neurologist_name: str
    systolic: int | None
    diastolic: int | None
    glucose_mmol: float | None
    platelets: int | None
    inr: float | None
    weight_kg: float | None
    anticoagulant: str | None
    last_anticoagulant_at: datetime | None
    checklist: dict[str, Any]
    disposition: Disposition | None
    decision_reasons: str
    override_reason: str
    overridden_items: list[str]
    agent: str
    dose_mg: float | None
    bolus_mg: float | None
    infusion_mg: float | None
    dose_text: str
    thrombectomy: bool | None
    receiving_organisation_id: uuid.UUID | None
    transport_mode: TransportMode | None
    decided_at: datetime | None
    decided_by_name: str


class MilestoneRead(ReadModel):
    kind: Milestone
    at: datetime
    recorded_at: datetime
    recorded_by_name: str
    correction_reason: str


class NihssRead(ReadModel):
    id: uuid.UUID
    role: NihssRole
    items: dict[str, Any]
    total: int
    assessed_at: datetime
    assessed_by_name: str
