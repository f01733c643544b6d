"""TéléAVC: the stroke pathway as one flow around a tele-expertise request routed to the regional stroke rota.

An alert is a request on a stroke offer (form ``alerte_avc``, routed on call: the neurologist on duty is paged at
once and the page escalates to the backup when not acknowledged in the offer's ``ack_minutes``) plus a
``StrokeCase`` holding the clocks, milestones, NIHSS, measures, checklist and decision. Clinical rules live in
``stroke/clinical.py`` (pure, with their sources); this module applies them, stamps times with the server clock,
scopes access (``StrokeCaseRepository.visible``) and audits every read and change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.directory.repository import OrganisationRepository
from telesante.events.bus import Event
from telesante.events.service import publish_on_commit
from telesante.imaging import service as imaging_service
from telesante.imaging.models import ImagingStudy
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.kit.schemas import parse_input
from telesante.offers.models import ActType, Offer, Routing
from telesante.offers.service import list_requestable_offers
from telesante.patients.repository import PatientRepository
from telesante.patients.schemas import PatientCreate
from telesante.patients.service import (
    get_patient,
    link_patient_to_organisation,
    register_patient,
    visible_names,
)
from telesante.requests import service as requests_service
from telesante.requests.models import RequestStatus, TeleRequest
from telesante.requests.repository import RequestRepository
from telesante.requests.schemas import ReportCreate, RequestAnswer, RequestCreate, RequestSend
from telesante.storage.blobs import BlobStore
from telesante.stroke import clinical, quality
from telesante.stroke.models import (
    DISPOSITION_LABELS,
    TRANSPORT_LABELS,
    CaseStatus,
    Disposition,
    Milestone,
    NihssAssessment,
    NihssRole,
    StrokeCase,
    StrokeMilestone,
)
from telesante.stroke.models import MILESTONE_LABELS as MILESTONE_LABEL
from telesante.stroke.repository import MilestoneRepository, NihssRepository, StrokeCaseRepository
from telesante.stroke.schemas import (
    REASON_MIN,
    AlertCreate,
    ChecklistUpdate,
    DecisionCreate,
    ImagingExpected,
    MeasuresUpdate,
    MilestoneStamp,
    NihssCreate,
)
from telesante.video import service as video_service
from telesante.video.models import VideoRoom

STROKE_FORM = "alerte_avc"
EMERGENCY_EXEMPTION = (
    "Alerte AVC : urgence, le délai de la thrombolyse ne permet pas d'attendre le recueil du consentement "
    "(patient souvent aphasique) ; information du patient ou de ses proches dès que possible."
)
# Milestones stamped by a click; the others are stamped by the flow itself (alert, acknowledgement, decision).
STAMPABLE = {
    Milestone.VIDEO_STARTED,
    Milestone.IMAGING_AVAILABLE,
    Milestone.IMAGING_READ,
    Milestone.NEEDLE,
    Milestone.DEPARTURE,
}
WINDOW_OVERRIDE = "fenetre_iv"  # thrombolysis outside (or without) the IV window: a pseudo-item to override


class CaseNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Dossier AVC introuvable.")


def rules_of(settings: Settings) -> clinical.StrokeRules:
    return clinical.StrokeRules.from_settings(settings)


# --- the alert ------------------------------------------------------------------------------------------------


async def stroke_offers(session: AsyncSession, principal: Principal) -> list[Offer]:
    """The stroke pathways this emergency doctor may alert (offers with the ``alerte_avc`` form, routed on call)."""
    return [
        offer
        for offer in await list_requestable_offers(session, principal, act_type=ActType.TELEEXPERTISE)
        if offer.form_code == STROKE_FORM and offer.routing == Routing.ON_CALL
    ]


async def _alert_offer(session: AsyncSession, principal: Principal, offer_id: uuid.UUID | None) -> Offer:
    offers = await stroke_offers(session, principal)
    if offer_id is not None:
        for offer in offers:
            if offer.id == offer_id:
                return offer
        raise InvalidInput("Filière TéléAVC inconnue ou non ouverte à votre établissement.", field="offer_id")
    if not offers:
        raise Forbidden(
            "Aucune filière TéléAVC n'est ouverte à votre établissement : voyez l'administrateur."
        )
    if len(offers) > 1:
        raise InvalidInput(
            "Plusieurs filières TéléAVC vous sont ouvertes : choisissez-en une.", field="offer_id"
        )
    return offers[0]


def _check_times(data: AlertCreate, now: datetime) -> tuple[datetime | None, datetime]:
    """Times come from the emergency doctor's account of the case, but never from the future: the server's clock
    is the reference (a minute of tolerance for a clock read on a wall)."""
    arrival = clock.as_utc(data.arrival_at) if data.arrival_at else now
    if arrival > now + timedelta(minutes=1):
        raise InvalidInput("L'heure d'arrivée est dans le futur.", field="arrival_at")
    if arrival < now - timedelta(hours=48):
        raise InvalidInput(
            "Arrivée il y a plus de 48 heures : ce n'est plus une alerte AVC.", field="arrival_at"
        )
    onset = clock.as_utc(data.last_known_well_at) if data.last_known_well_at else None
    if onset is not None:
        what = "début des symptômes" if data.onset_known else "dernier moment vu normal"
        if onset > now + timedelta(minutes=1):
            raise InvalidInput(f"L'heure du {what} est dans le futur.", field="last_known_well_at")
        if onset > arrival:
            raise InvalidInput(f"L'heure du {what} est postérieure à l'arrivée.", field="last_known_well_at")
        if onset < arrival - timedelta(days=7):
            raise InvalidInput(
                f"L'heure du {what} précède l'arrivée de plus de 7 jours.", field="last_known_well_at"
            )
    return onset, min(arrival, now)


async def create_alert(
    session: AsyncSession, principal: Principal, settings: Settings, data: AlertCreate
) -> StrokeCase:
    """The stroke alert from the emergency department: one form, under 30 seconds. The neurologist on duty is paged
    at once (on-call routing of the stroke offer, escalating to the backup)."""
    now = clock.now()
    onset, arrival = _check_times(data, now)
    offer = await _alert_offer(session, principal, data.offer_id)
    patient_id = data.patient_id
    if patient_id is None:
        identity = data.provisional_identity
        assert identity is not None  # the schema requires one of the two
        traits = parse_input(  # the registry's rules on names and dates, with the field named when broken
            PatientCreate,
            {
                "birth_family_name": identity.birth_family_name,
                "birth_given_names": identity.birth_given_names,
                "birth_date": identity.birth_date,
                "sex": identity.sex,
                "birth_place_insee": "99999",  # unknown: the identity stays provisional until reconciled
                "organisation_id": data.organisation_id,
                "confirm_duplicate": True,  # no time to search now; identity vigilance reconciles it later
            },
        )
        patient, _warnings = await register_patient(session, principal, traits)
        patient_id = patient.id
    # Created and sent at once; the patient's visibility is checked there. The emergency exemption is used only if
    # no consent is on file (a stroke alert does not wait for one: CSP L.1111-4, urgence).
    request = await requests_service.create_and_send(
        session,
        principal,
        settings,
        RequestCreate(
            offer_id=offer.id,
            patient_id=patient_id,
            requester_organisation_id=data.organisation_id,
            urgent=True,
            answers={"summary": data.summary} if data.summary else {},
        ),
        RequestSend(emergency_exemption=EMERGENCY_EXEMPTION),
    )
    # The case and its two milestones are written with the audit row's flush (one statement per table).
    case = StrokeCaseRepository(session).stage(
        StrokeCase(
            id=uuid.uuid4(),
            request_id=request.id,
            patient_id=patient_id,
            organisation_id=request.requester_organisation_id,
            expert_organisation_id=request.expert_organisation_id,
            status=CaseStatus.ALERT,
            onset_known=data.onset_known,
            last_known_well_at=onset,
            onset_note=data.onset_note,
            arrival_at=arrival,
            alert_at=now,
            callback_phone=data.callback_phone,
            accession_number=data.accession_number,
            created_by_account_id=principal.account_id,
            created_by_name=principal.display_name[:200],
        )
    )
    milestones = MilestoneRepository(session)
    for kind, at in ((Milestone.ARRIVAL, arrival), (Milestone.ALERT, now)):
        milestones.stage(
            StrokeMilestone(
                case_id=case.id,
                kind=kind,
                at=at,
                recorded_by_account_id=principal.account_id,
                recorded_by_name=principal.display_name[:200],
            )
        )
    await _audit(session, principal, case, Action.CREATE, offer=offer.title)
    # Not urgent: the page to the neurologist on duty (oncall.page) is what rings; this one refreshes the stroke
    # pages of both hospitals, so that a second alarm does not cover the page's.
    await _announce(session, case, "stroke.alert")
    return case


# --- reading ---------------------------------------------------------------------------------------------------


async def _visible(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> StrokeCase:
    case = await StrokeCaseRepository(session).get_visible(principal, case_id)
    if case is None:
        raise CaseNotFound()
    return case


async def _for_update(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> StrokeCase:
    await _visible(session, principal, case_id)
    case = await StrokeCaseRepository(session).get_for_update(case_id)
    if case is None:
        raise CaseNotFound()
    return case


async def _request(session: AsyncSession, case: StrokeCase) -> TeleRequest:
    request = await RequestRepository(session).get(case.request_id)
    assert request is not None  # a foreign key
    return request


def _is_emergency_side(principal: Principal, case: StrokeCase) -> bool:
    return case.organisation_id in principal.clinical_organisation_ids


def _is_neurologist(principal: Principal, case: StrokeCase) -> bool:
    return case.neurologist_professional_id is not None and case.neurologist_professional_id == (
        principal.professional_id
    )


def _require_open(case: StrokeCase) -> None:
    if case.status == CaseStatus.CLOSED:
        raise Conflict("Le dossier AVC est clos : son compte rendu est signé.", field="status")


async def get_case(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> StrokeCase:
    case = await _visible(session, principal, case_id)
    await _audit(session, principal, case, Action.READ)
    return case


@dataclass(frozen=True)
class Counter:
    code: str
    label: str
    minutes: int | None  # elapsed between its two milestones (or until now while running)
    target_minutes: int
    running: bool

    @property
    def state(self) -> str:
        if self.minutes is None:
            return "unknown"
        if self.minutes > self.target_minutes:
            return "passed"
        return "ok" if not self.running or self.minutes < self.target_minutes - 5 else "near"


def _minutes(start: datetime, end: datetime) -> int:
    return int((clock.as_utc(end) - clock.as_utc(start)).total_seconds() // 60)


def counters(
    case: StrokeCase, stamps: dict[Milestone, datetime], now: datetime, rules: clinical.StrokeRules
) -> list[Counter]:
    """Door-to-imaging and door-to-needle against their targets, running until their milestone is stamped."""
    result = []
    for code, label, milestone, target in (
        (
            "door_to_imaging",
            "Porte → imagerie",
            Milestone.IMAGING_AVAILABLE,
            rules.door_to_imaging_target_minutes,
        ),
        ("door_to_needle", "Porte → aiguille", Milestone.NEEDLE, rules.door_to_needle_target_minutes),
    ):
        end = stamps.get(milestone)
        if (
            end is None
            and milestone == Milestone.NEEDLE
            and case.disposition not in (None, Disposition.THROMBOLYSIS)
        ):
            result.append(Counter(code, label, None, target, False))  # no needle for this patient
            continue
        result.append(Counter(code, label, _minutes(case.arrival_at, end or now), target, end is None))
    return result


@dataclass
class CaseView:
    case: StrokeCase
    request: TeleRequest
    patient_name: str
    identity_status: str
    now: datetime
    rules: clinical.StrokeRules
    windows: list[clinical.WindowState]
    counters: list[Counter]
    milestones: dict[Milestone, StrokeMilestone]
    nihss: list[NihssAssessment]
    checklist: clinical.ChecklistResult
    doses: dict[str, clinical.Dose]
    emergency_side: bool
    neurologist: bool
    may_acknowledge: bool
    organisation_names: dict[uuid.UUID, str]
    party: bool = True  # of the two hospitals of the act (not only the receiving centre): may join the call
    room: VideoRoom | None = None  # the case's call, once opened
    studies: list[ImagingStudy] = field(default_factory=list)  # images attached to the case (oldest first)

    @property
    def latest_nihss(self) -> dict[NihssRole, NihssAssessment]:
        latest: dict[NihssRole, NihssAssessment] = {}
        for assessment in self.nihss:
            latest[assessment.role] = assessment
        return latest


def _measures(case: StrokeCase) -> clinical.Measures:
    return clinical.Measures(
        systolic=case.systolic,
        diastolic=case.diastolic,
        glucose_mmol=case.glucose_mmol,
        platelets=case.platelets,
        inr=case.inr,
        weight_kg=case.weight_kg,
        anticoagulant=case.anticoagulant,
        last_anticoagulant_at=clock.as_utc(case.last_anticoagulant_at)
        if case.last_anticoagulant_at
        else None,
    )


async def case_view(
    session: AsyncSession, principal: Principal, settings: Settings, case_id: uuid.UUID
) -> CaseView:
    """Everything the case page shows, computed with the server's clock (the page only counts on from it)."""
    case = await get_case(session, principal, case_id)
    now = clock.now()
    rules = rules_of(settings)
    request = await _request(session, case)
    access = await get_patient(session, principal, case.patient_id)
    milestones = {m.kind: m for m in await MilestoneRepository(session).for_case(case.id)}
    stamps = {kind: clock.as_utc(m.at) for kind, m in milestones.items()}
    onset = clock.as_utc(case.last_known_well_at) if case.last_known_well_at else None
    doses = {}
    if case.weight_kg:
        for agent in ("alteplase", "tenecteplase"):
            doses[agent] = clinical.thrombolysis_dose(agent, case.weight_kg, rules)
    paged = await RequestRepository(session).was_paged(request.id, principal.professional_id)
    organisation_ids = {case.organisation_id, case.expert_organisation_id}
    if case.receiving_organisation_id:
        organisation_ids.add(case.receiving_organisation_id)
    return CaseView(
        case=case,
        request=request,
        patient_name=access.patient.display_name,
        identity_status=access.patient.identity_status.value,
        now=now,
        rules=rules,
        windows=clinical.window_states(onset, now, rules),
        counters=counters(case, stamps, now, rules),
        milestones=milestones,
        nihss=await NihssRepository(session).for_case(case.id),
        checklist=clinical.evaluate_checklist(case.checklist or {}, _measures(case), now, rules),
        doses=doses,
        emergency_side=_is_emergency_side(principal, case),
        neurologist=_is_neurologist(principal, case),
        may_acknowledge=case.status == CaseStatus.ALERT
        and (paged or case.expert_organisation_id in principal.clinical_organisation_ids),
        organisation_names=await StrokeCaseRepository(session).organisation_names(organisation_ids),
        party=bool(
            {case.organisation_id, case.expert_organisation_id} & set(principal.clinical_organisation_ids)
        )
        or _is_neurologist(principal, case),
        room=await video_service.room_of_request(session, case.request_id),
        studies=await imaging_service.act_studies(session, principal, case.request_id),
    )


async def list_cases(
    session: AsyncSession, principal: Principal, *, open_only: bool = True
) -> list[StrokeCase]:
    cases = await StrokeCaseRepository(session).list_visible(principal, open_only=open_only)
    for case in cases:
        await _audit(session, principal, case, Action.SEARCH)
    return cases


async def patient_names(
    session: AsyncSession, principal: Principal, cases: list[StrokeCase]
) -> dict[uuid.UUID, str]:
    """Names for the list of cases (already audited by ``list_cases``)."""
    return await visible_names(session, principal, [case.patient_id for case in cases])


async def receiving_centres(session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """Hospitals a patient may be transferred to (thrombectomy, neurosurgery)."""
    return await StrokeCaseRepository(session).hospitals()


# --- the neurologist takes the case ----------------------------------------------------------------------------


async def acknowledge(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> StrokeCase:
    """The paged neurologist takes the alert: the request is accepted (paging and escalation stop), the case is
    theirs and the acknowledgement is stamped. Two neurologists at once: exactly one wins (the request's rule)."""
    case = await _for_update(session, principal, case_id)
    if case.status != CaseStatus.ALERT:
        raise Conflict(f"Alerte déjà prise en charge par {case.neurologist_name}.", field="status")
    await requests_service.accept_request(session, principal, case.request_id)
    case.neurologist_professional_id = principal.professional_id
    case.neurologist_name = principal.display_name[:200]
    case.status = CaseStatus.IN_PROGRESS
    await _stamp(session, principal, case, Milestone.ACKNOWLEDGED, clock.now())
    await _audit(session, principal, case, Action.UPDATE, step="acknowledged")
    await _announce(session, case, "stroke.updated")
    return case


async def _stamp(
    session: AsyncSession,
    principal: Principal,
    case: StrokeCase,
    kind: Milestone,
    at: datetime,
    reason: str = "",
) -> StrokeMilestone:
    milestones = MilestoneRepository(session)
    existing = await milestones.find(case.id, kind)
    if existing is not None:
        raise Conflict(
            f"« {MILESTONE_LABEL[kind]} » est déjà horodaté ({clock.format_paris(existing.at)}).",
            field="kind",
        )
    return await milestones.add(
        StrokeMilestone(
            case_id=case.id,
            kind=kind,
            at=at,
            recorded_by_account_id=principal.account_id,
            recorded_by_name=principal.display_name[:200],
            correction_reason=reason,
        )
    )


async def stamp_milestone(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, data: MilestoneStamp
) -> StrokeMilestone:
    """One click stamps a milestone at the server's time. A time given by hand (the needle was at 02:58, noted on
    paper) must be in the past, after the arrival, and comes with its reason: both are kept."""
    case = await _for_update(session, principal, case_id)
    _require_open(case)
    if data.kind not in STAMPABLE:
        raise InvalidInput(
            f"« {MILESTONE_LABEL[data.kind]} » s'horodate par le déroulé du dossier, pas à la main.",
            field="kind",
        )
    if data.kind == Milestone.NEEDLE and case.disposition != Disposition.THROMBOLYSIS:
        raise Conflict("L'heure de l'aiguille suit une décision de thrombolyse.", field="kind")
    now = clock.now()
    at = now
    reason = data.correction_reason.strip()
    if data.at is not None:
        at = clock.as_utc(data.at)
        if at > now:
            raise InvalidInput("Une heure corrigée ne peut pas être dans le futur.", field="at")
        if at < clock.as_utc(case.arrival_at):
            raise InvalidInput("Une heure corrigée ne peut pas précéder l'arrivée du patient.", field="at")
        if len(reason) < 3:
            raise InvalidInput("Motif requis pour une heure saisie à la main.", field="correction_reason")
    milestone = await _stamp(session, principal, case, data.kind, at, reason)
    await _audit(session, principal, case, Action.UPDATE, milestone=data.kind.value, corrected=bool(reason))
    await _announce(session, case, "stroke.updated")
    return milestone


# --- clinical data ---------------------------------------------------------------------------------------------


async def record_nihss(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, data: NihssCreate
) -> NihssAssessment:
    """An NIHSS by the emergency doctor, or the neurologist's (confirmation); all are kept."""
    case = await _for_update(session, principal, case_id)
    _require_open(case)
    if _is_neurologist(principal, case):
        role = NihssRole.NEUROLOGIST
    elif _is_emergency_side(principal, case):
        role = NihssRole.EMERGENCY
    else:
        raise Forbidden("Seuls l'équipe des urgences et le neurologue qui a pris l'alerte cotent le NIHSS.")
    result = clinical.score_nihss(data.items)
    assessment = await NihssRepository(session).add(
        NihssAssessment(
            case_id=case.id,
            role=role,
            items=result.items,
            total=result.total,
            assessed_at=clock.now(),
            assessed_by_account_id=principal.account_id,
            assessed_by_name=principal.display_name[:200],
        )
    )
    await _audit(session, principal, case, Action.UPDATE, nihss=result.total, role=role.value)
    await _announce(session, case, "stroke.updated")
    return assessment


def _require_clinician_of_case(principal: Principal, case: StrokeCase) -> None:
    if not (_is_neurologist(principal, case) or _is_emergency_side(principal, case)):
        raise Forbidden(
            "Seuls l'équipe des urgences et le neurologue qui a pris l'alerte modifient ce dossier."
        )


async def record_measures(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, data: MeasuresUpdate
) -> StrokeCase:
    """Blood pressure, glucose, weight, platelets, INR, anticoagulant: the values given replace the previous ones
    (a field left out keeps its value); the audit keeps each change."""
    case = await _for_update(session, principal, case_id)
    _require_open(case)
    _require_clinician_of_case(principal, case)
    values = data.model_dump(exclude_unset=True)
    if not values:
        raise InvalidInput("Aucune mesure transmise.", field="systolic")
    if "anticoagulant" in values and values["anticoagulant"] not in (None, *clinical.ANTICOAGULANTS):
        raise InvalidInput(
            "Anticoagulant inconnu : " + ", ".join(clinical.ANTICOAGULANTS) + ".", field="anticoagulant"
        )
    now = clock.now()
    if values.get("last_anticoagulant_at") is not None:
        taken = clock.as_utc(values["last_anticoagulant_at"])
        if taken > now + timedelta(minutes=1):
            raise InvalidInput(
                "La dernière prise d'anticoagulant est dans le futur.", field="last_anticoagulant_at"
            )
        values["last_anticoagulant_at"] = taken
    for key, value in values.items():
        setattr(case, key, value)
    case.measures_at = now
    case.measures_by_name = principal.display_name[:200]
    await session.flush()
    await _audit(session, principal, case, Action.UPDATE, measures=sorted(values))
    await _announce(session, case, "stroke.updated")
    return case


async def record_checklist(
    session: AsyncSession, principal: Principal, settings: Settings, case_id: uuid.UUID, data: ChecklistUpdate
) -> clinical.ChecklistResult:
    """Answers to the thrombolysis checklist (merged with the previous ones); measured items are decided by the
    measures. Returns the evaluated checklist."""
    case = await _for_update(session, principal, case_id)
    _require_open(case)
    _require_clinician_of_case(principal, case)
    merged = {**(case.checklist or {}), **data.answers}
    result = clinical.evaluate_checklist(merged, _measures(case), clock.now(), rules_of(settings))
    case.checklist = merged
    case.checklist_at = clock.now()
    case.checklist_by_name = principal.display_name[:200]
    await session.flush()
    await _audit(session, principal, case, Action.UPDATE, checklist=sorted(data.answers))
    await _announce(session, case, "stroke.updated")
    return result


# --- the decision ----------------------------------------------------------------------------------------------


async def decide(
    session: AsyncSession, principal: Principal, settings: Settings, case_id: uuid.UUID, data: DecisionCreate
) -> StrokeCase:
    """The neurologist's decision. Thrombolysis needs every absolute contraindication answered; one present (or
    the IV window passed or unknown) needs a written override; the dose is computed here from the weight. A
    thrombectomy names its receiving centre and transport, and that centre is alerted and sees the case."""
    case = await _for_update(session, principal, case_id)
    _require_open(case)
    if not _is_neurologist(principal, case):
        raise Forbidden("Seul le neurologue qui a pris l'alerte décide.")
    if case.disposition is not None:
        raise Conflict(f"Décision déjà enregistrée par {case.decided_by_name}.", field="disposition")
    rules = rules_of(settings)
    now = clock.now()
    reasons = data.reasons.strip()
    override = data.override_reason.strip()
    overridden: list[str] = []
    dose = None
    if data.disposition == Disposition.THROMBOLYSIS:
        checklist = clinical.evaluate_checklist(case.checklist or {}, _measures(case), now, rules)
        if checklist.unanswered:
            labels = [i.item.label for i in checklist.items if i.item.code in checklist.unanswered]
            raise Conflict(
                "Contre-indications absolues sans réponse : "
                + " ; ".join(labels)
                + ". Répondez avant de décider.",
                field="checklist",
            )
        overridden = list(checklist.blocking)
        onset = clock.as_utc(case.last_known_well_at) if case.last_known_well_at else None
        iv = next(w for w in clinical.window_states(onset, now, rules) if w.code == "iv")
        if iv.state in ("passed", "unknown"):
            overridden.append(WINDOW_OVERRIDE)
        if overridden and len(override) < REASON_MIN:
            what = [i.item.label for i in checklist.items if i.item.code in checklist.blocking]
            if WINDOW_OVERRIDE in overridden:
                what.append("hors de la fenêtre de la thrombolyse IV (ou début inconnu)")
            raise Conflict(
                "Thrombolyse contre-indiquée : " + " ; ".join(what) + ". Pour passer outre, écrivez le motif "
                f"({REASON_MIN} caractères au moins).",
                field="override_reason",
            )
        dose = clinical.thrombolysis_dose(data.agent, case.weight_kg, rules)
    else:
        if len(reasons) < 3:
            raise InvalidInput("Motif de la décision requis (pourquoi pas de thrombolyse).", field="reasons")
    receiving = None
    if data.thrombectomy or data.disposition == Disposition.TRANSFER:
        if data.receiving_organisation_id is None:
            raise InvalidInput("Centre receveur requis pour un transfert.", field="receiving_organisation_id")
        receiving = await OrganisationRepository(session).get(data.receiving_organisation_id)
        if receiving is None:
            raise InvalidInput("Centre receveur inconnu.", field="receiving_organisation_id")
        if data.transport_mode is None:
            raise InvalidInput("Mode de transport requis pour un transfert.", field="transport_mode")
    case.disposition = data.disposition
    case.decision_reasons = reasons
    case.override_reason = override if overridden else ""
    case.overridden_items = overridden
    case.thrombectomy = data.thrombectomy
    case.receiving_organisation_id = receiving.id if receiving else None
    case.transport_mode = data.transport_mode if receiving else None
    if dose is not None:
        case.agent = dose.agent
        case.dose_mg, case.bolus_mg, case.infusion_mg = dose.total_mg, dose.bolus_mg, dose.infusion_mg
        case.dose_text = dose.text
    case.decided_at = now
    case.decided_by_account_id = principal.account_id
    case.decided_by_name = principal.display_name[:200]
    case.status = CaseStatus.DECIDED
    await session.flush()
    await _stamp(session, principal, case, Milestone.DECISION, now)
    if receiving is not None:
        await link_patient_to_organisation(
            session, principal, case.patient_id, receiving.id, f"avc:{case.id}"
        )
    await _audit(
        session,
        principal,
        case,
        Action.UPDATE,
        decision=data.disposition.value,
        thrombectomy=data.thrombectomy,
        overridden=overridden,
    )
    await _announce(session, case, "stroke.updated")
    if receiving is not None:
        await _alert_receiving_centre(session, case, receiving.name)
    return case


# --- video and images ------------------------------------------------------------------------------------------


async def open_video(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> VideoRoom:
    """One click from the case opens its call (created the first time, with the neurologist who took the alert as
    host; the emergency side waits in the waiting room until she admits them). The first opening stamps « vidéo
    commencée » unless it was stamped by hand (a call on another system)."""
    case = await _for_update(session, principal, case_id)
    _require_open(case)
    if case.status == CaseStatus.ALERT or case.neurologist_professional_id is None:
        raise Conflict(
            "La vidéo s'ouvre quand le neurologue a pris l'alerte : il n'a pas encore répondu.",
            field="status",
        )
    room, created = await video_service.open_request_room(
        session, principal, case.request_id, host_professional_id=case.neurologist_professional_id
    )
    if created:
        if await MilestoneRepository(session).find(case.id, Milestone.VIDEO_STARTED) is None:
            await _stamp(session, principal, case, Milestone.VIDEO_STARTED, clock.now())
        await _audit(session, principal, case, Action.UPDATE, video_room=str(room.id))
        await _announce(session, case, "stroke.updated")
    return room


async def video_room(session: AsyncSession, principal: Principal, case_id: uuid.UUID) -> VideoRoom | None:
    """The case's call, if one was opened."""
    case = await _visible(session, principal, case_id)
    return await video_service.room_of_request(session, case.request_id)


async def case_study(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, study_uid: str | None
) -> imaging_service.ViewerCase | None:
    """A study of the case for the viewer (the one asked for, else the latest), or None while there is none."""
    case = await _visible(session, principal, case_id)
    studies = await imaging_service.act_studies(session, principal, case.request_id)
    if not studies:
        return None
    chosen = next((s for s in studies if s.study_uid == study_uid), None) if study_uid else studies[-1]
    if chosen is None:
        raise NotFound("Étude introuvable dans ce dossier.")
    return await imaging_service.act_viewer(session, principal, case.request_id, chosen.study_uid)


async def set_expected_imaging(
    session: AsyncSession, principal: Principal, case_id: uuid.UUID, data: ImagingExpected
) -> StrokeCase:
    """The emergency side gives the head CT's accession number (from the RIS) so that the study joins the case by
    itself when the scanner sends it."""
    case = await _for_update(session, principal, case_id)
    _require_open(case)
    if not _is_emergency_side(principal, case):
        raise Forbidden("Le n° d'examen est donné par les urgences qui ont lancé l'alerte.")
    case.accession_number = data.accession_number
    await session.flush()
    await _audit(session, principal, case, Action.UPDATE, accession_number=data.accession_number)
    # The scanner may have sent the images before the number was typed: those join now, on the same rules.
    since = clock.now() - timedelta(hours=IMAGING_WINDOW_HOURS)
    for study in await imaging_service.arrived_with_accession(
        session, case.organisation_id, data.accession_number, since
    ):
        await _join_study(session, case, study, announce=False)
    await _announce(session, case, "stroke.updated")
    return case


IMAGING_SYSTEM_NAME = "Système (dossier AVC : réception des images)"
IMAGING_WINDOW_HOURS = 24  # a study joins the open cases of its hospital alerted within this many hours


@imaging_service.on_study_arrival
async def attach_arriving_study(session: AsyncSession, study: ImagingStudy) -> None:
    """A study arriving from a hospital with an open stroke case (alerted in the last 24 hours) joins that case:
    - when the case has an accession number: the study must carry the same one, and be the case's patient (surely
      matched, or its header's name, birth date and sex agreeing with the case's identity, provisional or not);
    - when it has none: the study must already be surely matched to the case's patient (INS or IPP with traits).
    Anything less sure joins nothing: the study waits in the identity-vigilance queue as any other. The first
    study stamps « imagerie disponible » (the door-to-imaging counter stops) and both sides are told."""
    since = clock.now() - timedelta(hours=IMAGING_WINDOW_HOURS)
    for case in await StrokeCaseRepository(session).awaiting_images(study.organisation_id, since):
        if case.accession_number:
            if study.accession_number != case.accession_number:
                continue
        elif study.patient_id != case.patient_id:
            continue
        if await _join_study(session, case, study):
            return


async def _join_study(
    session: AsyncSession, case: StrokeCase, study: ImagingStudy, *, announce: bool = True
) -> bool:
    """Attach ``study`` to the case's act if its identity is sure (imaging decides); the first study stamps
    « imagerie disponible ». True when it joined."""
    patient = await PatientRepository(session).get(case.patient_id)
    if patient is None:  # pragma: no cover - a foreign key
        return False
    link = await imaging_service.attach_arriving_study(
        session, study, case.request_id, patient, by_name=IMAGING_SYSTEM_NAME
    )
    if link is None:
        return False
    milestones = MilestoneRepository(session)
    if await milestones.find(case.id, Milestone.IMAGING_AVAILABLE) is None:
        await milestones.add(
            StrokeMilestone(
                case_id=case.id,
                kind=Milestone.IMAGING_AVAILABLE,
                at=clock.now(),
                recorded_by_account_id=None,
                recorded_by_name=IMAGING_SYSTEM_NAME,
            )
        )
    await _audit(session, None, case, Action.UPDATE, study_attached=study.study_uid)
    if announce:
        await _announce(session, case, "stroke.updated")
    return True


# --- compte rendu ------------------------------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return clock.format_paris(value) if value else "non renseigné"


async def report_draft(
    session: AsyncSession, principal: Principal, settings: Settings, case_id: uuid.UUID
) -> dict[str, Any]:
    """The compte rendu written from the case (R.6316-4 CSP): the neurologist reads it, may complete the
    conclusion, and signs. Participants and technical incidents come from the case and its call."""
    view = await case_view(session, principal, settings, case_id)
    case = view.case
    if case.disposition is None:
        raise Conflict("Le compte rendu se rédige une fois la décision enregistrée.", field="disposition")
    names = view.organisation_names
    lines = [
        f"Alerte AVC des urgences de {names.get(case.organisation_id, '')} le {_when(case.alert_at)}, "
        f"lancée par {case.created_by_name} (rappel : {case.callback_phone}).",
        (
            f"Début des symptômes : {_when(case.last_known_well_at)}."
            if case.onset_known
            else "Heure de début inconnue (AVC du réveil ou sans témoin) ; dernier moment vu normal : "
            f"{_when(case.last_known_well_at)}."
        )
        + (f" {case.onset_note}." if case.onset_note else ""),
        f"Arrivée aux urgences : {_when(case.arrival_at)}.",
    ]
    latest = view.latest_nihss
    for role, label in ((NihssRole.EMERGENCY, "urgentiste"), (NihssRole.NEUROLOGIST, "neurologue")):
        if role in latest:
            a = latest[role]
            lines.append(f"NIHSS ({label}, {a.assessed_by_name}, {_when(a.assessed_at)}) : {a.total}.")
    measures = []
    if case.systolic is not None:
        measures.append(f"PA {case.systolic}/{case.diastolic} mmHg")
    if case.glucose_mmol is not None:
        measures.append(f"glycémie {case.glucose_mmol:g} mmol/L")
    if case.platelets is not None:
        measures.append(f"plaquettes {case.platelets:,} /mm³".replace(",", " "))
    if case.inr is not None:
        measures.append(f"INR {case.inr:g}")
    if case.weight_kg is not None:
        measures.append(f"poids {case.weight_kg:g} kg")
    if case.anticoagulant:
        measures.append(
            "anticoagulant : "
            + clinical.ANTICOAGULANTS.get(case.anticoagulant, case.anticoagulant)
            + (f", dernière prise {_when(case.last_anticoagulant_at)}" if case.last_anticoagulant_at else "")
        )
    if measures:
        lines.append("Mesures : " + " ; ".join(measures) + ".")
    present = [i.item.label for i in view.checklist.items if i.item.code in view.checklist.blocking]
    lines.append(
        "Contre-indications absolues à la thrombolyse : "
        + (" ; ".join(present) if present else "aucune retenue")
        + "."
    )
    decision = f"Décision ({case.decided_by_name}, {_when(case.decided_at)}) : {DISPOSITION_LABELS[case.disposition]}."
    if case.decision_reasons:
        decision += f" Motifs : {case.decision_reasons}."
    if case.override_reason:
        decision += f" Passé outre aux contre-indications : {case.override_reason}."
    lines.append(decision)
    if case.thrombectomy is not None:
        lines.append("Thrombectomie : " + ("indiquée." if case.thrombectomy else "non indiquée."))
    if case.receiving_organisation_id:
        lines.append(
            f"Transfert vers {names.get(case.receiving_organisation_id, '')} "
            f"({TRANSPORT_LABELS[case.transport_mode] if case.transport_mode else 'transport à préciser'})."
        )
    stamps = [
        f"{MILESTONE_LABEL[kind]} {clock.format_paris(m.at)}"
        + (f" (corrigé : {m.correction_reason})" if m.correction_reason else "")
        for kind, m in sorted(view.milestones.items(), key=lambda item: clock.as_utc(item[1].at))
    ]
    lines.append("Jalons : " + " ; ".join(stamps) + ".")
    for counter in view.counters:
        if counter.minutes is not None and not counter.running:
            lines.append(
                f"{counter.label} : {counter.minutes} min (objectif ≤ {counter.target_minutes} min)."
            )
    prescriptions = "aucune"
    if case.disposition == Disposition.THROMBOLYSIS and case.dose_text:
        prescriptions = f"Thrombolyse intraveineuse : {case.dose_text}."
    participants = [
        {"name": case.created_by_name, "role": "médecin urgentiste requérant"},
        {
            "name": case.neurologist_name or principal.display_name,
            "role": "neurologue de garde (télé-expertise)",
        },
    ]
    performed_at = clock.as_utc(case.alert_at)
    duration = None
    incidents: list[str] = []
    room = await video_service.room_of_request(session, case.request_id)
    if room is not None:
        summary = await video_service.call_summary(session, principal, room.id)
        for name in summary.participants:
            if name not in {p["name"] for p in participants}:
                participants.append({"name": name, "role": "participant à l'appel vidéo"})
        duration = summary.duration_minutes
        incidents = summary.incidents
    return {
        "view": view,
        "conclusion": "\n".join(lines),
        "prescriptions": prescriptions,
        "participants": participants,
        "performed_at": performed_at,
        "duration_minutes": duration,
        "technical_incident": bool(incidents),
        "technical_incident_details": "; ".join(incidents),
    }


async def sign_report(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    store: BlobStore,
    case_id: uuid.UUID,
    data: ReportCreate,
) -> StrokeCase:
    """The neurologist signs the compte rendu: the opinion is answered with the coded decision, the report signed
    (hash, PDF) and the act closed; the case is closed and its call ends."""
    case = await _for_update(session, principal, case_id)
    _require_open(case)
    if not _is_neurologist(principal, case):
        raise Forbidden("Seul le neurologue qui a pris l'alerte signe le compte rendu.")
    if case.disposition is None:
        raise Conflict("Le compte rendu se rédige une fois la décision enregistrée.", field="disposition")
    request = await _request(session, case)
    if request.status != RequestStatus.ANSWERED:
        await requests_service.answer_request(
            session,
            principal,
            case.request_id,
            RequestAnswer(
                answers={"decision": case.disposition.value, "thrombectomy": bool(case.thrombectomy)},
                conclusion=data.conclusion,
            ),
        )
    await requests_service.sign_report(session, principal, settings, store, case.request_id, data)
    await requests_service.close_request(session, principal, case.request_id)
    await video_service.close_request_room(session, case.request_id)
    case.status = CaseStatus.CLOSED
    case.closed_at = clock.now()
    await session.flush()
    await _audit(session, principal, case, Action.UPDATE, step="report_signed")
    await _announce(session, case, "stroke.updated")
    return case


# --- quality dashboard -----------------------------------------------------------------------------------------

MONTHS_FR = ("janvier février mars avril mai juin juillet août septembre octobre novembre décembre").split()


@dataclass(frozen=True)
class Dashboard:
    organisation_id: uuid.UUID
    organisation_name: str
    month: str  # YYYY-MM
    month_label: str  # « décembre 2026 »
    previous_month: str
    next_month: str
    quality: quality.MonthQuality
    organisations: list[tuple[uuid.UUID, str]]


def _month_bounds(month: str) -> tuple[datetime, datetime, str, str]:
    """A month in Paris time, as UTC bounds [start, end), and the previous and next months."""
    try:
        year, number = (int(part) for part in month.split("-"))
        start = datetime(year, number, 1, tzinfo=clock.PARIS)
    except ValueError:
        raise InvalidInput("Mois attendu au format AAAA-MM (ex. 2026-12).", field="mois") from None
    if not 2000 <= year <= 2100:
        raise InvalidInput("Mois attendu au format AAAA-MM (ex. 2026-12).", field="mois")
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=clock.PARIS)
    previous = datetime(year - (number == 1), (number - 2) % 12 + 1, 1)
    return (
        clock.as_utc(start),
        clock.as_utc(following),
        f"{previous.year:04d}-{previous.month:02d}",
        f"{following.year:04d}-{following.month:02d}",
    )


def current_month() -> str:
    now = clock.now().astimezone(clock.PARIS)
    return f"{now.year:04d}-{now.month:02d}"


async def dashboard(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    organisation_id: uuid.UUID | None,
    month: str | None,
) -> Dashboard:
    """A hospital's stroke pathway over one month (Paris time): counts, rates and delays, with no patient
    identity. Readable by the hospital's clinicians and by the stroke centre that answers its alerts."""
    repo = StrokeCaseRepository(session)
    rows = await repo.dashboard_organisations(principal)
    if not rows:
        raise Forbidden("Le tableau de bord TéléAVC est réservé aux établissements de la filière.")
    organisations = [(organisation_id, name) for organisation_id, name, _alerts in rows]
    allowed = dict(organisations)
    if (
        organisation_id is None
    ):  # by default: one's own hospital if it raises alerts, else the first that does
        own = principal.clinical_organisation_ids
        ranked = sorted(rows, key=lambda row: (not row[2], row[0] not in own))
        organisation_id = ranked[0][0]
    if organisation_id not in allowed:
        raise NotFound("Établissement introuvable dans la filière TéléAVC.")
    month = month or current_month()
    start, end, previous_month, next_month = _month_bounds(month)
    cases = await repo.of_organisation(organisation_id, start, end)
    stamps: dict[uuid.UUID, dict[Milestone, datetime]] = {case.id: {} for case in cases}
    for milestone in await MilestoneRepository(session).for_cases([case.id for case in cases]):
        stamps[milestone.case_id][milestone.kind] = clock.as_utc(milestone.at)
    rules = rules_of(settings)
    result = quality.month_quality(
        [
            quality.case_times(
                case_id=case.id,
                alert_at=case.alert_at,
                onset_known=case.onset_known,
                last_known_well_at=case.last_known_well_at,
                disposition=case.disposition,
                thrombectomy=case.thrombectomy,
                stamps=stamps[case.id],
            )
            for case in cases
        ],
        door_to_imaging_target=rules.door_to_imaging_target_minutes,
        door_to_needle_target=rules.door_to_needle_target_minutes,
    )
    await record_access(
        session,
        principal,
        action=Action.SEARCH,
        object_type="StrokeDashboard",
        object_id=organisation_id,
        patient_id=None,
        details={"month": month, "cases": len(cases)},
    )
    year, number = month.split("-")
    return Dashboard(
        organisation_id=organisation_id,
        organisation_name=allowed[organisation_id],
        month=month,
        month_label=f"{MONTHS_FR[int(number) - 1]} {year}",
        previous_month=previous_month,
        next_month=next_month,
        quality=result,
        organisations=organisations,
    )


def dashboard_csv(board: Dashboard) -> str:
    return quality.to_csv(board.organisation_name, board.month, board.quality)


# --- events and audit ------------------------------------------------------------------------------------------


async def _audit(
    session: AsyncSession, principal: Principal | None, case: StrokeCase, action: str, **details: Any
):
    await record_access(
        session,
        principal,
        action=action,
        object_type="StrokeCase",
        object_id=case.id,
        patient_id=case.patient_id,
        details=details,
    )


async def _alert_receiving_centre(session: AsyncSession, case: StrokeCase, centre_name: str) -> None:
    """After commit: the receiving centre's clinicians are alerted (urgent: it rings on their pages) that a patient
    is sent to them (for thrombectomy, or transferred); ids and the centre only, no patient identity."""
    recipients = await StrokeCaseRepository(session).clinician_accounts({case.receiving_organisation_id})
    publish_on_commit(
        session,
        Event(
            type="stroke.transfer",
            recipients=frozenset(recipients),
            data={
                "case_id": str(case.id),
                "status": case.status.value,
                "label": (
                    f"AVC : patient adressé pour thrombectomie à {centre_name}"
                    if case.thrombectomy
                    else f"AVC : patient transféré à {centre_name}"
                )[:200],
                "url": f"/avc/{case.id}",
            },
            urgent=True,
        ),
    )


async def _announce(session: AsyncSession, case: StrokeCase, kind: str) -> None:
    """After commit: both sides' clinicians (and the receiving centre's) learn that the case changed (ids and status
    only, no patient identity); their case pages and lists refresh themselves."""
    organisations = {case.organisation_id, case.expert_organisation_id}
    if case.receiving_organisation_id:
        organisations.add(case.receiving_organisation_id)
    recipients = await StrokeCaseRepository(session).clinician_accounts(organisations)
    request = await RequestRepository(session).get(case.request_id)
    if request is not None and request.assigned_account_id:
        recipients.add(request.assigned_account_id)
    publish_on_commit(
        session,
        Event(
            type=kind,
            recipients=frozenset(recipients),
            data={"case_id": str(case.id), "status": case.status.value},
        ),
    )
