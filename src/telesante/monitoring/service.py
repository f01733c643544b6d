"""Remote monitoring: programmes, enrolment with consent, readings from the patient page and from devices, rules
evaluated on arrival and on schedule, alerts and their triage (filter, interpretation, action).

Who may do what:
- a programme is run by a team, an organisation; its administrators create and revise it;
- a clinician who has the patient in care enrols them into any team's programme, with the patient's decision;
- the team (its monitoring operators) sees its worklist and acts on alerts; any clinician with the patient in care
  (care relationship) sees the enrolment, the readings and the alerts;
- readings come from the patient's page (link + PIN), from a device gateway account of the team, or from a
  clinician with the patient in care.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access, record_accesses
from telesante.auth.principal import Principal
from telesante.auth.security import hash_password, verify_password
from telesante.config import get_settings
from telesante.consents.models import ConsentDecision, ConsentGiver, ConsentScopeType
from telesante.consents.schemas import ConsentCreate
from telesante.consents.service import list_information_texts, record_consent
from telesante.directory.models import Role
from telesante.events.bus import Event
from telesante.events.service import publish_on_commit
from telesante.jobs.service import ensure_job, schedule_job
from telesante.kit import clock, cooperative
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from telesante.kit.holidays import is_public_holiday
from telesante.kit.models import uuid7
from telesante.monitoring import clinical, rules
from telesante.monitoring.models import (
    Alert,
    AlertAction,
    AlertStatus,
    Device,
    EducationSession,
    Enrolment,
    EnrolmentStatus,
    MonitoringProgramme,
    ReadingSource,
)
from telesante.monitoring.repository import (
    AlertRepository,
    DeviceRepository,
    EducationRepository,
    EnrolmentRepository,
    ObservationRepository,
    ProgrammeRepository,
)
from telesante.monitoring.schemas import (
    AlertInterpretation,
    EducationCreate,
    EnrolmentCreate,
    ProgrammeCreate,
    RulesReplay,
    RulesRevision,
)
from telesante.patients.service import link_patient_to_organisation, read_patient_data, require_patient_access
from telesante.scheduling import service as scheduling_service
from telesante.scheduling.schemas import AppointmentCreate

PIN_DIGITS = 6
MAX_PIN_FAILURES = 5  # then the link is locked until the team issues a new one
DEFAULT_DURATION_DAYS = (
    182  # six months when the prescription gives no end (renewable; docs/domains/monitoring.md)
)


def teams_of(principal: Principal) -> frozenset[uuid.UUID]:
    """The monitoring teams the principal belongs to: organisations where it holds the monitoring-operator role (a
    clinician of the same hospital outside the team neither sees the team's list nor acts on its alerts)."""
    return frozenset(
        grant.organisation_id
        for grant in principal.grants
        if grant.role == Role.MONITORING_OPERATOR and grant.organisation_id is not None
    )


# --- programmes -----------------------------------------------------------------------------------------------


def _template(code: str) -> rules.Programme:
    template = rules.PROGRAMMES.get(code)
    if template is None:
        raise InvalidInput(
            f"Programme « {code} » inconnu (programmes proposés : {', '.join(rules.PROGRAMMES)}).",
            field="code",
        )
    return template


async def create_programme(
    session: AsyncSession, principal: Principal, data: ProgrammeCreate
) -> MonitoringProgramme:
    """A team starts running a programme (from the shipped template), or revises its hours and declaration: each
    call makes a new version, which new enrolments use."""
    if not principal.can_administer(data.organisation_id):
        raise Forbidden("Seul un administrateur de l'établissement peut déclarer ses programmes.")
    template = _template(data.code)
    repo = ProgrammeRepository(session)
    previous = await repo.latest(data.organisation_id, data.code)
    if previous is not None:
        previous.current = False
    programme = await repo.add(
        MonitoringProgramme(
            organisation_id=data.organisation_id,
            code=data.code,
            version=(previous.version + 1) if previous else 1,
            title=template.title,
            current=True,
            declaration_reference=data.declaration_reference,
            team_name=data.team_name,
            team_phone=data.team_phone,
            days=data.days,
            opens=data.opens,
            closes=data.closes,
            # a new declaration (hours, phone, reference) keeps what the team revised: measures, rules, education
            measures=[dict(m) for m in previous.measures]
            if previous
            else [{"measure": key, "frequency": frequency} for key, frequency in template.measures],
            rules=[rules.rule_to_data(rule) for rule in (_rules(previous) if previous else template.rules)],
            education_plan=list(previous.education_plan if previous else template.education),
            created_by_name=principal.display_name[:200],
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="MonitoringProgramme",
        object_id=programme.id,
        details={"code": programme.code, "version": programme.version},
    )
    return programme


def _may_revise(
    principal: Principal, programme: MonitoringProgramme, *, reads_patients: bool = False
) -> None:
    """The programme's team revises its rules, and so may an administrator of the team's own organisation (not a
    regional one). Trying rules on past readings shows patients' data: the team only."""
    team = programme.organisation_id in teams_of(principal)
    if not team and programme.organisation_id not in principal.admin_organisation_ids():
        raise NotFound("Programme de télésurveillance introuvable.")
    if reads_patients and not team:
        raise Forbidden(
            "Essayer des règles sur les mesures des patients est réservé à l'équipe de télésurveillance."
        )


async def team_programmes(session: AsyncSession, principal: Principal) -> list[MonitoringProgramme]:
    """The current programmes of the principal's teams (and of the organisations it administers)."""
    return [
        programme
        for programme in await ProgrammeRepository(session).list_current()
        if programme.organisation_id in teams_of(principal)
        or programme.organisation_id in principal.admin_organisation_ids()
    ]


@dataclass
class ProgrammeView:
    programme: MonitoringProgramme
    rules: tuple[rules.Rule, ...]
    versions: list[MonitoringProgramme]  # newest first
    enrolled: int  # patients followed now, all versions
    template: rules.Programme | None


async def programme_view(
    session: AsyncSession, principal: Principal, programme_id: uuid.UUID
) -> ProgrammeView:
    programme = await get_programme(session, programme_id)
    _may_revise(principal, programme)
    repo = ProgrammeRepository(session)
    return ProgrammeView(
        programme,
        _rules(programme),
        await repo.versions(programme.organisation_id, programme.code),
        len(
            await EnrolmentRepository(session).active_in_team_programme(
                programme.organisation_id, programme.code
            )
        ),
        rules.PROGRAMMES.get(programme.code),
    )


async def revise_rules(
    session: AsyncSession, principal: Principal, programme_id: uuid.UUID, data: RulesRevision
) -> MonitoringProgramme:
    """A new version of the team's programme with revised rules (or the shipped template's measures and rules).
    The team's patients move to it unless asked otherwise; a patient's own thresholds must still fit, or nothing
    changes and the error names the follow-up."""
    programme = await get_programme(session, programme_id)
    _may_revise(principal, programme)
    repo = ProgrammeRepository(session)
    latest = await repo.latest(programme.organisation_id, programme.code)
    if latest is None or latest.id != programme.id:
        raise Conflict("Une version plus récente du programme existe : révisez la version en vigueur.")
    template = rules.PROGRAMMES.get(programme.code)
    if data.from_template:
        if template is None:
            raise InvalidInput("Ce programme n'a pas de modèle livré.", field="from_template")
        revised = template.rules
        measures = [{"measure": key, "frequency": frequency} for key, frequency in template.measures]
    else:
        revised = rules.parse_rule_set(data.rules)
        measures = [dict(m) for m in programme.measures]
        followed = {m["measure"] for m in measures}
        by_code = {rule.code: rule for rule in revised}
        for (
            rule
        ) in revised:  # a rule on a measure the programme did not ask for: the patients are asked for it
            for key in sorted(rules.measures_of(rule, by_code) - followed):
                measures.append({"measure": key, "frequency": "selon la prescription"})
                followed.add(key)
    moved = []
    if data.move_enrolments:
        for enrolment in await EnrolmentRepository(session).active_in_team_programme(
            programme.organisation_id, programme.code
        ):
            try:
                rules.with_overrides(revised, enrolment.overrides or {})
            except InvalidInput as exc:
                raise InvalidInput(
                    f"Suivi {enrolment.id} : seuils propres au patient incompatibles avec la révision — "
                    f"{exc.message}",
                    field="rules",
                ) from None
            moved.append(enrolment.id)
    latest.current = False
    new = await repo.add(
        MonitoringProgramme(
            organisation_id=programme.organisation_id,
            code=programme.code,
            version=programme.version + 1,
            title=programme.title,
            current=True,
            declaration_reference=programme.declaration_reference,
            team_name=programme.team_name,
            team_phone=programme.team_phone,
            days=list(programme.days),
            opens=programme.opens,
            closes=programme.closes,
            measures=measures,
            rules=[rules.rule_to_data(rule) for rule in revised],
            education_plan=list(
                template.education if data.from_template and template else programme.education_plan
            ),
            created_by_name=principal.display_name[:200],
            revision_note=data.note,
        )
    )
    await EnrolmentRepository(session).move_to_programme(moved, new.id)
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="MonitoringProgramme",
        object_id=new.id,
        details={
            "code": new.code,
            "version": new.version,
            "previous": programme.version,
            "moved": len(moved),
            "note": data.note[:200],
        },
    )
    return new


@dataclass
class ReplayRow:
    code: str
    description: str
    severity: str
    current: int  # alerts the rules in force would have raised over the period
    candidate: int  # alerts the revised rules would have raised
    patients_current: int
    patients_candidate: int


@dataclass
class ReplayReport:
    days: int
    start: datetime
    end: datetime
    enrolments: int
    readings: int
    rows: list[ReplayRow]
    examples: list[
        tuple[datetime, str, str]
    ]  # (when, patient, message) raised by the revision only; 20 at most


REPLAY_MAX_ENROLMENTS = 2000  # one request evaluates every reading of every patient: kept to seconds


async def replay_rules(
    session: AsyncSession, principal: Principal, programme_id: uuid.UUID, data: RulesReplay
) -> ReplayReport:
    """What revised rules would have done on the last ``days`` days of the team's patients, beside what the rules
    in force would have done (each patient's own thresholds applied to both). Nothing is stored but the audit of
    the readings read."""
    programme = await get_programme(session, programme_id)
    _may_revise(principal, programme, reads_patients=True)
    candidate = rules.parse_rule_set(data.rules)
    enrolments = await EnrolmentRepository(session).active_in_team_programme(
        programme.organisation_id, programme.code
    )
    if len(enrolments) > REPLAY_MAX_ENROLMENTS:
        raise InvalidInput(
            f"Rejeu limité à {REPLAY_MAX_ENROLMENTS} patients suivis ({len(enrolments)} ici).", field="rules"
        )
    programmes = await ProgrammeRepository(session).get_many({e.programme_id for e in enrolments})
    end = clock.now()
    start = end - timedelta(days=data.days)
    tuned_now = {e.id: enrolment_rules(programmes[e.programme_id], e) for e in enrolments}
    tuned_new = {}
    for enrolment in enrolments:
        overrides = {
            c: p for c, p in (enrolment.overrides or {}).items() if any(r.code == c for r in candidate)
        }
        try:
            tuned_new[enrolment.id] = rules.with_overrides(candidate, overrides)
        except InvalidInput:
            tuned_new[enrolment.id] = candidate
    history = max(
        [rules.lookback_days(r) for r in (*tuned_now.values(), *tuned_new.values())]
        + [
            rule.days
            for r in (*tuned_now.values(), *tuned_new.values())
            for rule in r
            if isinstance(rule, rules.Missing)
        ]
        + [1]
    )
    stored = await ObservationRepository(session).since(
        (e.id for e in enrolments), start - timedelta(days=history + 1)
    )
    names = await EnrolmentRepository(session).patient_names({e.patient_id for e in enrolments})
    counts: dict[str, list[int]] = {}
    patients: dict[str, list[set]] = {}
    examples: list[tuple[datetime, str, str]] = []
    total = 0
    for enrolment in enrolments:
        series = stored.get(enrolment.id, [])
        total += len(series)
        since = enrolment.started_at or enrolment.created_at
        before = rules.replay(tuned_now[enrolment.id], series, since, start, end)
        after = rules.replay(tuned_new[enrolment.id], series, since, start, end)
        for side, found in ((0, before), (1, after)):
            for _at, finding in found:
                counts.setdefault(finding.rule, [0, 0])[side] += 1
                patients.setdefault(finding.rule, [set(), set()])[side].add(enrolment.id)
        already = {(f.rule, f.message) for _at, f in before}
        for at, finding in after:
            if (finding.rule, finding.message) not in already and len(examples) < 20:
                examples.append((at, names.get(enrolment.patient_id, ""), finding.message))
    by_code_now = {rule.code: rule for rule in _rules(programme)}
    by_code_new = {rule.code: rule for rule in candidate}
    rows = []
    for code in dict.fromkeys([*by_code_now, *by_code_new]):
        rule = by_code_new.get(code) or by_code_now[code]
        current, revised = counts.get(code, [0, 0])
        seen = patients.get(code, [set(), set()])
        rows.append(
            ReplayRow(
                code,
                rules.describe(rule) if code in by_code_new else "(retirée par la révision)",
                rule.severity,
                current,
                revised,
                len(seen[0]),
                len(seen[1]),
            )
        )
    await record_accesses(
        session,
        principal,
        action=Action.READ,
        object_type="MonitoringObservation",
        entries=[(e.patient_id, e.patient_id, {"replay": True, "days": data.days}) for e in enrolments],
    )
    examples.sort(key=lambda example: example[0])
    return ReplayReport(data.days, start, end, len(enrolments), total, rows, examples)


async def list_programmes(session: AsyncSession, principal: Principal) -> list[MonitoringProgramme]:
    """The programmes a clinician may enrol into: every team's current version in the region."""
    return await ProgrammeRepository(session).list_current()


async def get_programme(session: AsyncSession, programme_id: uuid.UUID) -> MonitoringProgramme:
    programme = await ProgrammeRepository(session).get(programme_id)
    if programme is None:
        raise NotFound("Programme de télésurveillance introuvable.")
    return programme


# A programme version's rules never change (a revision is a new version): parsed once per process.
_PARSED: dict[uuid.UUID, tuple[rules.Rule, ...]] = {}


def _rules(programme: MonitoringProgramme) -> tuple[rules.Rule, ...]:
    parsed = _PARSED.get(programme.id)
    if parsed is None:
        parsed = _PARSED[programme.id] = tuple(rules.rule_from_data(data) for data in programme.rules)
    return parsed


def enrolment_rules(programme: MonitoringProgramme, enrolment: Enrolment) -> tuple[rules.Rule, ...]:
    if not enrolment.overrides:
        return _rules(programme)
    return rules.with_overrides(_rules(programme), enrolment.overrides)


def next_opening(programme: MonitoringProgramme, at: datetime, zone: str = "metropole") -> datetime | None:
    """None when ``at`` falls within the team's declared hours; otherwise when the team next looks (UTC)."""
    opens, closes = time.fromisoformat(programme.opens), time.fromisoformat(programme.closes)
    local = clock.to_paris(at)

    def working(day: date) -> bool:
        return day.isoweekday() in programme.days and not is_public_holiday(day, zone)

    if working(local.date()) and opens <= local.time() < closes:
        return None
    day = local.date() if local.time() < opens else local.date() + timedelta(days=1)
    for _ in range(30):
        if working(day):
            return clock.from_paris(datetime.combine(day, opens))
        day += timedelta(days=1)
    return None


# --- enrolment ------------------------------------------------------------------------------------------------


async def _current_text(session: AsyncSession, scope_type: ConsentScopeType, code: str) -> uuid.UUID:
    texts = await list_information_texts(session, scope_type, code)
    current = [text for text in texts if text.retired_at is None]
    if not current:
        raise Conflict(
            f"Aucune notice d'information publiée pour « {code} » : consentement impossible à recueillir."
        )
    return max(current, key=lambda text: text.published_at).id


async def enrol_patient(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, data: EnrolmentCreate
) -> Enrolment:
    """Enrol a patient into a programme, with their decision on the act and on the programme's data processing;
    a refusal is recorded too (the enrolment then stays "refused", and conventional follow-up was offered)."""
    access = await require_patient_access(session, principal, patient_id)
    programme = await get_programme(session, data.programme_id)
    if not programme.current:
        raise InvalidInput(
            "Cette version du programme a été remplacée : choisissez la version en vigueur.",
            field="programme_id",
        )
    refused = data.decision == ConsentDecision.REFUSED
    if refused and not data.conventional_follow_up_offered:
        raise InvalidInput(
            "Refus du patient : confirmez qu'un suivi conventionnel (sans télésurveillance) lui a été proposé.",
            field="conventional_follow_up_offered",
        )
    if data.given_by != ConsentGiver.PATIENT and not data.representative_name:
        raise InvalidInput(
            "Nom du représentant ou de la personne de confiance attendu.", field="representative_name"
        )
    today = clock.to_paris(clock.now()).date()
    starts_on = data.starts_on or today
    ends_on = data.ends_on or (starts_on + timedelta(days=DEFAULT_DURATION_DAYS))
    if not refused:
        if starts_on < today - timedelta(days=1):
            raise InvalidInput("Le suivi ne peut commencer dans le passé.", field="starts_on")
        if ends_on <= starts_on:
            raise InvalidInput("La fin du suivi doit suivre son début.", field="ends_on")
        rules.with_overrides(_rules(programme), data.overrides)  # refuses a bad override, naming it
        repo = EnrolmentRepository(session)
        if await repo.active_in_programme(patient_id, programme.code) is not None:
            raise Conflict(f"Le patient est déjà suivi dans le programme « {programme.title} ».")
        serials = [device.serial for device in data.devices]
        if len(set(serials)) != len(serials):
            raise InvalidInput("Le même appareil est cité deux fois.", field="devices")
        taken = await DeviceRepository(session).linked(serials)
        if taken:
            raise Conflict(
                f"Appareil déjà attribué à un autre patient suivi : {', '.join(sorted(taken))}.",
                field="devices",
            )
    consents = {}
    for scope_type, code in (
        (ConsentScopeType.ACT, "telesurveillance"),
        (ConsentScopeType.MONITORING_PROGRAMME, programme.code),
    ):
        consents[scope_type] = await record_consent(
            session,
            principal,
            patient_id,
            ConsentCreate(
                scope_type=scope_type,
                scope_code=code,
                decision=data.decision,
                information_text_id=await _current_text(session, scope_type, code),
                method=data.method,
                given_by=data.given_by,
                representative_name=data.representative_name,
                comment=data.refusal_reason if refused else "",
            ),
        )
    enrolment = await EnrolmentRepository(session).add(
        Enrolment(
            patient_id=patient_id,
            programme_id=programme.id,
            organisation_id=programme.organisation_id,
            programme_code=programme.code,
            status=EnrolmentStatus.REFUSED if refused else EnrolmentStatus.ACTIVE,
            indication=data.indication,
            prescriber_name=data.prescriber_name,
            starts_on=None if refused else starts_on,
            ends_on=None if refused else ends_on,
            started_at=None
            if refused
            else max(clock.now(), clock.from_paris(datetime.combine(starts_on, time()))),
            overrides={} if refused else data.overrides,
            act_consent_id=consents[ConsentScopeType.ACT].id,
            data_consent_id=consents[ConsentScopeType.MONITORING_PROGRAMME].id,
            conventional_follow_up_offered=data.conventional_follow_up_offered,
            refusal_reason=data.refusal_reason if refused else "",
            created_by_account_id=principal.account_id,
            created_by_name=principal.display_name[:200],
            last_reading_at=None,  # read from the readings (none yet): known without asking the database
        )
    )
    if not refused:
        for device in data.devices:
            DeviceRepository(session).stage(
                Device(enrolment_id=enrolment.id, serial=device.serial, kind=device.kind)
            )
        await session.flush()
        await link_patient_to_organisation(
            session, principal, patient_id, programme.organisation_id, f"monitoring:{enrolment.id}"
        )
        await schedule_evaluation(session, programme.organisation_id)
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="MonitoringEnrolment",
        object_id=enrolment.id,
        patient_id=patient_id,
        details={"programme": f"{programme.code} v{programme.version}", "status": enrolment.status.value},
        break_glass=access.via_break_glass,
    )
    if not refused:
        _announce(
            session,
            await EnrolmentRepository(session).operator_accounts({enrolment.organisation_id}),
            enrolment,
        )
    return enrolment


@dataclass
class EnrolmentView:
    enrolment: Enrolment
    programme: MonitoringProgramme
    rules: tuple[rules.Rule, ...]
    devices: list[Device]
    alerts: list[Alert]
    education: list[EducationSession]
    team_member: bool  # may act on alerts


async def get_enrolment(
    session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID, *, audit: bool = True
) -> EnrolmentView:
    """The enrolment with what a clinician with the patient in care reads about it (404 outside that scope)."""
    enrolment = await EnrolmentRepository(session).get(enrolment_id)
    if enrolment is None:
        raise NotFound("Suivi de télésurveillance introuvable.")
    if audit:
        await read_patient_data(session, principal, enrolment.patient_id, "MonitoringEnrolment")
    else:
        await require_patient_access(session, principal, enrolment.patient_id)
    programme = await get_programme(session, enrolment.programme_id)
    return EnrolmentView(
        enrolment,
        programme,
        enrolment_rules(programme, enrolment),
        await DeviceRepository(session).list_for_enrolment(enrolment.id),
        await AlertRepository(session).list_for_enrolment(enrolment.id),
        await EducationRepository(session).list_for_enrolment(enrolment.id),
        enrolment.organisation_id in teams_of(principal),
    )


async def list_patient_enrolments(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID
) -> list[Enrolment]:
    await read_patient_data(session, principal, patient_id, "MonitoringEnrolment")
    return await EnrolmentRepository(session).list_for_patient(patient_id)


async def _team_enrolment(session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID) -> Enrolment:
    """An enrolment the principal's team runs (404 outside care, 403 for a clinician outside the team)."""
    enrolment = await EnrolmentRepository(session).get(enrolment_id)
    if enrolment is None:
        raise NotFound("Suivi de télésurveillance introuvable.")
    await require_patient_access(session, principal, enrolment.patient_id)
    if enrolment.organisation_id not in teams_of(principal):
        raise Forbidden("Seule l'équipe de télésurveillance du programme agit sur ce suivi.")
    return enrolment


async def end_enrolment(
    session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID, reason: str
) -> Enrolment:
    enrolment = await _team_enrolment(session, principal, enrolment_id)
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise Conflict("Ce suivi n'est pas en cours.")
    if len(reason.strip()) < 2:
        raise InvalidInput("Motif de fin de suivi attendu.", field="reason")
    now = clock.now()
    enrolment.status = EnrolmentStatus.ENDED
    enrolment.ended_at = now
    enrolment.end_reason = reason.strip()[:500]
    enrolment.link_hash = None
    for device in await DeviceRepository(session).list_for_enrolment(enrolment.id):
        if device.unlinked_at is None:
            device.unlinked_at = now
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="MonitoringEnrolment",
        object_id=enrolment.id,
        patient_id=enrolment.patient_id,
        details={"status": "ended"},
    )
    return enrolment


# --- the patient's page: personal link + PIN ------------------------------------------------------------------


def link_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def issue_patient_link(
    session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID
) -> tuple[Enrolment, str, str]:
    """A new personal link and PIN for the patient's page (the previous ones stop working). Shown once."""
    enrolment = await _team_or_enroller(session, principal, enrolment_id)
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise Conflict("Ce suivi n'est pas en cours : pas de lien patient.")
    token = secrets.token_urlsafe(24)
    pin = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
    enrolment.link_hash = link_digest(token)
    enrolment.pin_hash = hash_password(pin)
    enrolment.pin_failures = 0
    enrolment.link_issued_at = clock.now()
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="MonitoringPatientLink",
        object_id=enrolment.id,
        patient_id=enrolment.patient_id,
    )
    return enrolment, token, pin


async def _team_or_enroller(
    session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID
) -> Enrolment:
    enrolment = await EnrolmentRepository(session).get(enrolment_id)
    if enrolment is None:
        raise NotFound("Suivi de télésurveillance introuvable.")
    await require_patient_access(session, principal, enrolment.patient_id)
    if (
        enrolment.organisation_id not in teams_of(principal)
        and enrolment.created_by_account_id != principal.account_id
    ):
        raise Forbidden(
            "Seuls l'équipe de télésurveillance et le professionnel qui a inclus le patient le peuvent."
        )
    return enrolment


async def patient_enrolment(session: AsyncSession, token: str) -> Enrolment:
    """The enrolment a personal link opens (404 for an unknown, replaced or ended link)."""
    enrolment = await EnrolmentRepository(session).by_link_hash(link_digest(token)) if token else None
    if enrolment is None or enrolment.status != EnrolmentStatus.ACTIVE:
        raise NotFound(
            "Lien de télésurveillance inconnu ou expiré : demandez un nouveau lien à votre équipe."
        )
    return enrolment


async def check_patient_pin(session: AsyncSession, token: str, pin: str) -> Enrolment:
    """The PIN of a personal link; after five wrong PINs the link is locked until the team issues a new one."""
    enrolment = await patient_enrolment(session, token)
    if enrolment.pin_failures >= MAX_PIN_FAILURES:
        raise TooManyRequests(
            "Lien bloqué après plusieurs codes erronés : contactez votre équipe de télésurveillance."
        )
    if not verify_password(enrolment.pin_hash, pin.strip()):
        enrolment.pin_failures += 1
        await session.flush()
        left = MAX_PIN_FAILURES - enrolment.pin_failures
        raise InvalidInput(
            f"Code incorrect ({left} essai{'s' if left > 1 else ''} restant{'s' if left > 1 else ''})."
            if left
            else "Code incorrect : lien bloqué, contactez votre équipe de télésurveillance.",
            field="pin",
        )
    if enrolment.pin_failures:
        enrolment.pin_failures = 0
        await session.flush()
    return enrolment


# --- readings -------------------------------------------------------------------------------------------------


@dataclass
class ReadingItem:
    """One reading as received, before checks. ``identifier``: the device's own id of the reading (FHIR
    Observation.identifier), which makes a reading sent twice land once."""

    index: int
    patient_id: uuid.UUID | None
    code: str
    value: Any
    unit: str | None
    effective_at: datetime | None
    system: str = clinical.LOINC
    device_serial: str | None = None
    identifier: str | None = None
    problem: str | None = None  # refused before reaching here (FHIR shape), with this message
    problem_field: str | None = None
    # clinical.normalise(code, value, unit, system) already made by the caller that checked the reading (a device
    # batch's entries are checked as they are read): not made a second time here
    normalised: tuple[clinical.Measure, float] | None = None


@dataclass(slots=True)
class ReadingOutcome:
    """What became of one reading of a batch: stored, already there (duplicate), or refused and why. Built here from
    values already checked (a device batch makes hundreds), never read from outside."""

    index: int
    status: str  # created | duplicate | refused
    observation_ids: list[uuid.UUID]
    message: str = ""
    field: str | None = None


@dataclass
class Pending:
    """Readings stored whose enrolments' rules are not judged yet (``record_readings(judge_later=True)``): judged by
    ``judge``, in groups, each its own transaction."""

    enrolments: list[Any]  # the enrolments' state rows, in the order of their ids
    programmes: dict[uuid.UUID, MonitoringProgramme]
    now: datetime
    recipients: set[uuid.UUID] | None = None  # the teams' operators, read by the first group for every group
    raised: int = 0  # alerts raised or escalated by the groups judged so far

    def groups(self, size: int) -> list[list[Any]]:
        return [self.enrolments[start : start + size] for start in range(0, len(self.enrolments), size)]


@dataclass
class IngestResult:
    outcomes: list[ReadingOutcome]
    alerts: list[Alert] = field(default_factory=list)
    pending: Pending | None = None  # judge_later: what is left to judge

    @property
    def created(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == "created")


def _refused(item: ReadingItem, message: str, field_name: str | None) -> ReadingOutcome:
    return _outcome(item.index, "refused", [], message, field_name)


def _outcome(
    index: int, status: str, ids: list[uuid.UUID], message: str = "", field_name: str | None = None
) -> ReadingOutcome:
    return ReadingOutcome(index, status, ids, message, field_name)


async def record_readings(
    session: AsyncSession,
    principal: Principal | None,
    items: Sequence[ReadingItem],
    source: ReadingSource,
    *,
    enrolment: Enrolment | None = None,
    judge_later: bool = False,
) -> IngestResult:
    """Check, store and evaluate a batch of readings. Each item gets its outcome: created, duplicate (already
    stored), or refused with the reason; the good ones are stored even when others are refused.

    ``judge_later``: the readings are stored (and audited) but their rules not judged; ``IngestResult.pending`` says
    which enrolments ``judge`` must judge, after this transaction has committed (a device batch on PostgreSQL).

    ``enrolment``: the patient's page (the link chose it). Otherwise each item names its patient, and the
    principal must belong to the team of the patient's programme, or have the patient in care."""
    now = clock.now()
    outcomes: dict[int, ReadingOutcome] = {}
    patient_ids = {item.patient_id for item in items if item.patient_id is not None and item.problem is None}
    if enrolment is not None:
        enrolments = {enrolment.patient_id: [enrolment]}
    else:
        enrolments = await EnrolmentRepository(session).active_by_patient(patient_ids)
    allowed = (
        await _writable_patients(session, principal, enrolments)
        if enrolment is None
        else {enrolment.patient_id}
    )
    programmes = await ProgrammeRepository(session).get_many(
        e.programme_id for group in enrolments.values() for e in group
    )
    enrolment_ids = {patient: {e.id for e in group} for patient, group in enrolments.items()}
    devices = await DeviceRepository(session).linked(
        item.device_serial for item in items if item.device_serial
    )
    rows: list[dict[str, Any]] = []
    wanted: dict[int, list[tuple[uuid.UUID, str]]] = {}
    for position, item in enumerate(items):
        await cooperative.pause(position)
        if item.problem is not None:
            outcomes[item.index] = _refused(item, item.problem, item.problem_field)
            continue
        patient_id = enrolment.patient_id if enrolment is not None else item.patient_id
        candidates = enrolments.get(patient_id) if patient_id is not None else None
        if not candidates or patient_id not in allowed:
            outcomes[item.index] = _refused(
                item, "Patient non inclus dans un programme de télésurveillance de votre équipe.", "subject"
            )
            continue
        try:
            measure, value = item.normalised or clinical.normalise(
                item.code, item.value, item.unit, system=item.system
            )
            effective_at = clinical.check_reading_time(item.effective_at or now, now)
        except clinical.ReadingRefused as refused:
            outcomes[item.index] = _refused(item, refused.message, refused.field)
            continue
        device = devices.get(item.device_serial) if item.device_serial else None
        if item.device_serial and (device is None or device.enrolment_id not in enrolment_ids[patient_id]):
            outcomes[item.index] = _refused(
                item, f"Appareil « {item.device_serial} » non attribué à ce patient.", "device"
            )
            continue
        if device is not None:
            targets = [e for e in candidates if e.id == device.enrolment_id]
        else:
            following = [
                e
                for e in candidates
                if any(m["measure"] == measure.key for m in programmes[e.programme_id].measures)
            ]
            targets = following or candidates[:1]
        key = (
            f"id:{item.identifier}"
            if item.identifier
            else f"{source.value}:{item.device_serial or ''}:{item.code}:{effective_at.isoformat()}"
        )[:200]
        wanted[item.index] = [(target.id, key) for target in targets]
        for target in targets:
            rows.append(
                {
                    "id": uuid7(),  # time-ordered (kit.models.uuid7)
                    "enrolment_id": target.id,
                    "patient_id": target.patient_id,
                    "measure": measure.key,
                    "code": item.code.strip(),
                    "value": value,
                    "unit": measure.unit,
                    "sent_value": value if measure.is_answer else float(item.value),
                    "sent_unit": (item.unit or "").strip()[:20],
                    "effective_at": effective_at,
                    "device_id": device.id if device is not None else None,
                    "dedup_key": key,
                }
            )
    # The same reading twice in one batch: the first is stored, the second reported as a duplicate.
    unique: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
    for row in rows:
        unique.setdefault((row["enrolment_id"], row["dedup_key"]), row)
    repo = ObservationRepository(session)
    created = await repo.insert_new(
        list(unique.values()),
        {
            "received_at": now,
            "source": source,
            "entered_by_name": principal.display_name[:200] if principal is not None else "",
        },
    )
    claimed: set[tuple[uuid.UUID, str]] = set()
    missing = [pair for pairs in wanted.values() for pair in pairs if pair not in created]
    existing = await repo.existing(missing) if missing else {}
    for index, pairs in wanted.items():
        fresh = [pair for pair in pairs if pair in created and pair not in claimed]
        claimed.update(fresh)
        if fresh:
            outcomes[index] = _outcome(index, "created", [created[p] for p in fresh])
        else:
            ids = [created.get(pair) or existing.get(pair) for pair in pairs]
            outcomes[index] = _outcome(
                index,
                "duplicate",
                [id_ for id_ in ids if id_ is not None],
                "Mesure déjà reçue : enregistrée une seule fois.",
            )
    touched: dict[uuid.UUID, int] = {}
    for enrolment_id, _ in created:
        touched[enrolment_id] = touched.get(enrolment_id, 0) + 1
    alerts: list[Alert] = []
    pending = None
    if touched:
        by_id = {e.id: e for group in enrolments.values() for e in group}
        if judge_later:
            pending = Pending([by_id[i] for i in sorted(touched)], programmes, now)
        else:
            alerts = await _evaluate(session, [by_id[i] for i in touched], programmes, now)
        audited: dict[uuid.UUID, int] = {}
        for enrolment_id, count in touched.items():
            patient = by_id[enrolment_id].patient_id
            audited[patient] = audited.get(patient, 0) + count
        await record_accesses(
            session,
            principal,
            action=Action.CREATE,
            object_type="MonitoringObservation",
            entries=[
                (patient_id, patient_id, {"count": count, "source": source.value})
                for patient_id, count in audited.items()
            ],
        )
    return IngestResult([outcomes[item.index] for item in items], alerts, pending)


async def judge(
    session: AsyncSession, enrolments: Sequence[Any], pending: Pending, *, last: bool = True
) -> list[Alert]:
    """Judge the rules of these enrolments (one of ``pending.groups``) on the readings stored, as ``record_readings``
    would have; the caller commits. Each alert is announced with its group; the worklists' "new readings" refresh
    once, with the ``last`` group, if no group raised an alert (as for a batch judged at once). Returns the alerts
    raised or escalated."""
    if pending.recipients is None:
        pending.recipients = await EnrolmentRepository(session).operator_accounts(
            {e.organisation_id for e in pending.enrolments}
        )
    raised = await _evaluate(
        session,
        enrolments,
        pending.programmes,
        pending.now,
        recipients=pending.recipients,
        updated=len(pending.enrolments) if last and not pending.raised else None,
    )
    pending.raised += len(raised)
    return raised


async def _writable_patients(
    session: AsyncSession, principal: Principal | None, enrolments: dict[uuid.UUID, list[Enrolment]]
) -> set[uuid.UUID]:
    """The patients whose readings this principal may send: its team runs one of their programmes (a device
    gateway account, a team member), or it has the patient in care."""
    if principal is None:
        return set()
    teams = teams_of(principal)
    allowed = {
        patient for patient, group in enrolments.items() if any(e.organisation_id in teams for e in group)
    }
    for patient in set(enrolments) - allowed:
        try:
            await require_patient_access(session, principal, patient)
        except NotFound:
            continue
        allowed.add(patient)
    return allowed


# --- rules and alerts -----------------------------------------------------------------------------------------


def _trigger(finding: rules.Finding, since: datetime, last: dict[str, datetime], rule: rules.Rule) -> str:
    if finding.readings:
        return f"r:{rules.reading_id(finding.readings[-1].id)}"
    reference = max(last.get(rule.measure, since), since)  # the gap's start, as ``rules.evaluate`` counts it
    return f"m:{clock.as_utc(reference).isoformat(timespec='seconds')}"


async def _evaluate(
    session: AsyncSession,
    enrolments: Sequence[Enrolment],
    programmes: dict[uuid.UUID, MonitoringProgramme],
    now: datetime,
    *,
    recipients: set[uuid.UUID] | None = None,
    updated: int | None = -1,
) -> list[Alert]:
    """Evaluate the rules of these enrolments at ``now``: new findings raise alerts, a finding still firing updates
    its unclosed alert, the triage colour follows the unclosed alerts. Returns the alerts raised or escalated.

    ``recipients``: the teams' operators, when the caller has them. ``updated``: without an alert, the worklists are
    told that this many enrolments have new readings (-1: these enrolments; None: not told, the caller does)."""
    settings = get_settings()
    missing_programmes = {e.programme_id for e in enrolments} - set(programmes)
    if missing_programmes:
        programmes = {**programmes, **await ProgrammeRepository(session).get_many(missing_programmes)}
    tuned = {e.id: enrolment_rules(programmes[e.programme_id], e) for e in enrolments}
    # most enrolments share their programme's rules (the same tuple): their window and index made once each
    shared: dict[int, tuple[timedelta, dict[str, rules.Rule]]] = {}
    for own_rules in tuned.values():
        if id(own_rules) not in shared:
            shared[id(own_rules)] = (rules.window(own_rules), {rule.code: rule for rule in own_rules})
    spans = {id_: shared[id(r)][0] for id_, r in tuned.items()}
    window = now - max(spans.values(), default=timedelta(days=2))
    # PostgreSQL: each enrolment's row locked until commit, before its readings and alerts are read. Another instance
    # judging the same patient at the same moment waits here for this transaction, then sees its readings and its
    # alerts: no second alert for the same rise, no colour computed without them (tests/monitoring/test_race.py).
    current = await EnrolmentRepository(session).lock_states(e.id for e in enrolments)
    observations = ObservationRepository(session)
    readings = await observations.since((e.id for e in enrolments), window)
    # Each patient is evaluated on his own window (the outcome never depends on which other patients share the
    # batch) and on the last reading of each measure, however old (missing data): read only where the window has
    # none of a measure that a missing-data rule follows.
    last_seen: dict[uuid.UUID, dict[str, datetime]] = {}
    for enrolment in enrolments:
        own = now - spans[enrolment.id]
        seen = last_seen.setdefault(enrolment.id, {})
        for measure, _value, at, _id in readings.get(enrolment.id, []):
            if own <= at <= now and (measure not in seen or at > seen[measure]):
                seen[measure] = at
    older = [
        e.id
        for e in enrolments
        if any(isinstance(r, rules.Missing) and r.measure not in last_seen[e.id] for r in tuned[e.id])
    ]
    for enrolment_id, found in (await observations.last_by_measure(older, now)).items():
        for measure, at in found.items():
            last_seen[enrolment_id].setdefault(measure, at)
    alert_repo = AlertRepository(session)
    known = await alert_repo.recent_or_open((e.id for e in enrolments), window - timedelta(days=31))
    raised: list[Alert] = []
    changed: list[tuple[uuid.UUID, str]] = []
    for position, enrolment in enumerate(enrolments):
        await cooperative.pause(position)
        programme = programmes[enrolment.programme_id]
        own = now - spans[enrolment.id]
        window_readings = readings.get(enrolment.id, [])
        # the window read is the widest of the batch's programmes' (most often this enrolment's own: all of it)
        series = (
            window_readings
            if own <= window
            else [reading for reading in window_readings if reading.at >= own]
        )
        last = last_seen.get(enrolment.id, {})
        since = enrolment.started_at or enrolment.created_at
        findings = rules.evaluate(tuned[enrolment.id], series, now, since, last)
        by_rule = shared[id(tuned[enrolment.id])][1]
        alerts = known.get(enrolment.id, [])
        for finding in findings:
            trigger = _trigger(finding, since, last, by_rule[finding.rule])
            same_rule = [a for a in alerts if a.rule_code == finding.rule]
            if any(a.trigger == trigger for a in same_rule):
                continue  # already alerted on this very reading (open, or closed by the team)
            unclosed = next((a for a in reversed(same_rule) if a.status != AlertStatus.CLOSED), None)
            payload = [
                {"id": rules.reading_id(r.id), "value": r.value, "at": r.at.isoformat()}
                for r in finding.readings
            ]
            if unclosed is not None:
                escalated = rules.SEVERITY_ORDER[finding.severity] < rules.SEVERITY_ORDER[unclosed.severity]
                unclosed.trigger, unclosed.message, unclosed.readings = trigger, finding.message, payload
                unclosed.severity = finding.severity if escalated else unclosed.severity
                unclosed.updated_at = now
                if escalated:
                    raised.append(unclosed)
                continue
            opening = next_opening(programme, now, settings.public_holidays)
            alert = Alert(
                id=uuid.uuid4(),
                enrolment_id=enrolment.id,
                patient_id=enrolment.patient_id,
                organisation_id=enrolment.organisation_id,
                rule_code=finding.rule,
                trigger=trigger,
                programme_version=programme.version,
                severity=finding.severity,
                message=finding.message[:500],
                readings=payload,
                status=AlertStatus.OPEN,
                raised_at=now,
                updated_at=now,
                outside_hours=opening is not None,
                seen_from=opening,
            )
            alert_repo.stage(alert)
            alerts.append(alert)
            raised.append(alert)
        colour = rules.triage_colour(
            [
                rules.Finding(a.rule_code, a.severity, a.message, ())
                for a in alerts
                if a.status != AlertStatus.CLOSED
            ]
        )
        was_colour = current.get(enrolment.id, enrolment.colour) if current is not None else enrolment.colour
        if colour != was_colour:
            changed.append((enrolment.id, colour))
    await session.flush()
    # The colours that changed, in one statement (the enrolments were read as plain rows); most readings change none
    await EnrolmentRepository(session).set_colours(changed)
    EnrolmentRepository(session).keep_in_step((), last_seen)
    if enrolments:
        if recipients is None:
            recipients = await EnrolmentRepository(session).operator_accounts(
                {e.organisation_id for e in enrolments}
            )
        for alert in raised:
            _announce_alert(session, recipients, alert)
        if not raised and recipients and updated is not None:
            # new readings without a new alert: the worklists refresh their "new readings" marks (one event per batch)
            publish_on_commit(
                session,
                Event(
                    type="monitoring.updated",
                    recipients=frozenset(recipients),
                    data={"count": len(enrolments) if updated == -1 else updated},
                ),
            )
    return raised


async def evaluate_active(session: AsyncSession, organisation_ids: Sequence[uuid.UUID] | None = None) -> int:
    """The scheduled evaluation (missing data, and thresholds crossed by the passing of time): every active
    enrolment, in groups. Returns how many alerts were raised."""
    repo = EnrolmentRepository(session)
    # in the order of the ids: each group's enrolment rows are locked as it is judged (``lock_states``), and the
    # locks of the groups before are held until the end, so the whole transaction takes them in one order
    ids = sorted(await repo.active_ids(organisation_ids))
    raised = 0
    now = clock.now()
    for start in range(0, len(ids), 500):
        group = await repo.states(ids[start : start + 500])
        raised += len(await _evaluate(session, group, {}, now))
    return raised


EVALUATE_JOB = "monitoring.evaluate"
EVALUATE_EVERY = timedelta(hours=1)


async def schedule_evaluation(session: AsyncSession, organisation_id: uuid.UUID) -> None:
    """The team's hourly evaluation (missing data is found by the passing of time, not by a reading)."""
    await ensure_job(
        session,
        EVALUATE_JOB,
        clock.now() + EVALUATE_EVERY,
        {"organisation_id": str(organisation_id)},
        dedupe_key=str(organisation_id),
    )


async def scheduled_evaluation(session: AsyncSession, payload: dict[str, Any]) -> None:
    """Timer: evaluate every active enrolment of one team, then come back in an hour while it follows patients."""
    organisation_id = uuid.UUID(payload["organisation_id"])
    await evaluate_active(session, [organisation_id])
    if await EnrolmentRepository(session).active_ids([organisation_id]):
        await schedule_job(
            session,
            EVALUATE_JOB,
            clock.now() + EVALUATE_EVERY,
            {"organisation_id": str(organisation_id)},
            dedupe_key=str(organisation_id),
        )


def _announce(session: AsyncSession, recipients: set[uuid.UUID], enrolment: Enrolment) -> None:
    publish_on_commit(
        session,
        Event(
            type="monitoring.updated",
            recipients=frozenset(recipients),
            data={"enrolment_id": str(enrolment.id), "colour": enrolment.colour},
        ),
    )


def _announce_alert(session: AsyncSession, recipients: set[uuid.UUID], alert: Alert) -> None:
    """After commit: the team's worklists refresh; a red alert rings (within the declared hours). Ids and colours
    only, no patient identity."""
    publish_on_commit(
        session,
        Event(
            type="monitoring.alert",
            recipients=frozenset(recipients),
            data={
                "enrolment_id": str(alert.enrolment_id),
                "alert_id": str(alert.id),
                "severity": alert.severity,
                "label": f"Télésurveillance : alerte {rules.SEVERITY_LABELS[alert.severity].lower()}",
                "url": f"/telesurveillance/suivis/{alert.enrolment_id}",
            },
            urgent=alert.severity == "red" and not alert.outside_hours,
        ),
    )


# --- triage ---------------------------------------------------------------------------------------------------


@dataclass
class WorklistRow:
    enrolment: Enrolment
    patient_name: str
    programme_title: str
    alerts: list[Alert]
    unreviewed: bool  # readings arrived since the last acknowledgement


async def worklist(session: AsyncSession, principal: Principal) -> list[WorklistRow]:
    """The team's patients, red first, then orange, blue (missing data), green; oldest alert first within a
    colour. Only the teams the principal belongs to."""
    result = await _worklist_rows(session, principal)
    await record_access(
        session,
        principal,
        action=Action.SEARCH,
        object_type="MonitoringWorklist",
        object_id="worklist",
        details={"patients": len(result)},
    )
    return result


async def _worklist_rows(session: AsyncSession, principal: Principal) -> list[WorklistRow]:
    """``worklist`` without its audit row."""
    teams = teams_of(principal)
    if not teams:
        raise Forbidden("La liste de télésurveillance est celle des équipes de télésurveillance.")
    repo = EnrolmentRepository(session)
    rows = await repo.worklist(teams)
    alerts = await AlertRepository(session).unclosed(e.id for e, _ in rows)
    programmes = await ProgrammeRepository(session).get_many(e.programme_id for e, _ in rows)
    result = []
    for enrolment, patient in rows:
        mine = alerts.get(enrolment.id, [])
        result.append(
            WorklistRow(
                enrolment,
                f"{(patient.used_family_name or patient.birth_family_name).upper()} {patient.first_given_name}",
                programmes[enrolment.programme_id].title,
                mine,
                enrolment.last_reading_at is not None
                and (enrolment.reviewed_at is None or enrolment.last_reading_at > enrolment.reviewed_at),
            )
        )
    far = datetime.max.replace(tzinfo=clock.now().tzinfo)
    result.sort(
        key=lambda row: (
            rules.SEVERITY_ORDER[row.enrolment.colour],
            min((a.raised_at for a in row.alerts), default=far),
            row.patient_name,
        )
    )
    return result


async def acknowledge_green(session: AsyncSession, principal: Principal) -> int:
    """ "Tout vert vu": the readings of every green patient of the principal's teams are marked as seen, in one
    action. Patients with an unclosed alert are not touched.

    PostgreSQL: the green patients' rows are locked first (``EnrolmentRepository.lock_states``, as the rules do), and
    a patient another instance turned red or orange meanwhile is left alone: the worklist was read without locks.
    The locks come before any audit row, as when a reading is judged (enrolment, then the audit chain): the other
    order could wait in a circle with a reading's transaction."""
    rows = await _worklist_rows(session, principal)
    now = clock.now()
    green = [row for row in rows if row.enrolment.colour == "green" and row.unreviewed]
    current = await EnrolmentRepository(session).lock_states(row.enrolment.id for row in green)
    count = 0
    for row in green:
        if current is None or current.get(row.enrolment.id) == "green":
            row.enrolment.reviewed_at = now
            row.enrolment.reviewed_by_name = principal.display_name[:200]
            count += 1
            await record_access(
                session,
                principal,
                action=Action.UPDATE,
                object_type="MonitoringReview",
                object_id=row.enrolment.id,
                patient_id=row.enrolment.patient_id,
            )
    await session.flush()
    return count


async def _team_alert(session: AsyncSession, principal: Principal, alert_id: uuid.UUID) -> Alert:
    alert = await AlertRepository(session).get(alert_id)
    if alert is None:
        raise NotFound("Alerte introuvable.")
    await _team_enrolment(session, principal, alert.enrolment_id)
    # PostgreSQL: the enrolment's row locked, as the rules lock it, before the alert changes; the alert read again as
    # it is now. A reading judged meanwhile on another instance waits for this decision and then sees it (the alert
    # closed, its rise alerted anew), instead of updating an alert being closed (tests/monitoring/test_race.py).
    if await EnrolmentRepository(session).lock_states([alert.enrolment_id]) is not None:
        await session.refresh(alert)
    return alert


async def filter_alert(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, note: str = ""
) -> Alert:
    """First-line review (often the team's nurse): the alert is confirmed and waits for a doctor."""
    alert = await _team_alert(session, principal, alert_id)
    if alert.status != AlertStatus.OPEN:
        raise Conflict("Cette alerte a déjà été filtrée.")
    alert.status = AlertStatus.FILTERED
    alert.filtered_at = clock.now()
    alert.filtered_by_name = principal.display_name[:200]
    alert.filter_note = note.strip()[:1000]
    await session.flush()
    await _after_alert_change(session, principal, alert, "filtered")
    return alert


async def interpret_alert(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, data: AlertInterpretation
) -> Alert:
    """The doctor's interpretation and the action taken close the alert (filtered first, or directly)."""
    alert = await _team_alert(session, principal, alert_id)
    if alert.status == AlertStatus.CLOSED:
        raise Conflict("Cette alerte a déjà été interprétée.")
    now = clock.now()
    if alert.filtered_at is None:
        alert.filtered_at = now
        alert.filtered_by_name = principal.display_name[:200]
    alert.status = AlertStatus.CLOSED
    alert.interpreted_at = now
    alert.interpreted_by_name = principal.display_name[:200]
    alert.interpretation = data.interpretation
    alert.action = data.action
    alert.action_at = now
    await session.flush()
    await _after_alert_change(session, principal, alert, "interpreted")
    return alert


async def link_appointment(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, appointment_id: uuid.UUID
) -> Alert:
    """The teleconsultation booked from an alert: the alert remembers it (and its action says so). The appointment
    must be one the principal may see, for the alert's patient."""
    alert = await _team_alert(session, principal, alert_id)
    appointment = await scheduling_service.get_appointment(session, principal, appointment_id)
    if appointment.patient_id != alert.patient_id:
        raise InvalidInput("Ce rendez-vous concerne un autre patient que l'alerte.", field="appointment_id")
    alert.appointment_id = appointment.id
    if alert.status != AlertStatus.CLOSED and (alert.action is None or alert.action == AlertAction.NONE):
        alert.action = AlertAction.TELECONSULTATION
        alert.action_at = clock.now()
    await session.flush()
    await _after_alert_change(session, principal, alert, "appointment")
    return alert


async def book_from_alert(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, data: AppointmentCreate
):
    """Book a teleconsultation for an alert's patient and link it to the alert, in the caller's transaction (booked
    and linked, or neither)."""
    appointment = await scheduling_service.book_appointment(session, principal, data)
    await link_appointment(session, principal, alert_id, appointment.id)
    return appointment


async def _after_alert_change(session: AsyncSession, principal: Principal, alert: Alert, what: str) -> None:
    enrolment = await EnrolmentRepository(session).get(alert.enrolment_id)
    unclosed = (await AlertRepository(session).unclosed([enrolment.id])).get(enrolment.id, [])
    enrolment.colour = rules.triage_colour(
        [rules.Finding(a.rule_code, a.severity, a.message, ()) for a in unclosed]
    )
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="MonitoringAlert",
        object_id=alert.id,
        patient_id=alert.patient_id,
        details={"step": what, "action": alert.action.value if alert.action else None},
    )
    _announce(
        session, await EnrolmentRepository(session).operator_accounts({enrolment.organisation_id}), enrolment
    )


# --- education ------------------------------------------------------------------------------------------------


async def record_education(
    session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID, data: EducationCreate
) -> EducationSession:
    enrolment = await _team_or_enroller(session, principal, enrolment_id)
    held_at = data.held_at or clock.now()
    if held_at.tzinfo is None:
        held_at = clock.from_paris(held_at)
    if held_at > clock.now() + timedelta(minutes=5):
        raise InvalidInput(
            "Une séance d'éducation se note une fois faite (date future refusée).", field="held_at"
        )
    education = await EducationRepository(session).add(
        EducationSession(
            enrolment_id=enrolment.id,
            topic=data.topic,
            held_at=held_at,
            held_by_name=principal.display_name[:200],
            notes=data.notes,
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="MonitoringEducation",
        object_id=education.id,
        patient_id=enrolment.patient_id,
    )
    return education


async def get_observation(session: AsyncSession, principal: Principal, observation_id: uuid.UUID):
    """One reading, for a clinician with the patient in care (None when it does not exist; 404 outside scope)."""
    row = await ObservationRepository(session).get(observation_id)
    if row is None:
        return None
    await read_patient_data(session, principal, row.patient_id, "MonitoringObservation")
    return row


async def device_serials(session: AsyncSession, device_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The serial numbers of devices named by id (a FHIR ``Device/<id>`` reference); unknown ids are left out."""
    return await DeviceRepository(session).serials(device_ids)


SEARCH_LIMIT = 20000  # readings of one patient a FHIR search returns at most (newest first)


async def patient_readings(
    session: AsyncSession,
    principal: Principal,
    patient_id: uuid.UUID,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list:
    """A patient's readings in every programme, newest first, for a FHIR search: none when the principal may not
    see the patient (a search finds nothing rather than saying the patient exists); audited as a search."""
    try:
        await require_patient_access(session, principal, patient_id)
    except NotFound:
        return []
    rows = await ObservationRepository(session).for_patient(patient_id, since, until, SEARCH_LIMIT)
    await record_access(
        session,
        principal,
        action=Action.SEARCH,
        object_type="MonitoringObservation",
        object_id=patient_id,
        patient_id=patient_id,
        details={"count": len(rows)},
    )
    return rows


async def readings_of(
    session: AsyncSession, principal: Principal, enrolment_id: uuid.UUID, since: datetime | None = None
) -> list:
    """The enrolment's readings (charts), oldest first; audited as a read."""
    view = await get_enrolment(session, principal, enrolment_id)
    return await ObservationRepository(session).series(view.enrolment.id, since)


# --- the patient's page session (after the PIN) --------------------------------------------------------------

PATIENT_COOKIE = "ts_tls"
PATIENT_COOKIE_HOURS = 24 * 30  # the patient's own phone stays open a month; a new link ends it


def patient_cookie(secret_key: str, enrolment: Enrolment, now: datetime | None = None) -> str:
    """What the patient's browser keeps after the PIN: an expiry and a MAC over it and the current link (a new link
    ends every session opened with the old one)."""
    expires = int(((now or clock.now()) + timedelta(hours=PATIENT_COOKIE_HOURS)).timestamp())
    mac = hmac.new(
        secret_key.encode(), f"{enrolment.link_hash}:{expires}".encode(), hashlib.sha256
    ).hexdigest()
    return f"{expires}.{mac}"


async def patient_from_cookie(
    session: AsyncSession, secret_key: str, token: str, cookie: str | None
) -> Enrolment | None:
    """The enrolment of a personal link whose PIN this browser gave (None: the PIN is asked)."""
    enrolment = await patient_enrolment(session, token)
    if not cookie or "." not in cookie:
        return None
    expires, _, mac = cookie.partition(".")
    if not expires.isdigit() or int(expires) < clock.now().timestamp():
        return None
    expected = hmac.new(
        secret_key.encode(), f"{enrolment.link_hash}:{expires}".encode(), hashlib.sha256
    ).hexdigest()
    return enrolment if hmac.compare_digest(expected, mac) else None


async def team_programme(session: AsyncSession, enrolment: Enrolment) -> MonitoringProgramme:
    return await get_programme(session, enrolment.programme_id)


# --- charts and the monthly summary ---------------------------------------------------------------------------


def chart_data(view: EnrolmentView, readings: list) -> dict[str, Any]:
    """Per measure followed: the readings (UNIX seconds, values), the thresholds of the patient's rules, and the
    alerts raised on that measure (their time and severity), for the page's charts (uPlot)."""
    measures = [m["measure"] for m in view.programme.measures]
    for reading in readings:
        if reading.measure not in measures:
            measures.append(reading.measure)
    by_rule = {rule.code: rule for rule in view.rules}
    charts = []
    for key in measures:
        if clinical.BY_KEY[key].is_answer:
            continue  # the questionnaire's answers are a table of the page, not a curve
        measure = clinical.BY_KEY[key]
        series = [r for r in readings if r.measure == key]
        limits = [
            {
                "value": limit,
                "label": f"{'>' if rule.above is not None else '<'} {limit:g} {measure.unit_label}",
                "severity": rule.severity,
            }
            for rule in view.rules
            if isinstance(rule, rules.Threshold) and rule.measure == key
            for limit in (rule.above, rule.below)
            if limit is not None
        ]
        alerts = [
            {"at": int(a.raised_at.timestamp()), "severity": a.severity, "message": a.message}
            for a in view.alerts
            if a.rule_code in by_rule and key in rules.measures_of(by_rule[a.rule_code], by_rule)
        ]
        charts.append(
            {
                "measure": key,
                "label": measure.label,
                "unit": measure.unit_label,
                "times": [int(r.effective_at.timestamp()) for r in series],
                "values": [r.value for r in series],
                "limits": limits,
                "alerts": alerts,
            }
        )
    return {"enrolment_id": str(view.enrolment.id), "charts": charts}


@dataclass
class AnswerDay:
    day: date
    answers: dict[str, bool]  # measure key → yes


async def recent_answers(session: AsyncSession, view: EnrolmentView, days: int = 14) -> list[AnswerDay]:
    """The questionnaire's answers of the last ``days`` days, one line per day (the last answer of the day to each
    question), newest first. ``view`` comes from ``get_enrolment``, which checked access and audited the read."""
    keys = {m["measure"] for m in view.programme.measures if clinical.BY_KEY[m["measure"]].is_answer}
    if not keys:
        return []
    since = clock.now() - timedelta(days=days)
    by_day: dict[date, dict[str, bool]] = {}
    for reading in await ObservationRepository(session).series(view.enrolment.id, since):
        if reading.measure in keys:
            by_day.setdefault(clock.to_paris(reading.effective_at).date(), {})[reading.measure] = (
                reading.value > 0.5
            )
    return [AnswerDay(day, by_day[day]) for day in sorted(by_day, reverse=True)]


@dataclass
class MonthlySummary:
    month: date
    rows: list[dict[str, Any]]  # per measure: count, min, max, mean, first, last
    alerts: list[Alert]
    education: list[EducationSession]
    days_with_readings: int
    days: int


def monthly_summary(view: EnrolmentView, readings: list, month: date) -> MonthlySummary:
    start = month.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    low, high = (
        clock.from_paris(datetime.combine(start, time())),
        clock.from_paris(datetime.combine(end, time())),
    )
    inside = [r for r in readings if low <= r.effective_at < high]
    rows = []
    for key in dict.fromkeys([m["measure"] for m in view.programme.measures] + [r.measure for r in inside]):
        values = [r.value for r in inside if r.measure == key]
        measure = clinical.BY_KEY[key]
        if measure.is_answer:
            yes = sum(1 for value in values if value > 0.5)
            rows.append(
                {"label": measure.label, "unit": "", "count": len(values), "yes": yes, "answer": True}
            )
            continue
        rows.append(
            {
                "label": measure.label,
                "unit": measure.unit_label,
                "count": len(values),
                "min": min(values) if values else None,
                "max": max(values) if values else None,
                "mean": round(sum(values) / len(values), measure.decimals) if values else None,
                "first": values[0] if values else None,
                "last": values[-1] if values else None,
            }
        )
    today = clock.to_paris(clock.now()).date()
    days = ((min(end, today + timedelta(days=1))) - start).days
    return MonthlySummary(
        start,
        rows,
        [a for a in view.alerts if low <= a.raised_at < high],
        [e for e in view.education if low <= e.held_at < high],
        len({clock.to_paris(r.effective_at).date() for r in inside}),
        max(days, 0),
    )


async def organisation_name(session: AsyncSession, organisation_id: uuid.UUID) -> str:
    return await ProgrammeRepository(session).organisation_name(organisation_id)
