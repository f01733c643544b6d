"""Every query of the video domain."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from telesante.auth.principal import Principal
from telesante.kit.repository import RepositoryBase
from telesante.requests.models import TeleRequest
from telesante.requests.repository import RequestRepository
from telesante.video.models import CallEvent, CallMessage, GuestLink, VideoRoom


class RoomRepository(RepositoryBase[VideoRoom]):
    model = VideoRoom

    async def get_visible(self, principal: Principal, room_id: uuid.UUID) -> VideoRoom | None:
        """The one access rule for professionals: clinicians of the patient's side or of the doctor's side; for the
        room of an act without appointment (a stroke alert), also whoever may see that act (the on-call
        professional paged from another organisation)."""
        organisations = principal.clinical_organisation_ids
        requests = RequestRepository(self.session)
        return await self.scalar(
            sa.select(VideoRoom).where(
                VideoRoom.id == room_id,
                sa.or_(
                    VideoRoom.organisation_id.in_(organisations),
                    VideoRoom.expert_organisation_id.in_(organisations),
                    VideoRoom.request_id.in_(sa.select(TeleRequest.id).where(requests.visible(principal))),
                ),
            )
        )

    async def for_request(self, request_id: uuid.UUID) -> VideoRoom | None:
        return await self.scalar(sa.select(VideoRoom).where(VideoRoom.request_id == request_id))

    async def for_appointment(self, appointment_id: uuid.UUID) -> VideoRoom | None:
        return await self.scalar(sa.select(VideoRoom).where(VideoRoom.appointment_id == appointment_id))


class GuestLinkRepository(RepositoryBase[GuestLink]):
    model = GuestLink

    async def by_token_hash(self, token_hash: str) -> GuestLink | None:
        return await self.scalar(sa.select(GuestLink).where(GuestLink.token_hash == token_hash))

    async def for_room(self, room_id: uuid.UUID) -> list[GuestLink]:
        return await self.all(
            sa.select(GuestLink).where(GuestLink.room_id == room_id).order_by(GuestLink.created_at)
        )


class CallEventRepository(RepositoryBase[CallEvent]):
    model = CallEvent

    async def for_room(self, room_id: uuid.UUID) -> list[CallEvent]:
        return await self.all(
            sa.select(CallEvent).where(CallEvent.room_id == room_id).order_by(CallEvent.at, CallEvent.id)
        )


class CallMessageRepository(RepositoryBase[CallMessage]):
    model = CallMessage

    async def for_room(self, room_id: uuid.UUID) -> list[CallMessage]:
        return await self.all(
            sa.select(CallMessage)
            .where(CallMessage.room_id == room_id)
            .order_by(CallMessage.at, CallMessage.id)
        )
