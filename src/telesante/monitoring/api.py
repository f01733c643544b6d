"""JSON routes of remote monitoring (thin: parse, call one service). Devices and gateways use FHIR (``/fhir``);
these serve other software of the team (a hospital's information system, a dashboard)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, status

from telesante.auth.dependencies import PrincipalDep, SessionDep
from telesante.monitoring import service
from telesante.monitoring.schemas import (
    AlertAppointment,
    AlertFilter,
    AlertInterpretation,
    AlertRead,
    EnrolmentCreate,
    EnrolmentRead,
    ObservationRead,
    ProgrammeCreate,
    ProgrammeRead,
    RulesReplay,
    RulesRevision,
)

router = APIRouter(tags=["Télésurveillance"])


@router.get("/monitoring/programmes", response_model=list[ProgrammeRead])
async def list_programmes(session: SessionDep, principal: PrincipalDep):
    return await service.list_programmes(session, principal)


@router.post("/monitoring/programmes", response_model=ProgrammeRead, status_code=status.HTTP_201_CREATED)
async def create_programme(data: ProgrammeCreate, session: SessionDep, principal: PrincipalDep):
    return await service.create_programme(session, principal, data)


@router.get("/monitoring/programmes/{programme_id}/versions", response_model=list[ProgrammeRead])
async def programme_versions(programme_id: uuid.UUID, session: SessionDep, principal: PrincipalDep):
    """Every version of a team's programme, newest first (team members and administrators)."""
    return (await service.programme_view(session, principal, programme_id)).versions


@router.post("/monitoring/programmes/{programme_id}/replay")
async def replay_rules(
    programme_id: uuid.UUID, data: RulesReplay, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Try rules on the team's past readings: the alerts they would have raised beside those of the rules in force."""
    report = await service.replay_rules(session, principal, programme_id, data)
    return {
        "days": report.days,
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "enrolments": report.enrolments,
        "readings": report.readings,
        "rules": [asdict(row) for row in report.rows],
        "only_in_revision": [
            {"at": at.isoformat(), "patient": name, "message": message}
            for at, name, message in report.examples
        ],
    }


@router.post(
    "/monitoring/programmes/{programme_id}/revisions",
    response_model=ProgrammeRead,
    status_code=status.HTTP_201_CREATED,
)
async def revise_rules(
    programme_id: uuid.UUID, data: RulesRevision, session: SessionDep, principal: PrincipalDep
):
    """A new version of the programme with these rules (the team's patients move to it unless told otherwise)."""
    return await service.revise_rules(session, principal, programme_id, data)


@router.post(
    "/patients/{patient_id}/monitoring", response_model=EnrolmentRead, status_code=status.HTTP_201_CREATED
)
async def enrol_patient(
    patient_id: uuid.UUID, data: EnrolmentCreate, session: SessionDep, principal: PrincipalDep
):
    return await service.enrol_patient(session, principal, patient_id, data)


@router.get("/patients/{patient_id}/monitoring", response_model=list[EnrolmentRead])
async def list_enrolments(patient_id: uuid.UUID, session: SessionDep, principal: PrincipalDep):
    return await service.list_patient_enrolments(session, principal, patient_id)


@router.get("/monitoring/enrolments/{enrolment_id}")
async def get_enrolment(
    enrolment_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    view = await service.get_enrolment(session, principal, enrolment_id)
    return {
        "enrolment": EnrolmentRead.model_validate(view.enrolment).model_dump(mode="json"),
        "programme": {
            "code": view.programme.code,
            "version": view.programme.version,
            "title": view.programme.title,
        },
        "devices": [
            {"serial": d.serial, "kind": d.kind, "linked": d.unlinked_at is None} for d in view.devices
        ],
        "alerts": [AlertRead.model_validate(a).model_dump(mode="json") for a in view.alerts],
        "team_member": view.team_member,
    }


@router.get("/monitoring/enrolments/{enrolment_id}/observations", response_model=list[ObservationRead])
async def list_observations(enrolment_id: uuid.UUID, session: SessionDep, principal: PrincipalDep):
    return await service.readings_of(session, principal, enrolment_id)


@router.get("/monitoring/worklist")
async def worklist(session: SessionDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    rows = await service.worklist(session, principal)
    return [
        {
            "enrolment_id": str(row.enrolment.id),
            "patient_id": str(row.enrolment.patient_id),
            "patient": row.patient_name,
            "programme": row.programme_title,
            "colour": row.enrolment.colour,
            "new_readings": row.unreviewed,
            "alerts": [AlertRead.model_validate(a).model_dump(mode="json") for a in row.alerts],
        }
        for row in rows
    ]


@router.post("/monitoring/worklist/green-seen")
async def acknowledge_green(session: SessionDep, principal: PrincipalDep) -> dict[str, int]:
    return {"acknowledged": await service.acknowledge_green(session, principal)}


@router.post("/monitoring/alerts/{alert_id}/filter", response_model=AlertRead)
async def filter_alert(alert_id: uuid.UUID, data: AlertFilter, session: SessionDep, principal: PrincipalDep):
    return await service.filter_alert(session, principal, alert_id, data.note)


@router.post("/monitoring/alerts/{alert_id}/interpret", response_model=AlertRead)
async def interpret_alert(
    alert_id: uuid.UUID, data: AlertInterpretation, session: SessionDep, principal: PrincipalDep
):
    return await service.interpret_alert(session, principal, alert_id, data)


@router.post("/monitoring/alerts/{alert_id}/appointment", response_model=AlertRead)
async def link_appointment(
    alert_id: uuid.UUID, data: AlertAppointment, session: SessionDep, principal: PrincipalDep
):
    """A teleconsultation booked for the alert's patient (``POST /api/appointments``): the alert remembers it."""
    return await service.link_appointment(session, principal, alert_id, data.appointment_id)
