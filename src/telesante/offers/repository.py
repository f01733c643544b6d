"""Every offer query."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from telesante.kit.repository import RepositoryBase
from telesante.offers.models import ActType, Offer, OfferRequester


class OfferRepository(RepositoryBase[Offer]):
    model = Offer

    def _open_to(self, organisation_ids: frozenset[uuid.UUID]) -> sa.ColumnElement[bool]:
        listed = sa.select(OfferRequester.offer_id).where(
            OfferRequester.organisation_id.in_(organisation_ids)
        )
        return sa.or_(Offer.open_to_region.is_(True), Offer.id.in_(listed))

    async def list_requestable(
        self,
        organisation_ids: frozenset[uuid.UUID],
        *,
        act_type: ActType | None = None,
        specialty: str = "",
    ) -> list[Offer]:
        """Active offers a clinician of these organisations may request."""
        stmt = sa.select(Offer).where(Offer.active.is_(True), self._open_to(organisation_ids))
        if act_type:
            stmt = stmt.where(Offer.act_type == act_type)
        if specialty:
            stmt = stmt.where(Offer.specialty == specialty)
        return await self.all(stmt.order_by(Offer.urgent.desc(), Offer.title))

    async def may_request(self, offer_id: uuid.UUID, organisation_id: uuid.UUID) -> bool:
        return bool(
            await self.scalar(
                sa.select(sa.literal(True)).where(
                    Offer.id == offer_id, self._open_to(frozenset({organisation_id}))
                )
            )
        )

    async def list_for_organisation(self, organisation_id: uuid.UUID) -> list[Offer]:
        return await self.all(
            sa.select(Offer).where(Offer.organisation_id == organisation_id).order_by(Offer.title)
        )

    async def set_requesters(self, offer_id: uuid.UUID, organisation_ids: list[uuid.UUID]) -> None:
        await self.session.execute(sa.delete(OfferRequester).where(OfferRequester.offer_id == offer_id))
        self.session.add_all(
            OfferRequester(offer_id=offer_id, organisation_id=org) for org in dict.fromkeys(organisation_ids)
        )
        await self.session.flush()

    async def list_requesters(self, offer_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self.session.execute(
            sa.select(OfferRequester.organisation_id).where(OfferRequester.offer_id == offer_id)
        )
        return list(rows.scalars())
