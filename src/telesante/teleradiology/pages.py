"""Teleradiology pages: the federation worklist (refreshed every 30 s) and the justification form of a request."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.kit.schemas import parse_input
from telesante.teleradiology import service
from telesante.teleradiology.models import JUSTIFICATION_LABELS
from telesante.teleradiology.schemas import JustificationCreate
from telesante.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/teleradiologie")
async def worklist_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
):
    items = await service.worklist(session, principal, settings)
    response = render(
        request,
        "teleradiology/worklist.html",
        {
            "items": items,
            "PHASE_LABELS": service.PHASE_LABELS,
            "PRIORITY_LABELS": service.PRIORITY_LABELS,
            "JUSTIFICATION_LABELS": JUSTIFICATION_LABELS,
        },
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/demandes/{request_id}/justification")
async def justify_page(request: Request, session: SessionDep, principal: PrincipalDep, request_id: uuid.UUID):
    from telesante.requests.pages import act

    submitted = await request.form()

    async def action():
        data = parse_input(
            JustificationCreate,
            {key: submitted.get(key, "") for key in ("decision", "protocol", "comment")},
        )
        await service.justify_exam(session, principal, request_id, data)

    return await act(request, session, principal, request_id, action)
