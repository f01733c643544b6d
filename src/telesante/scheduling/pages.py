"""HTML-side routes of the scheduling domain. For now: the calendar feed that calendar applications subscribe to
(the booking screens come with the video consultation pages)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from telesante.auth.dependencies import SessionDep
from telesante.oncall.service import professional_for_feed
from telesante.scheduling import service

router = APIRouter()


@router.get("/calendrier/rendez-vous/{token}.ics")
async def calendar_feed(session: SessionDep, token: str):
    """The doctor's teleconsultations, at the same secret address as their shifts' feed (one token per
    professional, renewed from « Mes gardes »)."""
    professional_id = await professional_for_feed(session, token[:100])
    body = await service.appointments_ics(session, professional_id)
    return Response(
        body, media_type="text/calendar; charset=utf-8", headers={"Cache-Control": "private, no-store"}
    )
