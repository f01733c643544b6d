"""JSON routes of the stroke pathway (thin: parse, authorise through the principal, call one service)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, status

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.stroke import service
from telesante.stroke.schemas import (
    AlertCreate,
    CaseRead,
    ChecklistUpdate,
    DecisionCreate,
    MeasuresUpdate,
    MilestoneRead,
    MilestoneStamp,
    NihssCreate,
    NihssRead,
)

router = APIRouter(prefix="/stroke", tags=["TéléAVC"])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _view(view: service.CaseView) -> dict[str, Any]:
    return {
        "case": CaseRead.model_validate(view.case).model_dump(mode="json"),
        "patient": {"name": view.patient_name, "identity_status": view.identity_status},
        "server_time": view.now.isoformat(),
        "windows": [
            {
                "code": w.code,
                "label": w.label,
                "limit_minutes": w.limit_minutes,
                "deadline": _iso(w.deadline),
                "remaining_minutes": w.remaining_minutes,
                "state": w.state,
            }
            for w in view.windows
        ],
        "counters": [
            {
                "code": c.code,
                "label": c.label,
                "minutes": c.minutes,
                "target_minutes": c.target_minutes,
                "running": c.running,
                "state": c.state,
            }
            for c in view.counters
        ],
        "milestones": [
            MilestoneRead.model_validate(m).model_dump(mode="json")
            for m in sorted(view.milestones.values(), key=lambda m: m.at)
        ],
        "nihss": [NihssRead.model_validate(n).model_dump(mode="json") for n in view.nihss],
        "checklist": {
            "items": [
                {
                    "code": i.item.code,
                    "label": i.item.label,
                    "absolute": i.item.absolute,
                    "answer": i.answer,
                    "origin": i.origin,
                    "detail": i.detail,
                }
                for i in view.checklist.items
            ],
            "blocking": list(view.checklist.blocking),
            "unanswered": list(view.checklist.unanswered),
        },
        "doses": {
            agent: {
                "total_mg": d.total_mg,
                "bolus_mg": d.bolus_mg,
                "infusion_mg": d.infusion_mg,
                "infusion_minutes": d.infusion_minutes,
                "volume_ml": d.volume_ml,
                "capped": d.capped,
                "text": d.text,
            }
            for agent, d in view.doses.items()
        },
    }


@router.post("/cases", response_model=CaseRead, status_code=status.HTTP_201_CREATED)
async def create_alert(
    session: SessionDep, principal: PrincipalDep, settings: SettingsDep, data: AlertCreate
):
    """Alerte AVC depuis les urgences : le neurologue de garde de la filière est appelé aussitôt."""
    return await service.create_alert(session, principal, settings, data)


@router.get("/cases", response_model=list[CaseRead])
async def list_cases(session: SessionDep, principal: PrincipalDep, all: bool = False):
    """Dossiers AVC visibles (en cours ; tous avec all=true)."""
    return await service.list_cases(session, principal, open_only=not all)


@router.get("/cases/{case_id}")
async def get_case(session: SessionDep, principal: PrincipalDep, settings: SettingsDep, case_id: uuid.UUID):
    """Le dossier, ses horloges (heure du serveur), jalons, NIHSS, check-list et doses."""
    return _view(await service.case_view(session, principal, settings, case_id))


@router.post("/cases/{case_id}/acknowledge", response_model=CaseRead)
async def acknowledge(session: SessionDep, principal: PrincipalDep, case_id: uuid.UUID):
    """Le neurologue appelé prend l'alerte (l'escalade s'arrête)."""
    return await service.acknowledge(session, principal, case_id)


@router.post("/cases/{case_id}/milestones", response_model=MilestoneRead, status_code=status.HTTP_201_CREATED)
async def stamp(session: SessionDep, principal: PrincipalDep, case_id: uuid.UUID, data: MilestoneStamp):
    """Horodater un jalon (heure du serveur ; une heure corrigée demande un motif)."""
    return await service.stamp_milestone(session, principal, case_id, data)


@router.post("/cases/{case_id}/nihss", response_model=NihssRead, status_code=status.HTTP_201_CREATED)
async def nihss(session: SessionDep, principal: PrincipalDep, case_id: uuid.UUID, data: NihssCreate):
    """Coter le NIHSS (urgentiste ou neurologue ; chaque cotation est gardée)."""
    return await service.record_nihss(session, principal, case_id, data)


@router.patch("/cases/{case_id}/measures", response_model=CaseRead)
async def measures(session: SessionDep, principal: PrincipalDep, case_id: uuid.UUID, data: MeasuresUpdate):
    """Pression artérielle, glycémie, poids, plaquettes, INR, anticoagulant. La glycémie se donne en mmol/L
    (``glucose_mmol``) ou dans l'unité choisie (``glucose`` et ``glucose_unit`` : mmol/L ou g/L), gardée en mmol/L."""
    return await service.record_measures(session, principal, case_id, data)


@router.patch("/cases/{case_id}/checklist")
async def checklist(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    case_id: uuid.UUID,
    data: ChecklistUpdate,
):
    """Répondre à la check-list des contre-indications de la thrombolyse."""
    result = await service.record_checklist(session, principal, settings, case_id, data)
    return {"blocking": list(result.blocking), "unanswered": list(result.unanswered), "clear": result.clear}


@router.post("/cases/{case_id}/decision", response_model=CaseRead)
async def decide(
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    case_id: uuid.UUID,
    data: DecisionCreate,
):
    """La décision du neurologue (thrombolyse avec la dose calculée, thrombectomie, transfert, surveillance)."""
    return await service.decide(session, principal, settings, case_id, data)
