"""Consent pages: choose a scope, show the information notice in force for it, record the patient's decision
against that very notice; withdraw a given consent with a reason.

Works without JavaScript: the scope is chosen first (a link per scope, ``?scope_type=…&scope_code=…``), then
the page shows the notice and the decision form carrying the notice's id.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.auth.principal import Principal
from telesante.consents import service
from telesante.consents.models import (
    ACT_CODES,
    DATA_PROCESSING_CODES,
    ConsentDecision,
    ConsentGiver,
    ConsentMethod,
    ConsentScopeType,
    InformationText,
)
from telesante.consents.schemas import ConsentCreate, ConsentWithdraw, scope_problem
from telesante.directory.models import CLINICAL_ROLES
from telesante.kit.errors import Conflict, InvalidInput, NotFound
from telesante.kit.schemas import parse_input
from telesante.patients import service as patients_service
from telesante.web.forms import form_values, labelled_message
from telesante.web.render import form_error, redirect, render

router = APIRouter(include_in_schema=False)

DECISION_LABELS = {ConsentDecision.GIVEN: "Consentement donné", ConsentDecision.REFUSED: "Refus"}
METHOD_LABELS = {
    ConsentMethod.ORAL: "Oral",
    ConsentMethod.WRITTEN: "Écrit",
    ConsentMethod.ELECTRONIC: "Électronique",
}
GIVER_LABELS = {
    ConsentGiver.PATIENT: "Le patient lui-même",
    ConsentGiver.LEGAL_REPRESENTATIVE: "Son représentant légal",
    ConsentGiver.TRUSTED_PERSON: "Sa personne de confiance",
}
# Read by the patient record page too (its consents section).
CONSENT_LABELS = {
    "DECISION_LABELS": DECISION_LABELS,
    "METHOD_LABELS": METHOD_LABELS,
    "GIVER_LABELS": GIVER_LABELS,
}

FIELD_LABELS = {
    "scope_type": "Périmètre",
    "scope_code": "Périmètre",
    "information_text_id": "Notice d'information",
    "decision": "Décision",
    "method": "Mode de recueil",
    "given_by": "Décision exprimée par",
    "representative_name": "Nom de la personne qui s'exprime",
    "comment": "Commentaire",
    "organisation_id": "Établissement",
    "reason": "Motif du retrait",
}
CONSENT_FIELDS = tuple(ConsentCreate.model_fields)


def _clinical_organisations(principal: Principal) -> list[tuple[uuid.UUID, str]]:
    seen: dict[uuid.UUID, str] = {}
    for grant in principal.grants:
        if grant.role in CLINICAL_ROLES and grant.organisation_id is not None:
            seen.setdefault(grant.organisation_id, grant.organisation_name)
    return sorted(seen.items(), key=lambda item: item[1])


def _scope_choices(texts: list[InformationText]) -> list[dict[str, Any]]:
    """Every scope, grouped by type, with the notice in force (None when there is none: not selectable)."""
    current = {(t.scope_type, t.scope_code): t for t in texts}
    programmes = {
        t.scope_code: t.title for t in texts if t.scope_type == ConsentScopeType.MONITORING_PROGRAMME
    }
    groups = [
        (ConsentScopeType.ACT, ACT_CODES),
        (ConsentScopeType.DATA_PROCESSING, DATA_PROCESSING_CODES),
        (ConsentScopeType.MONITORING_PROGRAMME, programmes),
    ]
    return [
        {
            "type": scope_type,
            "scopes": [
                {"code": code, "label": label, "text": current.get((scope_type, code))}
                for code, label in codes.items()
            ],
        }
        for scope_type, codes in groups
    ]


async def _notice(session, scope_type: str, scope_code: str) -> InformationText:
    """The notice in force for a scope, or InvalidInput naming what is wrong."""
    try:
        type_ = ConsentScopeType(scope_type)
    except ValueError:
        raise InvalidInput("Périmètre : type inconnu.", field="scope_type") from None
    problem = scope_problem(type_, scope_code)
    if problem:
        raise InvalidInput(problem, field="scope_code")
    texts = await service.list_information_texts(session, type_, scope_code)
    if not texts:
        raise InvalidInput(
            "Aucune notice d'information n'est en vigueur pour ce périmètre : le consentement ne peut "
            "pas être recueilli tant qu'elle n'est pas publiée.",
            field="scope_code",
        )
    return texts[-1]


async def _new_context(
    session, principal: Principal, patient_id: uuid.UUID, scope_type: str, scope_code: str
) -> dict[str, Any]:
    """Step 1 (no scope chosen): the scopes; step 2: the notice in force and the decision form."""
    context: dict[str, Any] = {
        "patient_id": patient_id,
        "patient": None,
        "organisations": _clinical_organisations(principal),
        "values": {"method": ConsentMethod.ORAL.value, "given_by": ConsentGiver.PATIENT.value},
        "notice": None,
        **CONSENT_LABELS,
    }
    if scope_type or scope_code:
        context["notice"] = await _notice(session, scope_type, scope_code)
    else:
        context["scope_groups"] = _scope_choices(await service.list_information_texts(session))
    return context


@router.get("/patients/{patient_id}/consentements/nouveau")
async def new_consent_form(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    patient_id: uuid.UUID,
    scope_type: Annotated[str, Query(max_length=30)] = "",
    scope_code: Annotated[str, Query(max_length=60)] = "",
    suite: Annotated[str, Query(max_length=100)] = "",
):
    access = await patients_service.get_patient(session, principal, patient_id)  # 404 outside scope; audited
    try:
        context = await _new_context(session, principal, patient_id, scope_type, scope_code)
    except InvalidInput as exc:
        context = await _new_context(session, principal, patient_id, "", "")
        context.update(patient=access.patient, via_break_glass=access.via_break_glass)
        return render(
            request,
            "consents/new.html",
            {**context, "error": labelled_message(exc, FIELD_LABELS), "error_field": exc.field},
            status_code=422,
        )
    context.update(patient=access.patient, via_break_glass=access.via_break_glass, suite=_next_page(suite))
    return render(request, "consents/new.html", context)


_NEXT_PAGE = re.compile(r"/rendez-vous/[0-9a-f-]{36}")


def _next_page(value: str | None) -> str:
    """Where to go back after recording (an appointment being prepared); only our own known pages."""
    return value if isinstance(value, str) and _NEXT_PAGE.fullmatch(value) else ""


@router.post("/patients/{patient_id}/consentements/nouveau")
async def record_consent(
    request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID
):
    form = await request.form()
    values = form_values(form, CONSENT_FIELDS)
    suite = _next_page(form.get("suite"))
    try:
        await service.record_consent(session, principal, patient_id, parse_input(ConsentCreate, values))
    except (InvalidInput, Conflict) as exc:
        # Re-render the decision form with the notice (no patient data is read on this path: it rolls back).
        try:
            context = await _new_context(
                session, principal, patient_id, values.get("scope_type", ""), values.get("scope_code", "")
            )
        except InvalidInput:
            context = await _new_context(session, principal, patient_id, "", "")
        context["values"] = values
        context["suite"] = suite
        return form_error(
            request,
            "consents/new.html",
            context,
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=exc.status_code,
        )
    return redirect(suite or f"/patients/{patient_id}?fait=consentement#consentements")


@router.get("/patients/{patient_id}/consentements/{consent_id}/retrait")
async def withdraw_form(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    patient_id: uuid.UUID,
    consent_id: uuid.UUID,
):
    access = await patients_service.get_patient(session, principal, patient_id)
    consents = await service.list_consents(session, principal, patient_id)
    consent = next((c for c in consents if c.id == consent_id), None)
    if consent is None:
        raise NotFound("Consentement introuvable.")
    context = {
        "patient_id": patient_id,
        "patient": access.patient,
        "via_break_glass": access.via_break_glass,
        "consent": consent,
        "consent_id": consent_id,
        "values": {},
        **CONSENT_LABELS,
    }
    return render(request, "consents/withdraw.html", context)


@router.post("/patients/{patient_id}/consentements/{consent_id}/retrait")
async def withdraw(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    patient_id: uuid.UUID,
    consent_id: uuid.UUID,
):
    values = form_values(await request.form(), ConsentWithdraw.model_fields)
    try:
        data = parse_input(ConsentWithdraw, values)
        await service.withdraw_consent(session, principal, patient_id, consent_id, data.reason)
    except (InvalidInput, Conflict) as exc:
        context = {
            "patient_id": patient_id,
            "patient": None,
            "consent": None,
            "consent_id": consent_id,
            "values": values,
            **CONSENT_LABELS,
        }
        return form_error(
            request,
            "consents/withdraw.html",
            context,
            labelled_message(exc, FIELD_LABELS),
            exc.field,
            status_code=exc.status_code,
        )
    return redirect(f"/patients/{patient_id}?fait=retrait#consentements")
