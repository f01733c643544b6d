"""TéléAVC pages: the alert form (under 30 seconds), the case page that is the room (live clocks from the server's
time, milestones, NIHSS, measures, checklist, doses, decision), and the list of open cases. Every action calls the
same service as the JSON API; an error re-renders the case with its message and rolls the action back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.db import after_commit, discard_changes
from telesante.imaging.pages import viewer_context
from telesante.kit import clock
from telesante.kit.errors import DomainError, InvalidInput
from telesante.kit.schemas import parse_input
from telesante.patients import service as patient_service
from telesante.patients.models import Sex
from telesante.requests.schemas import ReportCreate
from telesante.storage.dependencies import BlobStoreDep
from telesante.stroke import clinical, service
from telesante.stroke.models import (
    CASE_STATUS_LABELS,
    DISPOSITION_LABELS,
    MILESTONE_LABELS,
    NIHSS_ROLE_LABELS,
    TRANSPORT_LABELS,
    Milestone,
)
from telesante.stroke.schemas import (
    AlertCreate,
    ChecklistUpdate,
    DecisionCreate,
    ImagingExpected,
    MeasuresUpdate,
    MilestoneStamp,
    NihssCreate,
)
from telesante.video import service as video_service
from telesante.video.pages import MEDIA_PERMISSIONS
from telesante.web.forms import paris_datetime
from telesante.web.render import form_error, redirect, render

router = APIRouter(include_in_schema=False)

LIVE_EVENTS = "sse:stroke.alert, sse:stroke.updated, sse:oncall.page"
LABELS = {
    "CASE_STATUS_LABELS": CASE_STATUS_LABELS,
    "DISPOSITION_LABELS": DISPOSITION_LABELS,
    "MILESTONE_LABELS": MILESTONE_LABELS,
    "NIHSS_ROLE_LABELS": NIHSS_ROLE_LABELS,
    "TRANSPORT_LABELS": TRANSPORT_LABELS,
    "NIHSS_ITEMS": clinical.NIHSS_ITEMS,
    "ANTICOAGULANTS": clinical.ANTICOAGULANTS,
    "AGENTS": clinical.AGENTS,
    "STAMPABLE": [m for m in Milestone if m in service.STAMPABLE],
}


def _errors(exc: DomainError) -> dict[str, str]:
    return {e["field"]: e["message"] for e in exc.extra.get("errors", [])} or (
        {exc.field: exc.message} if exc.field else {}
    )


def _paris_value(value: datetime | None) -> str:
    return clock.to_paris(value).strftime("%Y-%m-%dT%H:%M") if value else ""


def _none_if_blank(value: Any) -> Any:
    return None if value in ("", None) else value


# --- list and alert ---------------------------------------------------------------------------------------------


@router.get("/avc")
async def cases_page(request: Request, session: SessionDep, principal: PrincipalDep, tous: bool = False):
    cases = await service.list_cases(session, principal, open_only=not tous)
    names = await service.patient_names(session, principal, cases)
    offers = await service.stroke_offers(session, principal)
    context = {
        "cases": cases,
        "names": names,
        "offers": offers,
        "all": tous,
        "live_events": LIVE_EVENTS,
        **LABELS,
    }
    partial = (
        request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "dossiers-avc"
    )
    response = render(request, "stroke/_list.html" if partial else "stroke/list.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _alert_context(session, principal: Principal, patient_id: uuid.UUID | None) -> dict[str, Any]:
    patient = None
    if patient_id is not None:
        patient = (await patient_service.get_patient(session, principal, patient_id)).patient
    offers = await service.stroke_offers(session, principal)
    return {
        "patient": patient,
        "offers": offers,
        "offer_choices": [(offer.id, offer.title) for offer in offers],
        "values": {"arrival_at": _paris_value(clock.now())},
        "sexes": [(Sex.F.value, "Femme"), (Sex.M.value, "Homme")],
        "errors": {},
    }


@router.get("/avc/alerte")
async def alert_page(
    request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID | None = None
):
    return render(request, "stroke/alert.html", await _alert_context(session, principal, patient_id))


@router.post("/avc/alerte")
async def create_alert_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
):
    form = await request.form()
    raw = {key: str(value).strip() for key, value in form.items() if isinstance(value, str)}
    patient_id = raw.get("patient_id") or None
    context = await _alert_context(
        session, principal, uuid.UUID(patient_id) if _is_uuid(patient_id) else None
    )
    context["values"] = raw
    try:
        onset_known = raw.get("onset_unknown") != "oui"
        data: dict[str, Any] = {
            "onset_known": onset_known,
            "last_known_well_at": paris_datetime(raw.get("last_known_well_at"), "last_known_well_at"),
            "onset_note": raw.get("onset_note", ""),
            "arrival_at": paris_datetime(raw.get("arrival_at"), "arrival_at"),
            "callback_phone": raw.get("callback_phone", ""),
            "summary": raw.get("summary", ""),
            "accession_number": raw.get("accession_number", ""),
            "offer_id": _none_if_blank(raw.get("offer_id")),
        }
        if patient_id:
            data["patient_id"] = patient_id
        else:
            data["provisional_identity"] = {
                "birth_family_name": raw.get("birth_family_name", ""),
                "birth_given_names": raw.get("birth_given_names", ""),
                "birth_date": raw.get("birth_date", ""),
                "sex": raw.get("sex", ""),
            }
        case = await service.create_alert(session, principal, settings, parse_input(AlertCreate, data))
    except DomainError as exc:
        return form_error(
            request, "stroke/alert.html", {**context, "errors": _errors(exc)}, exc.message, exc.field
        )
    return redirect(f"/avc/{case.id}")


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# --- quality dashboard ------------------------------------------------------------------------------------------


def _organisation_param(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    if not _is_uuid(value):
        raise InvalidInput("Établissement inconnu.", field="etablissement")
    return uuid.UUID(value)


@router.get("/avc/qualite")
async def dashboard_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    etablissement: str | None = Query(None, max_length=64),
    mois: str | None = Query(None, max_length=16),
):
    board = await service.dashboard(session, principal, settings, _organisation_param(etablissement), mois)
    return render(request, "stroke/dashboard.html", {"board": board, "q": board.quality, **LABELS})


@router.get("/avc/qualite.csv")
async def dashboard_csv(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    etablissement: str | None = Query(None, max_length=64),
    mois: str | None = Query(None, max_length=16),
):
    board = await service.dashboard(session, principal, settings, _organisation_param(etablissement), mois)
    return Response(
        service.dashboard_csv(board),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="teleavc-qualite-{board.month}.csv"',
            "Cache-Control": "no-store",
        },
    )


# --- the case ---------------------------------------------------------------------------------------------------


async def _case_context(
    session, principal: Principal, settings: Settings, case_id: uuid.UUID
) -> dict[str, Any]:
    view = await service.case_view(session, principal, settings, case_id)
    return {
        "view": view,
        "case": view.case,
        "checklist_items": view.checklist.items,
        "thresholds": {
            c.code: clinical.threshold_text(c.code, view.rules) for c in clinical.CONTRAINDICATIONS
        },
        "receiving_centres": await service.receiving_centres(session),
        "live_events": LIVE_EVENTS,
        "errors": {},
        "values": {},
        **LABELS,
    }


@router.get("/avc/{case_id}")
async def case_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    context = await _case_context(session, principal, settings, case_id)
    partial = (
        request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "dossier-avc"
    )
    response = render(request, "stroke/_case.html" if partial else "stroke/case.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _act(
    request: Request, session, principal, settings, case_id: uuid.UUID, action, anchor: str
) -> Response:
    form = await request.form()
    try:
        await action(form)
    except DomainError as exc:
        await discard_changes(session)
        context = await _case_context(session, principal, settings, case_id)
        context.update(
            errors=_errors(exc),
            error=exc.message,
            error_field=exc.field,
            values={k: v for k, v in form.items() if isinstance(v, str)},
        )
        status_code = exc.status_code if exc.status_code in (403, 409, 422) else 422
        return render(request, "stroke/case.html", context, status_code=status_code)
    return redirect(f"/avc/{case_id}#{anchor}")


@router.post("/avc/{case_id}/video")
async def open_video_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    """One click from the case: the call opens (created the first time) beside the images."""

    async def action(form):
        await service.open_video(session, principal, case_id)

    response = await _act(request, session, principal, settings, case_id, action, "video")
    if response.status_code in (302, 303):
        return redirect(f"/avc/{case_id}/salle")
    return response


@router.get("/avc/{case_id}/salle")
async def room_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    case_id: uuid.UUID,
    etude: str | None = Query(None, max_length=64),
):
    """The case's room: the call and the viewer side by side, the clocks and the decision's essentials above."""
    room = await service.video_room(session, principal, case_id)
    if room is None:
        return redirect(f"/avc/{case_id}#video")
    context = await _case_context(session, principal, settings, case_id)
    seat = await video_service.enter_as_professional(session, principal, room.id)
    shown = await service.case_study(session, principal, case_id, etude)
    viewer = viewer_context(shown) if shown is not None else {}
    context.update(
        room_id=room.id,
        seat=seat,
        is_host=seat.role == "host",
        studies=context["view"].studies,
        shown=shown.study if shown else None,
        **viewer,
    )
    response = render(request, "stroke/room.html", context)
    response.headers["permissions-policy"] = MEDIA_PERMISSIONS
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/avc/{case_id}/imagerie/{study_uid}")
async def case_viewer_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    case_id: uuid.UUID,
    study_uid: str,
):
    """The viewer of one of the case's studies (every party of the case: both sides and the receiving centre)."""
    shown = await service.case_study(session, principal, case_id, study_uid[:64])
    if shown is None:
        return redirect(f"/avc/{case_id}#imagerie")
    response = render(request, "stroke/viewer.html", {"case_id": case_id, **viewer_context(shown)})
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/avc/{case_id}/imagerie")
async def expected_imaging_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    async def action(form):
        data = {"accession_number": str(form.get("accession_number", ""))}
        await service.set_expected_imaging(session, principal, case_id, parse_input(ImagingExpected, data))

    return await _act(request, session, principal, settings, case_id, action, "imagerie")


@router.get("/avc/{case_id}/compte-rendu")
async def report_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    """The compte rendu written from the case, for the neurologist to read, complete and sign."""
    draft = await service.report_draft(session, principal, settings, case_id)
    return render(
        request, "stroke/report.html", {**draft, "case": draft["view"].case, "values": {}, "errors": {}}
    )


@router.post("/avc/{case_id}/compte-rendu")
async def sign_report_page(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    case_id: uuid.UUID,
):
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    draft = await service.report_draft(session, principal, settings, case_id)
    try:
        incidents = values.get("technical_incident_details", "").strip()
        data = {
            "conclusion": values.get("conclusion", ""),
            "prescriptions": values.get("prescriptions", ""),
            "participants": draft["participants"],
            "performed_at": draft["performed_at"],
            "duration_minutes": draft["duration_minutes"],
            "technical_incident": bool(incidents),
            "technical_incident_details": incidents,
        }
        case = await service.sign_report(
            session, principal, settings, store, case_id, parse_input(ReportCreate, data)
        )
    except DomainError as exc:
        await discard_changes(session)
        draft = await service.report_draft(session, principal, settings, case_id)
        return form_error(
            request,
            "stroke/report.html",
            {**draft, "case": draft["view"].case, "values": values, "errors": _errors(exc)},
            exc.message,
            exc.field,
        )
    hub = request.app.state.video_hub
    room = await service.video_room(session, principal, case.id)
    if room is not None:
        room_id = str(room.id)

        async def end() -> None:
            await hub.end_room(room_id, "Le dossier AVC est clos : le compte rendu est signé.")

        after_commit(session, end)
    return redirect(f"/avc/{case_id}#compte-rendu")


@router.post("/avc/{case_id}/prendre")
async def acknowledge_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    async def action(form):
        await service.acknowledge(session, principal, case_id)

    return await _act(request, session, principal, settings, case_id, action, "horloges")


@router.post("/avc/{case_id}/jalons")
async def stamp_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    async def action(form):
        data = {"kind": form.get("kind", "")}
        if form.get("at"):
            data["at"] = paris_datetime(str(form.get("at")), "at")
            data["correction_reason"] = str(form.get("correction_reason", ""))
        await service.stamp_milestone(session, principal, case_id, parse_input(MilestoneStamp, data))

    return await _act(request, session, principal, settings, case_id, action, "jalons")


@router.post("/avc/{case_id}/nihss")
async def nihss_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    async def action(form):
        items = {item.code: str(form.get(f"item_{item.code}", "")) for item in clinical.NIHSS_ITEMS}
        await service.record_nihss(session, principal, case_id, NihssCreate(items=items))

    return await _act(request, session, principal, settings, case_id, action, "nihss")


@router.post("/avc/{case_id}/mesures")
async def measures_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    async def action(form):
        data: dict[str, Any] = {}
        for name in ("systolic", "diastolic", "platelets", "inr", "weight_kg", "anticoagulant"):
            value = str(form.get(name, "")).strip().replace(",", ".")
            if value:
                data[name] = value
        glucose = str(form.get("glucose", "")).strip().replace(",", ".")
        if glucose:  # in the unit chosen beside it; the schema converts g/L to mmol/L
            data["glucose"] = glucose
            data["glucose_unit"] = "g/L" if form.get("glucose_unit") == "g" else "mmol/L"
        if form.get("last_anticoagulant_at"):
            data["last_anticoagulant_at"] = paris_datetime(
                str(form.get("last_anticoagulant_at")), "last_anticoagulant_at"
            )
        await service.record_measures(session, principal, case_id, parse_input(MeasuresUpdate, data))

    return await _act(request, session, principal, settings, case_id, action, "mesures")


@router.post("/avc/{case_id}/checklist")
async def checklist_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    async def action(form):
        answers = {
            item.code: str(form.get(f"ci_{item.code}"))
            for item in clinical.CONTRAINDICATIONS
            if form.get(f"ci_{item.code}") in clinical.ANSWERS
        }
        await service.record_checklist(
            session, principal, settings, case_id, ChecklistUpdate(answers=answers)
        )

    return await _act(request, session, principal, settings, case_id, action, "checklist")


@router.post("/avc/{case_id}/decision")
async def decision_page(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID
):
    async def action(form):
        data = {
            "disposition": form.get("disposition", ""),
            "reasons": form.get("reasons", ""),
            "agent": form.get("agent", ""),
            "override_reason": form.get("override_reason", ""),
            "thrombectomy": form.get("thrombectomy") == "oui",
            "receiving_organisation_id": _none_if_blank(form.get("receiving_organisation_id")),
            "transport_mode": _none_if_blank(form.get("transport_mode")),
        }
        await service.decide(session, principal, settings, case_id, parse_input(DecisionCreate, data))

    return await _act(request, session, principal, settings, case_id, action, "decision")
