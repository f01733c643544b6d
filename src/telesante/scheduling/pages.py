"""HTML pages of the scheduling domain: the agenda, booking a teleconsultation, preparing it (eligibility, consent,
callback number), cancelling; and the calendar feed that calendar applications subscribe to."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.config import get_settings
from telesante.db import discard_changes
from telesante.kit import clock
from telesante.kit.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from telesante.kit.schemas import parse_input
from telesante.monitoring import service as monitoring_service
from telesante.oncall.service import professional_for_feed
from telesante.patients import service as patients_service
from telesante.scheduling import service
from telesante.scheduling.models import (
    APPOINTMENT_STATUS_LABELS,
    ELIGIBILITY_QUESTIONS,
    EQUIPMENT,
    SITE_KIND_LABELS,
)
from telesante.scheduling.schemas import (
    AppointmentCreate,
    AppointmentReschedule,
    CallPreparation,
    ExceptionCreate,
    PatternCreate,
    WaitingCreate,
)
from telesante.web.forms import form_values, labelled_message, paris_datetime
from telesante.web.render import redirect, render

router = APIRouter()
FIELD_LABELS = {
    "slot_id": "Créneau",
    "site_id": "Lieu",
    "reason": "Motif",
    "callback_phone": "Numéro de rappel",
    "justification": "Justification",
    "consent": "Consentement",
    "organisation_id": "Établissement",
}
LABELS = {
    "STATUS_LABELS": APPOINTMENT_STATUS_LABELS,
    "ELIGIBILITY_QUESTIONS": ELIGIBILITY_QUESTIONS,
    "EQUIPMENT": EQUIPMENT,
    "SITE_KIND_LABELS": SITE_KIND_LABELS,
}


@router.get("/rendez-vous")
async def agenda(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    jour: Annotated[date | None, Query()] = None,
):
    """Teleconsultations of my organisations (the patient's side or the doctor's side), two weeks from a day."""
    day = jour or clock.to_paris(clock.now()).date()
    appointments = await service.list_appointments(session, principal, day_from=day, days=14)
    names = await patients_service.visible_names(
        session, principal, [a.patient_id for a in appointments], identity=True
    )
    doctors = await service.professional_names(session, {a.professional_id for a in appointments})
    return render(
        request,
        "scheduling/agenda.html",
        {
            "appointments": appointments,
            "names": names,
            "doctors": doctors,
            "day": day,
            "previous": day - timedelta(days=14),
            "next": day + timedelta(days=14),
            **LABELS,
        },
    )


async def _booking_context(
    session,
    principal,
    settings,
    patient_id: uuid.UUID,
    offer_id: uuid.UUID | None,
    monitoring_alert_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    # 404 outside scope (a medical secretariat reaches the identity); audited
    access = await patients_service.get_patient_identity(session, principal, patient_id)
    offers = await service.bookable_offers(session, principal)
    days: dict[date, list] = defaultdict(list)
    if offer_id is not None:
        for slot, doctor in await service.list_free_slots(session, principal, offer_id, settings, days=14):
            days[clock.to_paris(slot.starts_at).date()].append((slot, doctor))
    sites = [site for site, _staff in await service.list_sites(session, principal)]
    return {
        "patient": access.patient,
        "offers": offers,
        "offer_id": offer_id,
        "days": dict(days),
        "sites": sites,
        "values": {},
        "monitoring_alert_id": monitoring_alert_id,
        **LABELS,
    }


@router.get("/rendez-vous/nouveau")
async def booking_form(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    patient_id: uuid.UUID,
    offer_id: uuid.UUID | None = None,
    alerte: uuid.UUID | None = None,  # booked from a remote-monitoring alert, which will remember it
):
    context = await _booking_context(session, principal, settings, patient_id, offer_id, alerte)
    return render(request, "scheduling/book.html", context)


@router.post("/rendez-vous/nouveau")
async def book(request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep):
    form = await request.form()
    values = form_values(
        form, ["slot_id", "patient_id", "site_id", "reason", "callback_phone", "offer_id", "alerte"]
    )
    if values.get("site_id") == "domicile":
        values.pop("site_id")
    offer_id = values.pop("offer_id", None)
    alert_id = values.pop("alerte", None)
    try:
        monitoring_alert = uuid.UUID(alert_id) if alert_id else None
    except ValueError:
        monitoring_alert = None
    try:
        if alert_id and monitoring_alert is None:
            raise InvalidInput("Alerte de télésurveillance inconnue.", field="alerte")
        data = parse_input(AppointmentCreate, values)
        appointment = (
            await monitoring_service.book_from_alert(session, principal, monitoring_alert, data)
            if monitoring_alert is not None
            else await service.book_appointment(session, principal, data)
        )
    except (InvalidInput, Conflict, NotFound) as exc:
        await discard_changes(session)
        try:
            patient_id = uuid.UUID(values.get("patient_id", ""))
            context = await _booking_context(
                session,
                principal,
                settings,
                patient_id,
                uuid.UUID(offer_id) if offer_id else None,
                monitoring_alert,
            )
        except ValueError:
            raise exc from None
        context.update(values=values, error=labelled_message(exc, FIELD_LABELS), error_field=exc.field)
        return render(request, "scheduling/book.html", context, status_code=exc.status_code)
    return redirect(f"/rendez-vous/{appointment.id}")


async def _detail_context(session, principal, appointment_id: uuid.UUID) -> dict[str, Any]:
    from telesante.consents.models import ConsentScopeType
    from telesante.consents.service import check_consent

    appointment = await service.get_appointment(session, principal, appointment_id)
    access = await patients_service.get_patient_identity(session, principal, appointment.patient_id)
    # the preparation (consent, eligibility) and the call are clinical: a medical secretariat does not see them
    consent = (
        await check_consent(
            session, principal, appointment.patient_id, ConsentScopeType.ACT, "teleconsultation"
        )
        if access.clinical
        else None
    )
    site = await service.get_site(session, appointment.site_id) if appointment.site_id else None
    doctors = await service.professional_names(session, {appointment.professional_id})
    moves = []
    if appointment.status == "booked":
        try:
            settings = get_settings()
            moves = await service.list_free_slots(session, principal, appointment.offer_id, settings, days=14)
        except DomainError:
            moves = []
    return {
        "appointment": appointment,
        "moves": moves[:60],
        "patient": access.patient,
        "consent": consent,
        "clinical": access.clinical,
        "site": site,
        "doctor": doctors.get(appointment.professional_id, ""),
        "values": {"callback_phone": appointment.callback_phone},
        **LABELS,
    }


@router.post("/rendez-vous/file-attente")
async def join_waiting(request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep):
    """From the booking page: no suitable slot, the patient waits for the next available doctor."""
    form = await request.form()
    values = form_values(form, ["offer_id", "patient_id", "site_id", "reason", "callback_phone"])
    if values.get("site_id") == "domicile":
        values.pop("site_id")
    try:
        await service.join_waiting_list(session, principal, parse_input(WaitingCreate, values))
    except (InvalidInput, Conflict) as exc:
        await discard_changes(session)
        try:
            patient_id = uuid.UUID(values.get("patient_id", ""))
            offer_id = uuid.UUID(values["offer_id"]) if values.get("offer_id") else None
        except ValueError:
            raise exc from None
        context = await _booking_context(session, principal, settings, patient_id, offer_id)
        context.update(values=values, error=labelled_message(exc, FIELD_LABELS), error_field=exc.field)
        return render(request, "scheduling/book.html", context, status_code=exc.status_code)
    return redirect("/rendez-vous/file-attente")


@router.get("/rendez-vous/file-attente")
async def waiting_page(request: Request, session: SessionDep, principal: PrincipalDep):
    queues = await service.waiting_queue(session, principal)
    offers = await service.offer_titles(session, {e.offer_id for q in queues.values() for e in q})
    sites = await service.site_names(session, {e.site_id for q in queues.values() for e in q if e.site_id})
    names = await patients_service.visible_names(session, principal, [e.patient_id for e in queues["ours"]])
    by_offer: dict[uuid.UUID, list] = defaultdict(list)
    for entry in queues["to_take"]:
        by_offer[entry.offer_id].append(entry)
    return render(
        request,
        "scheduling/waiting.html",
        {
            "by_offer": dict(by_offer),
            "ours": queues["ours"],
            "offers": offers,
            "sites": sites,
            "names": names,
        },
    )


@router.post("/rendez-vous/file-attente/{offer_id}/suivant")
async def take_next(session: SessionDep, principal: PrincipalDep, offer_id: uuid.UUID):
    appointment = await service.take_next(session, principal, offer_id)
    return redirect(f"/rendez-vous/{appointment.id}")


@router.get("/rendez-vous/disponibilites")
async def availability(
    request: Request, session: SessionDep, principal: PrincipalDep, professional_id: uuid.UUID | None = None
):
    """A doctor's agenda (their own; an administrator chooses one of their organisation's doctors)."""
    context = await service.agenda(session, principal, professional_id)
    return render(request, "scheduling/availability.html", {**context, "values": {}, **LABELS})


def _agenda_url(professional_id: str | uuid.UUID | None) -> str:
    return (
        f"/rendez-vous/disponibilites?professional_id={professional_id}"
        if professional_id
        else "/rendez-vous/disponibilites"
    )


async def _availability_error(request, session, principal, exc: DomainError, values):
    await discard_changes(session)
    try:
        chosen = uuid.UUID(values.get("professional_id", "")) if values.get("professional_id") else None
    except ValueError:
        chosen = None
    context = await service.agenda(session, principal, chosen)
    context.update(values=values, error=labelled_message(exc, AVAILABILITY_LABELS), error_field=exc.field)
    return render(request, "scheduling/availability.html", {**context, **LABELS}, status_code=exc.status_code)


AVAILABILITY_LABELS = {
    "offer_id": "Offre",
    "weekdays": "Jours",
    "start_time": "Heure de début",
    "end_time": "Heure de fin",
    "slot_minutes": "Durée d'un créneau",
    "valid_from": "Du",
    "valid_until": "Au",
    "starts_at": "Début de l'absence",
    "ends_at": "Fin de l'absence",
    "reason": "Motif",
}


@router.post("/rendez-vous/disponibilites")
async def add_availability(
    request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
):
    form = await request.form()
    values: dict[str, Any] = form_values(
        form,
        [
            "offer_id",
            "start_time",
            "end_time",
            "slot_minutes",
            "valid_from",
            "valid_until",
            "professional_id",
        ],
    )
    values["weekdays"] = [day for day in form.getlist("weekdays") if isinstance(day, str)]
    values["skip_public_holidays"] = form.get("skip_public_holidays") == "oui"
    values.setdefault("professional_id", str(principal.professional_id))
    try:
        await service.add_pattern(session, principal, parse_input(PatternCreate, values), settings)
    except (InvalidInput, Conflict, Forbidden) as exc:
        return await _availability_error(request, session, principal, exc, values)
    return redirect(_agenda_url(values["professional_id"]))


@router.post("/rendez-vous/disponibilites/{pattern_id}/arreter")
async def end_availability(session: SessionDep, principal: PrincipalDep, pattern_id: uuid.UUID):
    pattern, _removed = await service.end_pattern(session, principal, pattern_id)
    return redirect(_agenda_url(pattern.professional_id))


@router.post("/rendez-vous/absences")
async def add_absence(request: Request, session: SessionDep, principal: PrincipalDep):
    form = await request.form()
    values: dict[str, Any] = form_values(form, ["starts_at", "ends_at", "reason", "professional_id"])
    values.setdefault("professional_id", str(principal.professional_id))
    try:
        parsed: dict[str, Any] = dict(values)
        for key in ("starts_at", "ends_at"):  # <input type="datetime-local">: Paris wall time
            if key in values:
                parsed[key] = paris_datetime(values[key], key)
        _exception, _blocked, to_move = await service.add_exception(
            session, principal, parse_input(ExceptionCreate, parsed)
        )
    except (InvalidInput, Conflict, Forbidden) as exc:
        return await _availability_error(request, session, principal, exc, values)
    suffix = f"&a_deplacer={len(to_move)}" if to_move else ""
    return redirect(f"/rendez-vous/disponibilites?professional_id={values['professional_id']}{suffix}")


@router.post("/rendez-vous/absences/{exception_id}/supprimer")
async def remove_absence(
    request: Request, session: SessionDep, principal: PrincipalDep, exception_id: uuid.UUID
):
    await service.remove_exception(session, principal, exception_id)
    back = form_values(await request.form(), ["professional_id"]).get("professional_id")
    try:
        return redirect(_agenda_url(uuid.UUID(back) if back else None))
    except ValueError:
        return redirect(_agenda_url(None))


@router.post("/rendez-vous/{appointment_id}/reporter")
async def reschedule(
    request: Request, session: SessionDep, principal: PrincipalDep, appointment_id: uuid.UUID
):
    values = form_values(await request.form(), ["slot_id"])
    try:
        moved = await service.reschedule_appointment(
            session, principal, appointment_id, parse_input(AppointmentReschedule, values)
        )
    except (InvalidInput, Conflict) as exc:
        return await _detail_error(request, session, principal, appointment_id, exc, values)
    return redirect(f"/rendez-vous/{moved.id}")


@router.get("/rendez-vous/{appointment_id}")
async def detail(request: Request, session: SessionDep, principal: PrincipalDep, appointment_id: uuid.UUID):
    context = await _detail_context(session, principal, appointment_id)
    return render(request, "scheduling/detail.html", context)


async def _detail_error(request, session, principal, appointment_id, exc: DomainError, values):
    await discard_changes(session)
    context = await _detail_context(session, principal, appointment_id)
    context.update(values=values, error=labelled_message(exc, FIELD_LABELS), error_field=exc.field)
    return render(request, "scheduling/detail.html", context, status_code=exc.status_code)


@router.post("/rendez-vous/{appointment_id}/preparer")
async def prepare(request: Request, session: SessionDep, principal: PrincipalDep, appointment_id: uuid.UUID):
    form = await request.form()
    values: dict[str, Any] = form_values(form, ["justification", "callback_phone"])
    for key in ELIGIBILITY_QUESTIONS:
        values[key] = form.get(key) == "oui"
    try:
        await service.prepare_call(session, principal, appointment_id, parse_input(CallPreparation, values))
    except (InvalidInput, Conflict) as exc:
        return await _detail_error(request, session, principal, appointment_id, exc, values)
    return redirect(f"/rendez-vous/{appointment_id}?fait=prepare")


@router.post("/rendez-vous/{appointment_id}/annuler")
async def cancel(request: Request, session: SessionDep, principal: PrincipalDep, appointment_id: uuid.UUID):
    values = form_values(await request.form(), ["cancel_reason"])
    reason = values.get("cancel_reason", "")
    try:
        if len(reason) < 3:
            raise InvalidInput("Motif d'annulation requis (3 caractères au moins).", field="cancel_reason")
        await service.cancel_appointment(session, principal, appointment_id, reason)
    except (InvalidInput, Conflict) as exc:
        return await _detail_error(request, session, principal, appointment_id, exc, values)
    return redirect(f"/rendez-vous/{appointment_id}")


@router.get("/calendrier/rendez-vous/{token}.ics")
async def calendar_feed(session: SessionDep, token: str):
    """The doctor's teleconsultations, at the same secret address as their shifts' feed (one token per
    professional, renewed from « Mes gardes »)."""
    professional_id = await professional_for_feed(session, token[:100])
    body = await service.appointments_ics(session, professional_id)
    return Response(
        body, media_type="text/calendar; charset=utf-8", headers={"Cache-Control": "private, no-store"}
    )
