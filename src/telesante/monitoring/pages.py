"""Télésurveillance pages: the team's triage worklist (live), a follow-up's page (alerts to filter and interpret,
charts, education, the patient's link), enrolment from the patient's record, the printable monthly summary, and the
patient's own page (personal link + PIN, no account) to send measurements."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.consents.models import ConsentDecision, ConsentGiver, ConsentMethod
from telesante.db import discard_changes
from telesante.kit import clock
from telesante.kit.errors import DomainError, InvalidInput
from telesante.kit.schemas import parse_input
from telesante.monitoring import clinical, rules, service
from telesante.monitoring.models import (
    ACTION_LABELS,
    ALERT_STATUS_LABELS,
    ENROLMENT_STATUS_LABELS,
    SOURCE_LABELS,
    AlertAction,
    ReadingSource,
)
from telesante.monitoring.schemas import (
    AlertInterpretation,
    EducationCreate,
    EnrolmentCreate,
    RulesReplay,
    RulesRevision,
)
from telesante.patients import service as patient_service
from telesante.web.forms import form_values, paris_datetime
from telesante.web.render import redirect, render, set_cookie

router = APIRouter(include_in_schema=False)

LIVE_EVENTS = "sse:monitoring.alert, sse:monitoring.updated"
LABELS = {
    "ACTION_LABELS": ACTION_LABELS,
    "ALERT_STATUS_LABELS": ALERT_STATUS_LABELS,
    "ENROLMENT_STATUS_LABELS": ENROLMENT_STATUS_LABELS,
    "SEVERITY_LABELS": rules.SEVERITY_LABELS,
    "SOURCE_LABELS": SOURCE_LABELS,
    "MEASURES": clinical.BY_KEY,
    "PARAMETER_LABELS": rules.PARAMETER_LABELS,
    "KIND_LABELS": rules.KIND_LABELS,
    "rule_of": rules.rule_from_data,
    "rule_to_data": rules.rule_to_data,
    "tunable": rules.tunable,
    "describe": rules.describe,
}
DECISION_LABELS = {ConsentDecision.GIVEN: "Le patient accepte", ConsentDecision.REFUSED: "Le patient refuse"}
METHOD_LABELS = {
    ConsentMethod.ORAL: "Oral",
    ConsentMethod.WRITTEN: "Écrit",
    ConsentMethod.ELECTRONIC: "Électronique",
}
GIVER_LABELS = {
    ConsentGiver.PATIENT: "Le patient",
    ConsentGiver.LEGAL_REPRESENTATIVE: "Son représentant légal",
    ConsentGiver.TRUSTED_PERSON: "Sa personne de confiance",
}
DAY_NAMES = {1: "lundi", 2: "mardi", 3: "mercredi", 4: "jeudi", 5: "vendredi", 6: "samedi", 7: "dimanche"}


def _errors(exc: DomainError) -> dict[str, str]:
    return {e["field"]: e["message"] for e in exc.extra.get("errors", [])} or (
        {exc.field or "form": exc.message}
    )


def hours_text(programme) -> str:
    days = ", ".join(DAY_NAMES[d] for d in programme.days)
    return f"{days}, de {programme.opens.replace(':', ' h ')} à {programme.closes.replace(':', ' h ')} (hors jours fériés)"


# --- the team's worklist ---------------------------------------------------------------------------------------


@router.get("/telesurveillance")
async def worklist_page(request: Request, session: SessionDep, principal: PrincipalDep):
    rows = await service.worklist(session, principal)
    context = {"rows": rows, "live_events": LIVE_EVENTS, "now": clock.now(), **LABELS}
    partial = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "triage"
    response = render(
        request, "monitoring/_worklist.html" if partial else "monitoring/worklist.html", context
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/telesurveillance/vert-vu")
async def acknowledge_green(session: SessionDep, principal: PrincipalDep):
    count = await service.acknowledge_green(session, principal)
    return redirect(f"/telesurveillance?vus={count}")


# --- enrolment from the patient's record ------------------------------------------------------------------------


async def _enrol_context(session, principal, patient_id: uuid.UUID) -> dict[str, Any]:
    access = await patient_service.get_patient(session, principal, patient_id)
    programmes = await service.list_programmes(session, principal)
    enrolments = await service.list_patient_enrolments(session, principal, patient_id)
    names = {}
    for programme in programmes:
        names[programme.organisation_id] = await service.organisation_name(session, programme.organisation_id)
    return {
        "patient": access.patient,
        "programmes": programmes,
        "organisation_names": names,
        "enrolments": enrolments,
        "values": {},
        "errors": {},
        "DECISION_LABELS": DECISION_LABELS,
        "METHOD_LABELS": METHOD_LABELS,
        "GIVER_LABELS": GIVER_LABELS,
        "hours_text": hours_text,
        "TEMPLATES": rules.PROGRAMMES,
        **LABELS,
    }


@router.get("/patients/{patient_id}/telesurveillance")
async def enrol_page(request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    return render(request, "monitoring/enrol.html", await _enrol_context(session, principal, patient_id))


# The enrolment form's fields that are EnrolmentCreate's as they are (the device and the thresholds are regrouped)
ENROLMENT_FIELDS = (
    "programme_id",
    "indication",
    "prescriber_name",
    "decision",
    "method",
    "given_by",
    "representative_name",
    "refusal_reason",
    "starts_on",
    "ends_on",
)


@router.post("/patients/{patient_id}/telesurveillance")
async def enrol(request: Request, session: SessionDep, principal: PrincipalDep, patient_id: uuid.UUID):
    form = await request.form()
    values = form_values(form, [*ENROLMENT_FIELDS, "device_serial", "device_kind"])
    try:
        data: dict[str, Any] = {key: values[key] for key in ENROLMENT_FIELDS if key in values}
        data["conventional_follow_up_offered"] = form.get("conventional_follow_up_offered") == "oui"
        if values.get("device_serial"):
            data["devices"] = [
                {"serial": values["device_serial"], "kind": values.get("device_kind") or "Appareil"}
            ]
        overrides: dict[str, dict[str, float]] = {}
        for key, raw in form.multi_items():
            if key.startswith("override:") and isinstance(raw, str) and raw.strip():
                _, code, parameter = (key.split(":", 2) + ["", ""])[:3]
                try:
                    overrides.setdefault(code, {})[parameter] = float(raw.replace(",", "."))
                except ValueError:
                    raise InvalidInput(f"Seuil « {raw} » : nombre attendu.", field="overrides") from None
        data["overrides"] = overrides
        enrolment = await service.enrol_patient(
            session, principal, patient_id, parse_input(EnrolmentCreate, data)
        )
    except DomainError as exc:
        await discard_changes(session)
        context = await _enrol_context(session, principal, patient_id)
        context["values"], context["errors"] = values, _errors(exc)
        return render(request, "monitoring/enrol.html", context, status_code=exc.status_code)
    return redirect(f"/telesurveillance/suivis/{enrolment.id}")


# --- a follow-up -----------------------------------------------------------------------------------------------


async def _follow_up(session, principal, enrolment_id: uuid.UUID, **extra) -> dict[str, Any]:
    view = await service.get_enrolment(session, principal, enrolment_id)
    patient = (
        await patient_service.require_patient_access(session, principal, view.enrolment.patient_id)
    ).patient
    questions = [
        clinical.BY_KEY[m["measure"]]
        for m in view.programme.measures
        if clinical.BY_KEY[m["measure"]].is_answer
    ]
    return {
        "view": view,
        "questions": questions,
        "answers": await service.recent_answers(session, view) if questions else [],
        "enrolment": view.enrolment,
        "programme": view.programme,
        "patient": patient,
        "team_name": await service.organisation_name(session, view.enrolment.organisation_id),
        "hours": hours_text(view.programme),
        "open_alerts": [a for a in view.alerts if a.status.value != "closed"],
        "closed_alerts": [a for a in view.alerts if a.status.value == "closed"],
        "actions": list(AlertAction),
        "errors": {},
        "live_events": LIVE_EVENTS,
        "month": clock.to_paris(clock.now()).strftime("%Y-%m"),
        "now": clock.now(),
        **LABELS,
        **extra,
    }


@router.get("/telesurveillance/suivis/{enrolment_id}")
async def follow_up_page(
    request: Request, session: SessionDep, principal: PrincipalDep, enrolment_id: uuid.UUID
):
    context = await _follow_up(session, principal, enrolment_id)
    partial = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "alertes"
    response = render(request, "monitoring/_alerts.html" if partial else "monitoring/follow_up.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/telesurveillance/suivis/{enrolment_id}/mesures.json")
async def chart_data(session: SessionDep, principal: PrincipalDep, enrolment_id: uuid.UUID):
    view = await service.get_enrolment(session, principal, enrolment_id, audit=False)
    readings = await service.readings_of(session, principal, enrolment_id)
    return JSONResponse(service.chart_data(view, readings), headers={"Cache-Control": "no-store"})


@router.get("/telesurveillance/suivis/{enrolment_id}/synthese")
async def monthly_summary(
    request: Request, session: SessionDep, principal: PrincipalDep, enrolment_id: uuid.UUID, mois: str = ""
):
    try:
        month = (
            date.fromisoformat(f"{mois}-01") if mois else clock.to_paris(clock.now()).date().replace(day=1)
        )
    except ValueError:
        raise InvalidInput("Mois attendu au format AAAA-MM.", field="mois") from None
    if not clock.FIRST_YEAR <= month.year < clock.LAST_YEAR:
        raise InvalidInput(f"Mois attendu entre {clock.FIRST_YEAR} et {clock.LAST_YEAR - 1}.", field="mois")
    context = await _follow_up(session, principal, enrolment_id)
    readings = await service.readings_of(session, principal, enrolment_id)
    context["summary"] = service.monthly_summary(context["view"], readings, month)
    context["readings"] = [
        r for r in readings if clock.to_paris(r.effective_at).date().replace(day=1) == month
    ]
    return render(request, "monitoring/summary.html", context)


async def _act(request, session, principal, enrolment_id: uuid.UUID, action) -> Any:
    """Run a team action; an error re-renders the follow-up with its message (and nothing of the action kept)."""
    try:
        await action()
    except DomainError as exc:
        await discard_changes(session)
        context = await _follow_up(session, principal, enrolment_id, errors=_errors(exc))
        return render(request, "monitoring/follow_up.html", context, status_code=exc.status_code)
    return redirect(f"/telesurveillance/suivis/{enrolment_id}")


@router.post("/telesurveillance/suivis/{enrolment_id}/alertes/{alert_id}/filtrer")
async def filter_alert(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    enrolment_id: uuid.UUID,
    alert_id: uuid.UUID,
):
    form = await request.form()
    note = str(form.get("note") or "")
    return await _act(
        request,
        session,
        principal,
        enrolment_id,
        lambda: service.filter_alert(session, principal, alert_id, note),
    )


@router.post("/telesurveillance/suivis/{enrolment_id}/alertes/{alert_id}/interpreter")
async def interpret_alert(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    enrolment_id: uuid.UUID,
    alert_id: uuid.UUID,
):
    form = await request.form()
    values = form_values(form, ["interpretation", "action"])

    async def act():
        data = parse_input(AlertInterpretation, values)
        await service.interpret_alert(session, principal, alert_id, data)

    return await _act(request, session, principal, enrolment_id, act)


@router.post("/telesurveillance/suivis/{enrolment_id}/education")
async def record_education(
    request: Request, session: SessionDep, principal: PrincipalDep, enrolment_id: uuid.UUID
):
    form = await request.form()
    values = form_values(form, ["topic", "notes"])

    async def act():
        data = {**values, "held_at": paris_datetime(form.get("held_at"), "held_at")}
        await service.record_education(session, principal, enrolment_id, parse_input(EducationCreate, data))

    return await _act(request, session, principal, enrolment_id, act)


@router.post("/telesurveillance/suivis/{enrolment_id}/fin")
async def end_follow_up(
    request: Request, session: SessionDep, principal: PrincipalDep, enrolment_id: uuid.UUID
):
    form = await request.form()
    reason = str(form.get("reason") or "")
    return await _act(
        request,
        session,
        principal,
        enrolment_id,
        lambda: service.end_enrolment(session, principal, enrolment_id, reason),
    )


@router.post("/telesurveillance/suivis/{enrolment_id}/lien")
async def issue_link(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    enrolment_id: uuid.UUID,
):
    try:
        _, token, pin = await service.issue_patient_link(session, principal, enrolment_id)
    except DomainError as exc:
        await discard_changes(session)
        context = await _follow_up(session, principal, enrolment_id, errors=_errors(exc))
        return render(request, "monitoring/follow_up.html", context, status_code=exc.status_code)
    link = f"{settings.public_url.rstrip('/')}/tls/{token}"
    context = await _follow_up(session, principal, enrolment_id, issued={"link": link, "pin": pin})
    response = render(request, "monitoring/follow_up.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the patient's page ---------------------------------------------------------------------------------------


async def _patient_context(session, enrolment, **extra) -> dict[str, Any]:
    programme = await service.team_programme(session, enrolment)
    measures = [clinical.BY_KEY[m["measure"]] for m in programme.measures]
    return {
        "programme": programme,
        "measures": [m for m in measures if not m.is_answer],
        "questions": [m for m in measures if m.is_answer],
        "hours": hours_text(programme),
        "nonce": uuid.uuid4().hex,
        "errors": {},
        **extra,
    }


@router.get("/tls/{token}")
async def patient_page(request: Request, session: SessionDep, token: str):
    try:
        enrolment = await service.patient_from_cookie(
            session, request.app.state.secret_key, token, request.cookies.get(service.PATIENT_COOKIE)
        )
    except DomainError as exc:
        return render(request, "monitoring/patient.html", {"fatal": exc.message}, status_code=exc.status_code)
    if enrolment is None:
        return render(request, "monitoring/patient.html", {"ask_pin": True, "token": token, "errors": {}})
    context = await _patient_context(session, enrolment, token=token)
    return render(request, "monitoring/patient.html", context)


@router.post("/tls/{token}")
async def patient_pin(request: Request, session: SessionDep, token: str):
    form = await request.form()
    try:
        enrolment = await service.check_patient_pin(session, token, str(form.get("pin") or ""))
    except DomainError as exc:
        # the failed attempt is counted (it is committed, not rolled back)
        status = exc.status_code if exc.status_code != 422 else 400
        context = {"ask_pin": True, "token": token, "errors": {"pin": exc.message}}
        if exc.status_code == 404:
            context = {"fatal": exc.message}
        return render(request, "monitoring/patient.html", context, status_code=status)
    response = redirect(f"/tls/{token}")
    set_cookie(
        request,
        response,
        service.PATIENT_COOKIE,
        service.patient_cookie(request.app.state.secret_key, enrolment),
        max_age=service.PATIENT_COOKIE_HOURS * 3600,
    )
    return response


@router.post("/tls/{token}/mesures")
async def patient_readings(request: Request, session: SessionDep, token: str):
    try:
        enrolment = await service.patient_from_cookie(
            session, request.app.state.secret_key, token, request.cookies.get(service.PATIENT_COOKIE)
        )
    except DomainError as exc:
        return render(request, "monitoring/patient.html", {"fatal": exc.message}, status_code=exc.status_code)
    if enrolment is None:
        return redirect(f"/tls/{token}")
    form = await request.form()
    nonce = str(form.get("nonce") or uuid.uuid4().hex)[:40]
    try:  # a measurement written down earlier (the scale's reading of yesterday morning): its own date and time
        effective_at = paris_datetime(form.get("effective_at"), "effective_at")
    except DomainError as exc:
        context = await _patient_context(
            session, enrolment, token=token, errors={"effective_at": exc.message}
        )
        return render(request, "monitoring/patient.html", context, status_code=400)
    items, sent = [], []
    for index, (key, raw) in enumerate((k, v) for k, v in form.multi_items() if k.startswith("m:")):
        text = str(raw).strip().replace(",", ".")
        measure = clinical.BY_KEY.get(key[2:])
        if not text or measure is None or measure.key in (m.key for m in sent):
            continue
        sent.append(measure)
        items.append(
            service.ReadingItem(
                index,
                enrolment.patient_id,
                measure.code,
                text,
                measure.unit,
                effective_at,
                system=measure.system,
                identifier=f"page:{nonce}:{measure.key}",
            )
        )
    if not items:
        context = await _patient_context(
            session,
            enrolment,
            token=token,
            errors={"form": "Saisissez au moins une mesure ou répondez à une question."},
        )
        return render(request, "monitoring/patient.html", context, status_code=400)
    result = await service.record_readings(session, None, items, ReadingSource.PATIENT, enrolment=enrolment)
    errors = {
        ("effective_at" if o.field == "effective" else measure.key): o.message
        for measure, o in zip(sent, result.outcomes, strict=True)
        if o.status == "refused"
    }
    if errors:
        await discard_changes(session)
        enrolment = await service.patient_enrolment(session, token)
        context = await _patient_context(session, enrolment, token=token, errors=errors)
        return render(request, "monitoring/patient.html", context, status_code=400)
    context = await _patient_context(
        session,
        enrolment,
        token=token,
        sent=[
            (
                m.label,
                ("oui" if clinical.answer_value(v.value) else "non") if m.is_answer else v.value,
                m.unit_label,
            )
            for m, v in zip(sent, items, strict=True)
        ],
    )
    return render(request, "monitoring/patient.html", context)


# --- the team's programmes: rules revised, tried on past readings first -----------------------------------------


def _rules_from_form(view: service.ProgrammeView, form) -> list[dict[str, Any]]:
    """The rules in force with the parameters and severities the form changed (an empty field keeps the value)."""
    data = []
    for rule in view.rules:
        item = rules.rule_to_data(rule)
        severity = str(form.get(f"severity:{rule.code}") or "").strip()
        if severity:
            item["severity"] = severity
        for name in rules.tunable(rule):
            raw = str(form.get(f"rule:{rule.code}:{name}") or "").strip().replace(",", ".")
            if not raw:
                continue
            try:
                item[name] = int(raw) if name in ("days", "at_least") else float(raw)
            except ValueError:
                raise InvalidInput(
                    f"Règle « {rule.code} » : {rules.PARAMETER_LABELS[name]} « {raw} » n'est pas un nombre"
                    f"{' entier' if name in ('days', 'at_least') else ''}.",
                    field=f"rule:{rule.code}:{name}",
                ) from None
        data.append(item)
    return data


async def _programme_context(session, principal, programme_id: uuid.UUID, **extra) -> dict[str, Any]:
    view = await service.programme_view(session, principal, programme_id)
    return {
        "view": view,
        "programme": view.programme,
        "team_name": await service.organisation_name(session, view.programme.organisation_id),
        "hours": hours_text(view.programme),
        "values": {},
        "errors": {},
        "report": None,
        **LABELS,
        **extra,
    }


@router.get("/telesurveillance/programmes")
async def programmes_page(request: Request, session: SessionDep, principal: PrincipalDep):
    programmes = await service.team_programmes(session, principal)
    names = {
        p.organisation_id: await service.organisation_name(session, p.organisation_id) for p in programmes
    }
    return render(request, "monitoring/programmes.html", {"programmes": programmes, "names": names, **LABELS})


@router.get("/telesurveillance/programmes/{programme_id}")
async def programme_page(
    request: Request, session: SessionDep, principal: PrincipalDep, programme_id: uuid.UUID
):
    context = await _programme_context(session, principal, programme_id)
    return render(request, "monitoring/programme.html", context)


@router.post("/telesurveillance/programmes/{programme_id}")
async def programme_revision(
    request: Request, session: SessionDep, principal: PrincipalDep, programme_id: uuid.UUID
):
    """One form, two buttons: « Essayer » replays the changed rules on past readings (nothing changes);
    « Publier » makes them a new version."""
    form = await request.form()
    values = {key: str(value) for key, value in form.items()}
    view = await service.programme_view(session, principal, programme_id)
    publish = form.get("publish") in ("rules", "template")
    try:
        data = _rules_from_form(view, form)
        if publish:
            revision = parse_input(
                RulesRevision,
                {
                    "rules": data,
                    "note": values.get("note", ""),
                    "move_enrolments": form.get("move_enrolments") == "oui",
                    "from_template": form.get("publish") == "template",
                },
            )
            new = await service.revise_rules(session, principal, programme_id, revision)
            return redirect(f"/telesurveillance/programmes/{new.id}?publiee=1")
        report = await service.replay_rules(
            session,
            principal,
            programme_id,
            parse_input(RulesReplay, {"rules": data, "days": values.get("days") or 30}),
        )
    except DomainError as exc:
        await discard_changes(session)
        context = await _programme_context(
            session, principal, programme_id, values=values, errors=_errors(exc)
        )
        return render(request, "monitoring/programme.html", context, status_code=exc.status_code)
    context = await _programme_context(session, principal, programme_id, values=values, report=report)
    return render(request, "monitoring/programme.html", context)
