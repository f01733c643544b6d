"""Set-up helpers for on-call tests, through the real services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.directory.models import Organisation, Role
from telesante.kit import clock
from telesante.oncall import service
from telesante.oncall.models import Rota, Shift, ShiftRole
from telesante.oncall.schemas import RotaCreate, ShiftCreate
from tests.factories import Actor, make_actor, make_organisation

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)  # a Tuesday


def at(value: datetime) -> None:
    clock.set_clock(lambda: value)


@dataclass
class World:
    organisation: Organisation
    admin: Actor
    head: Actor
    alice: Actor  # neurologists of the organisation
    bruno: Actor
    chloe: Actor
    elsewhere: Actor  # a professional of another organisation
    outsider: Actor  # an account without any membership in a rota organisation (regional evaluator)
    rota: Rota
    rota_id: uuid.UUID = None  # plain ids survive the expiry of ORM objects after a request
    organisation_id: uuid.UUID = None


async def make_world(session: AsyncSession, *, ack_minutes: int = 5) -> World:
    organisation = await make_organisation(session, "CHU Rennes")
    other = await make_organisation(session, "CH Vannes")
    admin = await make_actor(session, organisation, Role.ORG_ADMIN)
    head = await make_actor(session, organisation, Role.EXPERT)
    alice = await make_actor(session, organisation, Role.EXPERT)
    bruno = await make_actor(session, organisation, Role.EXPERT)
    chloe = await make_actor(session, organisation, Role.EXPERT)
    elsewhere = await make_actor(session, other, Role.EXPERT)
    outsider = await make_actor(session, None, Role.EVALUATOR)
    rota = await service.create_rota(
        session,
        admin.principal,
        RotaCreate(
            name="Astreinte neurovasculaire",
            organisation_id=organisation.id,
            head_professional_id=head.professional.id,
            ack_minutes=ack_minutes,
        ),
    )
    return World(
        organisation, admin, head, alice, bruno, chloe, elsewhere, outsider, rota, rota.id, organisation.id
    )


async def shift(
    session: AsyncSession,
    world: World,
    who: Actor,
    starts_at: datetime,
    ends_at: datetime,
    role: ShiftRole = ShiftRole.PRIMARY,
) -> Shift:
    return await service.add_shift(
        session,
        world.admin.principal,
        world.rota.id,
        ShiftCreate(professional_id=who.professional.id, role=role, starts_at=starts_at, ends_at=ends_at),
    )
