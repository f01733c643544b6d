"""What an organisation's service answers at a distance: the offers a requester chooses from."""

from __future__ import annotations

import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from telesante.kit.models import Base, Timestamps, UUIDPrimaryKey, str_enum


class ActType(enum.StrEnum):
    """Acts of CSP R.6316-1 that a request can carry, plus télésoin (L.6316-2); values are the consent codes."""

    TELEEXPERTISE = "teleexpertise"
    TELECONSULTATION = "teleconsultation"
    TELEASSISTANCE = "teleassistance"
    TELESOIN = "telesoin"


ACT_TYPE_LABELS = {
    ActType.TELEEXPERTISE: "Téléexpertise",
    ActType.TELECONSULTATION: "Téléconsultation",
    ActType.TELEASSISTANCE: "Téléassistance médicale",
    ActType.TELESOIN: "Télésoin",
}


class Routing(enum.StrEnum):
    NAMED_EXPERT = "named_expert"  # one named professional answers
    POOL = "pool"  # any expert of the service (the first to accept)
    ON_CALL = "on_call"  # whoever is on duty in the offer's rota, paged with escalation


ROUTING_LABELS = {
    Routing.NAMED_EXPERT: "Expert nommé",
    Routing.POOL: "Équipe du service (le premier disponible)",
    Routing.ON_CALL: "Médecin de garde (astreinte)",
}


class Offer(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "offers"
    __table_args__ = (
        sa.CheckConstraint(
            "routing != 'named_expert' OR expert_professional_id IS NOT NULL", name="named_expert_set"
        ),
        sa.CheckConstraint("routing != 'on_call' OR rota_id IS NOT NULL", name="rota_set"),
        sa.CheckConstraint("response_minutes > 0", name="response_minutes_positive"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    service_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("organisation_services.id"))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.String(2000), default="")
    act_type: Mapped[ActType] = mapped_column(str_enum(ActType, 20))
    specialty: Mapped[str] = mapped_column(sa.String(100), default="")
    form_code: Mapped[str] = mapped_column(sa.String(50))
    routing: Mapped[Routing] = mapped_column(str_enum(Routing, 20))
    expert_professional_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("professionals.id"))
    rota_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("oncall_rotas.id"))
    response_minutes: Mapped[int] = mapped_column()
    urgent: Mapped[bool] = mapped_column(default=False)
    ack_minutes: Mapped[int | None] = (
        mapped_column()
    )  # on-call paging: escalate when not acknowledged in time
    open_to_region: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True)


class OfferRequester(Base):
    """When an offer is not open to the whole region: the organisations whose clinicians may request it."""

    __tablename__ = "offer_requesters"

    offer_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("offers.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("organisations.id"), primary_key=True)
