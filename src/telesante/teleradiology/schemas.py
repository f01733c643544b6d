from __future__ import annotations

from pydantic import Field

from telesante.kit.schemas import InputModel
from telesante.teleradiology.models import JustificationDecision


class JustificationCreate(InputModel):
    decision: JustificationDecision = Field(description="justifie, modifie ou non_justifie")
    protocol: str = Field(
        "", max_length=4000, description="Protocole d'acquisition (requis si l'examen est justifié)"
    )
    comment: str = Field("", max_length=4000, description="Commentaire (requis si modifié ou non justifié)")
