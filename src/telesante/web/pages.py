"""Home page, adapted to the roles of the person signed in."""

from __future__ import annotations

from fastapi import APIRouter, Request

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.directory import service as directory_service
from telesante.directory.models import Role
from telesante.patients import service as patient_service
from telesante.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/")
async def home(request: Request, session: SessionDep, principal: PrincipalDep):
    context: dict = {"overview": await directory_service.regional_overview(session)}
    if principal.has_role(Role.EVALUATOR, Role.REGIONAL_ADMIN):
        context["identity_counts"] = await patient_service.identity_status_overview(session, principal)
    return render(request, "home.html", context)
