from __future__ import annotations

import uuid

from pydantic import Field, model_validator

from telesante.kit.schemas import InputModel, ReadModel
from telesante.offers.models import ActType, Routing


class OfferCreate(InputModel):
    organisation_id: uuid.UUID
    service_id: uuid.UUID | None = None
    title: str = Field(min_length=3, max_length=200, description="Ex. « Avis neurochirurgical 24/7 »")
    description: str = Field("", max_length=2000)
    act_type: ActType
    specialty: str = Field("", max_length=100)
    form_code: str = Field(
        min_length=2, max_length=50, description="Formulaire (code), dernière version utilisée"
    )
    routing: Routing
    expert_professional_id: uuid.UUID | None = None
    rota_id: uuid.UUID | None = None
    response_minutes: int = Field(ge=5, le=60 * 24 * 30, description="Délai de réponse attendu, en minutes")
    urgent: bool = False
    ack_minutes: int | None = Field(None, ge=1, le=120, description="Astreinte : délai d'acquittement")
    open_to_region: bool = True
    requester_organisation_ids: list[uuid.UUID] = Field(default_factory=list, max_length=200)

    @model_validator(mode="after")
    def _routing(self) -> OfferCreate:
        if self.routing == Routing.NAMED_EXPERT and self.expert_professional_id is None:
            raise ValueError("Un expert nommé est requis pour ce mode d'orientation.")
        if self.routing == Routing.ON_CALL and self.rota_id is None:
            raise ValueError("Une liste de garde (astreinte) est requise pour ce mode d'orientation.")
        if not self.open_to_region and not self.requester_organisation_ids:
            raise ValueError("Indiquez les établissements autorisés à solliciter cette offre.")
        return self


class OfferUpdate(InputModel):
    title: str | None = Field(None, min_length=3, max_length=200)
    description: str | None = Field(None, max_length=2000)
    response_minutes: int | None = Field(None, ge=5, le=60 * 24 * 30)
    ack_minutes: int | None = Field(None, ge=1, le=120)
    active: bool | None = None


class OfferRead(ReadModel):
    id: uuid.UUID
    organisation_id: uuid.UUID
    service_id: uuid.UUID | None
    title: str
    description: str
    act_type: ActType
    specialty: str
    form_code: str
    routing: Routing
    expert_professional_id: uuid.UUID | None
    rota_id: uuid.UUID | None
    response_minutes: int
    urgent: bool
    ack_minutes: int | None
    open_to_region: bool
    active: bool
