from __future__ import annotations

import re
import uuid
from datetime import datetime

from pydantic import Field, model_validator

from telesante.consents.models import (
    ACT_CODES,
    DATA_PROCESSING_CODES,
    ConsentDecision,
    ConsentGiver,
    ConsentMethod,
    ConsentScopeType,
)
from telesante.kit.schemas import InputModel, ReadModel

_PROGRAMME_CODE = re.compile(r"^[a-z0-9][a-z0-9_\-]{1,59}$")


def scope_problem(scope_type: ConsentScopeType, scope_code: str) -> str | None:
    if scope_type == ConsentScopeType.ACT and scope_code not in ACT_CODES:
        return f"Acte inconnu « {scope_code} » (attendu : {', '.join(ACT_CODES)})."
    if scope_type == ConsentScopeType.DATA_PROCESSING and scope_code not in DATA_PROCESSING_CODES:
        return f"Traitement inconnu « {scope_code} » (attendu : {', '.join(DATA_PROCESSING_CODES)})."
    if scope_type == ConsentScopeType.MONITORING_PROGRAMME and not _PROGRAMME_CODE.match(scope_code):
        return "Code de programme invalide (minuscules, chiffres, tirets)."
    return None


class ConsentCreate(InputModel):
    scope_type: ConsentScopeType
    scope_code: str = Field(min_length=2, max_length=60)
    decision: ConsentDecision
    information_text_id: uuid.UUID = Field(description="Version de la notice d'information présentée")
    method: ConsentMethod = ConsentMethod.ORAL
    given_by: ConsentGiver = ConsentGiver.PATIENT
    representative_name: str = Field("", max_length=200)
    comment: str = Field("", max_length=1000)
    organisation_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _rules(self) -> ConsentCreate:
        problem = scope_problem(self.scope_type, self.scope_code)
        if problem:
            raise ValueError(problem)
        if self.given_by == ConsentGiver.TRUSTED_PERSON and self.decision == ConsentDecision.GIVEN:
            raise ValueError(
                "La personne de confiance est consultée mais ne consent pas à la place du patient (L.1111-6 CSP) : "
                "recueillez le consentement du patient ou de son représentant légal."
            )
        if self.given_by != ConsentGiver.PATIENT and len(self.representative_name) < 2:
            raise ValueError(
                "Nommez la personne qui s'exprime pour le patient (représentant légal ou de confiance)."
            )
        return self


class ConsentWithdraw(InputModel):
    reason: str = Field(min_length=3, max_length=1000)


class InformationTextCreate(InputModel):
    scope_type: ConsentScopeType
    scope_code: str = Field(min_length=2, max_length=60)
    version: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z.\-]+$")
    title: str = Field(min_length=3, max_length=200)
    body: str = Field(min_length=20, max_length=20000)

    @model_validator(mode="after")
    def _scope(self) -> InformationTextCreate:
        problem = scope_problem(self.scope_type, self.scope_code)
        if problem:
            raise ValueError(problem)
        return self


class InformationTextRead(ReadModel):
    id: uuid.UUID
    scope_type: ConsentScopeType
    scope_code: str
    version: str
    title: str
    body: str
    published_at: datetime
    retired_at: datetime | None


class ConsentRead(ReadModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    scope_type: ConsentScopeType
    scope_code: str
    decision: ConsentDecision
    information_text_id: uuid.UUID
    method: ConsentMethod
    given_by: ConsentGiver
    representative_name: str
    comment: str
    organisation_id: uuid.UUID | None
    collected_by_name: str
    collected_at: datetime
    withdrawn_at: datetime | None
    withdrawn_by_name: str
    withdrawal_reason: str


class ConsentCheck(ReadModel):
    patient_id: uuid.UUID
    scope_type: ConsentScopeType
    scope_code: str
    state: str = Field(description="given | refused | withdrawn | absent")
    allowed: bool
    consent_id: uuid.UUID | None = None
    collected_at: datetime | None = None
    message: str
