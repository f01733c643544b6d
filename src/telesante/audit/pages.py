"""Emergency access ("bris de glace") pages: the clinician's request, and the regional administrator's review.

The rules (exact identification, mandatory reason, limited duration, audit flag) live in the patient service.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request

from telesante.auth import service as auth_service
from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.auth.principal import Principal
from telesante.kit.errors import Conflict, InvalidInput, NotFound
from telesante.kit.pagination import PageRequest
from telesante.kit.schemas import parse_input
from telesante.patients import service as patients_service
from telesante.patients.schemas import BreakGlassCreate, BreakGlassReview
from telesante.web.forms import form_values, labelled_message
from telesante.web.render import form_error, redirect, render

router = APIRouter(include_in_schema=False)

REVIEW_PAGE_SIZE = 20
FIELD_LABELS = {
    "reason": "Motif",
    "ins_matricule": "Matricule INS",
    "birth_family_name": "Nom de naissance",
    "first_given_name": "Premier prénom",
    "birth_date": "Date de naissance",
    "comment": "Commentaire de revue",
}


# --- the clinician's emergency access ----------------------------------------------------------------------


@router.get("/acces-urgence")
async def break_glass_form(request: Request, principal: PrincipalDep):
    return render(request, "audit/break_glass.html", {"values": {}})


@router.post("/acces-urgence")
async def break_glass(request: Request, session: SessionDep, settings: SettingsDep, principal: PrincipalDep):
    values = form_values(await request.form(), BreakGlassCreate.model_fields)
    try:
        data = parse_input(BreakGlassCreate, values)
        grants = await patients_service.break_glass(session, principal, settings, data)
    except (InvalidInput, Conflict, NotFound) as exc:  # NotFound: no patient matches exactly
        return form_error(
            request,
            "audit/break_glass.html",
            {"values": values},
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=exc.status_code,
        )
    if len(grants) == 1:
        return redirect(f"/patients/{grants[0].patient_id}")
    # Several patients share these traits: the search page lists them (all now visible through the grants).
    query = {
        "nom": data.birth_family_name or "",
        "prenom": data.first_given_name or "",
        "naissance": data.birth_date.isoformat() if data.birth_date else "",
    }
    return redirect(f"/patients?{urlencode(query)}")


# --- the regional administrator's review -------------------------------------------------------------------


async def _review_context(session, principal: Principal, offset: int) -> dict[str, Any]:
    page = await patients_service.list_pending_break_glass(
        session, principal, PageRequest(offset, REVIEW_PAGE_SIZE)
    )
    # Who asked: one account read per distinct requester on this page (a page holds at most 20 rows).
    requesters: dict[uuid.UUID, str] = {}
    for grant in page.items:
        if grant.account_id not in requesters:
            try:
                account = await auth_service.get_account(session, principal, grant.account_id)
                requesters[grant.account_id] = f"{account.professional.display_name} <{account.email}>"
            except NotFound:
                requesters[grant.account_id] = "Compte inconnu"
    return {"page": page, "requesters": requesters, "offset": offset, "values": {}, "error_grant": None}


@router.get("/admin/acces-urgence")
async def review_list(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    revu: Annotated[str, Query(max_length=5)] = "",
):
    context = await _review_context(session, principal, offset)
    if revu:
        context["message"] = "Accès d'urgence marqué comme revu."
    return render(request, "audit/break_glass_review.html", context)


@router.post("/admin/acces-urgence/{grant_id}/revue")
async def review(request: Request, session: SessionDep, principal: PrincipalDep, grant_id: uuid.UUID):
    values = form_values(await request.form(), BreakGlassReview.model_fields)
    try:
        data = parse_input(BreakGlassReview, values)
        await patients_service.review_break_glass(session, principal, grant_id, data.comment)
    except (InvalidInput, Conflict) as exc:
        context = await _review_context(session, principal, 0)
        context.update(values=values, error_grant=grant_id)
        return form_error(
            request,
            "audit/break_glass_review.html",
            context,
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=exc.status_code,
        )
    return redirect("/admin/acces-urgence?revu=1")
