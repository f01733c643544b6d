"""On-call rules: who may edit a rota, shift validation, weekly patterns, hand-overs, coverage, ICS, and paging
with escalation (primary -> backup -> head of service) driven by durable timers (``telesante.jobs``).

Times are stored in UTC and shown in Europe/Paris; patterns are written in Paris local time and expanded with
``zoneinfo`` so that a night "18:30→08:30" stays 18:30→08:30 on both sides of a DST change (its length in UTC is
then 13 or 15 hours).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import icalendar
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.auth.principal import Principal
from telesante.config import get_settings
from telesante.directory.repository import OrganisationRepository, ServiceRepository
from telesante.jobs.service import cancel_jobs, schedule_job
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.oncall.models import (
    CalendarFeed,
    Page,
    PageEvent,
    PageEventKind,
    PageStatus,
    PageTarget,
    Rota,
    RotaScope,
    Shift,
    ShiftChange,
    ShiftChangeKind,
    ShiftPattern,
    ShiftRole,
)
from telesante.oncall.repository import (
    CalendarFeedRepository,
    PageRepository,
    RotaRepository,
    ShiftRepository,
)
from telesante.oncall.schemas import (
    FIRST_YEAR,
    LAST_YEAR,
    CoverageGap,
    CoverageRead,
    OnCallPage,
    OnDuty,
    PageEventRead,
    PatternCreate,
    ReplacementCreate,
    RotaCreate,
    RotaUpdate,
    ShiftCreate,
    SwapCreate,
)

ESCALATE_JOB = "oncall.escalate"
COVERAGE_DAYS = 30
MAX_PATTERN_DAYS = 400
MAX_SHIFT_HOURS = 72
NEXT_TARGET = {PageTarget.PRIMARY: PageTarget.BACKUP, PageTarget.BACKUP: PageTarget.HEAD}


# --- access ---------------------------------------------------------------------------------------------------


def can_edit(principal: Principal, rota: Rota) -> bool:
    """Administrators of the organisation running the rota (or regional ones) and its head of service."""
    return (
        principal.can_administer(rota.organisation_id)
        or principal.professional_id == rota.head_professional_id
    )


def _principal_organisations(principal: Principal) -> frozenset[uuid.UUID] | None:
    if principal.is_regional_admin:
        return None
    return frozenset(g.organisation_id for g in principal.grants if g.organisation_id is not None)


async def _visible_rota(session: AsyncSession, principal: Principal, rota_id: uuid.UUID) -> Rota:
    """A rota seen by members of its organisations, its head and regional administrators; else 404."""
    repo = RotaRepository(session)
    rota = await repo.get(rota_id)
    if rota is None:
        raise NotFound("Liste de garde introuvable.")
    organisations = _principal_organisations(principal)
    if organisations is None or principal.professional_id == rota.head_professional_id:
        return rota
    if organisations & set(await repo.organisation_ids(rota.id)):
        return rota
    raise NotFound("Liste de garde introuvable.")


async def _editable_rota(session: AsyncSession, principal: Principal, rota_id: uuid.UUID) -> Rota:
    rota = await _visible_rota(session, principal, rota_id)
    if not can_edit(principal, rota):
        raise Forbidden(
            "Seuls l'administrateur de l'établissement et le chef de service peuvent modifier cette liste de garde."
        )
    return rota


# --- rotas ----------------------------------------------------------------------------------------------------


async def create_rota(session: AsyncSession, principal: Principal, data: RotaCreate) -> Rota:
    if not principal.can_administer(data.organisation_id):
        raise Forbidden("Seul un administrateur de l'établissement peut créer une liste de garde.")
    if await OrganisationRepository(session).get(data.organisation_id) is None:
        raise InvalidInput("Établissement inconnu.", field="organisation_id")
    if data.service_id is not None:
        service = await ServiceRepository(session).get(data.service_id)
        if service is None or service.organisation_id != data.organisation_id:
            raise InvalidInput("Service inconnu dans cet établissement.", field="service_id")
    others = [o for o in dict.fromkeys(data.network_organisation_ids) if o != data.organisation_id]
    if data.scope == RotaScope.SERVICE and others:
        raise InvalidInput(
            "Une liste de service ne concerne qu'un établissement : choisissez « réseau territorial ».",
            field="network_organisation_ids",
        )
    if data.scope == RotaScope.NETWORK and not others:
        raise InvalidInput(
            "Un réseau territorial réunit au moins deux établissements.", field="network_organisation_ids"
        )
    for organisation_id in others:
        if await OrganisationRepository(session).get(organisation_id) is None:
            raise InvalidInput("Établissement du réseau inconnu.", field="network_organisation_ids")
    organisation_ids = [data.organisation_id, *others]
    repo = RotaRepository(session)
    if not await repo.is_member(data.head_professional_id, organisation_ids):
        raise InvalidInput(
            "Le chef de service doit exercer dans un établissement de la liste.", field="head_professional_id"
        )
    rota = await repo.add(
        Rota(
            name=data.name,
            scope=data.scope,
            organisation_id=data.organisation_id,
            service_id=data.service_id,
            head_professional_id=data.head_professional_id,
            ack_minutes=data.ack_minutes or get_settings().oncall_ack_minutes,
        )
    )
    for organisation_id in organisation_ids:
        await repo.add_organisation(rota.id, organisation_id)
    return rota


async def update_rota(
    session: AsyncSession, principal: Principal, rota_id: uuid.UUID, data: RotaUpdate
) -> Rota:
    rota = await _editable_rota(session, principal, rota_id)
    repo = RotaRepository(session)
    if data.head_professional_id is not None:
        if not await repo.is_member(data.head_professional_id, await repo.organisation_ids(rota.id)):
            raise InvalidInput(
                "Le chef de service doit exercer dans un établissement de la liste.",
                field="head_professional_id",
            )
        rota.head_professional_id = data.head_professional_id
    if data.name is not None:
        rota.name = data.name
    if data.ack_minutes is not None:
        rota.ack_minutes = data.ack_minutes
    if data.active is not None:
        rota.active = data.active
    await session.flush()
    return rota


async def get_rota(session: AsyncSession, principal: Principal, rota_id: uuid.UUID) -> Rota:
    return await _visible_rota(session, principal, rota_id)


async def list_rotas(session: AsyncSession, principal: Principal) -> list[Rota]:
    return await RotaRepository(session).list_visible(
        _principal_organisations(principal), principal.professional_id
    )


async def rota_details(session: AsyncSession, principal: Principal, rota_id: uuid.UUID) -> dict[str, Any]:
    rota = await _visible_rota(session, principal, rota_id)
    repo = RotaRepository(session)
    organisation_ids = await repo.organisation_ids(rota.id)
    return {
        "rota": rota,
        "organisation_ids": organisation_ids,
        "organisation_names": await repo.organisation_names(rota.id),
        "members": await repo.members(organisation_ids),
        "head_name": (await repo.professional_names({rota.head_professional_id})).get(
            rota.head_professional_id, ""
        ),
        "can_edit": can_edit(principal, rota),
    }


# --- shifts ---------------------------------------------------------------------------------------------------


async def _check_member(session: AsyncSession, rota: Rota, professional_id: uuid.UUID, field: str) -> None:
    repo = RotaRepository(session)
    if not await repo.is_member(professional_id, await repo.organisation_ids(rota.id)):
        raise InvalidInput(
            "Ce professionnel n'est pas membre d'un établissement de cette liste de garde.", field=field
        )


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidInput("La fin de la garde doit être postérieure à son début.", field="ends_at")
    if ends_at - starts_at > timedelta(hours=MAX_SHIFT_HOURS):
        raise InvalidInput(f"Une garde dure au plus {MAX_SHIFT_HOURS} heures.", field="ends_at")
    if starts_at.second or starts_at.microsecond or ends_at.second or ends_at.microsecond:
        raise InvalidInput(
            "Les gardes commencent et finissent à la minute près (sans secondes).", field="starts_at"
        )


def _slot(starts_at: datetime, ends_at: datetime) -> str:
    return f"du {clock.format_paris(starts_at)} au {clock.format_paris(ends_at)}"


async def _check_free(
    session: AsyncSession,
    rota: Rota,
    professional_id: uuid.UUID,
    role: ShiftRole,
    starts_at: datetime,
    ends_at: datetime,
    exclude: set[uuid.UUID] | None = None,
    field: str = "starts_at",
) -> None:
    """One primary (and one backup) at a time per rota; nobody both primary and backup at once."""
    repo = ShiftRepository(session)
    clash = await repo.overlapping(rota.id, starts_at, ends_at, role=role, exclude=exclude)
    if clash:
        other = clash[0]
        name = (await RotaRepository(session).professional_names({other.professional_id})).get(
            other.professional_id, ""
        )
        label = "titulaire" if role == ShiftRole.PRIMARY else "de second recours"
        raise Conflict(
            f"Chevauchement : une garde {label} est déjà prévue {_slot(other.starts_at, other.ends_at)} ({name}).",
            field=field,
            extra={"conflicting_shift_id": str(other.id)},
        )
    same_person = await repo.overlapping(
        rota.id, starts_at, ends_at, professional_id=professional_id, exclude=exclude
    )
    if same_person:
        other = same_person[0]
        raise Conflict(
            f"Ce professionnel est déjà de garde {_slot(other.starts_at, other.ends_at)} sur cette liste.",
            field="professional_id",
            extra={"conflicting_shift_id": str(other.id)},
        )


async def add_shift(
    session: AsyncSession, principal: Principal, rota_id: uuid.UUID, data: ShiftCreate
) -> Shift:
    rota = await _editable_rota(session, principal, rota_id)
    _check_times(data.starts_at, data.ends_at)
    await _check_member(session, rota, data.professional_id, "professional_id")
    await _check_free(session, rota, data.professional_id, data.role, data.starts_at, data.ends_at)
    return await ShiftRepository(session).add(
        Shift(
            rota_id=rota.id,
            professional_id=data.professional_id,
            planned_professional_id=data.professional_id,
            role=data.role,
            starts_at=data.starts_at,
            ends_at=data.ends_at,
            note=data.note,
            created_by=principal.professional_id,
        )
    )


async def cancel_shift(session: AsyncSession, principal: Principal, shift_id: uuid.UUID) -> Shift:
    shift = await _shift(session, shift_id)
    await _editable_rota(session, principal, shift.rota_id)
    shift.cancelled_at = clock.now()
    await session.flush()
    return shift


def expand_pattern(data: PatternCreate) -> list[tuple[datetime, datetime]]:
    """The UTC intervals of a weekly pattern written in Paris local time (DST-aware via zoneinfo)."""
    if data.valid_until < data.valid_from:
        raise InvalidInput("La date de fin doit suivre la date de début.", field="valid_until")
    if (data.valid_until - data.valid_from).days > MAX_PATTERN_DAYS:
        raise InvalidInput(f"Un modèle couvre au plus {MAX_PATTERN_DAYS} jours.", field="valid_until")
    if data.start_time.second or data.end_time.second:
        raise InvalidInput("Heures attendues à la minute près.", field="start_time")
    overnight = data.end_time <= data.start_time
    intervals = []
    day = data.valid_from
    while day <= data.valid_until:
        if day.isoweekday() in data.weekdays:
            end_day = day + timedelta(days=1) if overnight else day
            start = _paris(day, data.start_time)
            end = _paris(end_day, data.end_time)
            intervals.append((start, end))
        day += timedelta(days=1)
    return intervals


def _paris(day: date, at: time) -> datetime:
    """Paris wall-clock time to UTC. A time skipped by the spring change (02:30) lands after it (03:30, fold=0);
    a repeated autumn time (02:30) is its first occurrence (summer time)."""
    return clock.as_utc(datetime.combine(day, at, tzinfo=clock.PARIS))


async def add_pattern(
    session: AsyncSession, principal: Principal, rota_id: uuid.UUID, data: PatternCreate
) -> tuple[ShiftPattern, list[Shift]]:
    """Record a weekly pattern and create its shifts; any conflict refuses the whole pattern (nothing written)."""
    rota = await _editable_rota(session, principal, rota_id)
    await _check_member(session, rota, data.professional_id, "professional_id")
    intervals = expand_pattern(data)
    if not intervals:
        raise InvalidInput("Aucun jour de la période ne correspond aux jours choisis.", field="weekdays")
    for start, end in intervals:  # all checked before anything is written
        await _check_free(session, rota, data.professional_id, data.role, start, end, field="weekdays")
    repo = ShiftRepository(session)
    pattern = await repo.add_pattern(
        ShiftPattern(
            rota_id=rota.id,
            professional_id=data.professional_id,
            role=data.role,
            label=data.label,
            weekdays=",".join(str(d) for d in data.weekdays),
            start_time=data.start_time,
            end_time=data.end_time,
            valid_from=data.valid_from,
            valid_until=data.valid_until,
            created_by=principal.professional_id,
        )
    )
    shifts = []
    for start, end in intervals:
        shift = Shift(
            rota_id=rota.id,
            professional_id=data.professional_id,
            planned_professional_id=data.professional_id,
            role=data.role,
            starts_at=start,
            ends_at=end,
            pattern_id=pattern.id,
            note=data.label,
            created_by=principal.professional_id,
        )
        session.add(shift)
        shifts.append(shift)
    await session.flush()
    return pattern, shifts


async def _shift(session: AsyncSession, shift_id: uuid.UUID) -> Shift:
    shift = await ShiftRepository(session).get(shift_id)
    if shift is None or shift.cancelled_at is not None:
        raise NotFound("Garde introuvable.")
    return shift


async def replace_shift(
    session: AsyncSession, principal: Principal, shift_id: uuid.UUID, data: ReplacementCreate
) -> Shift:
    """Hand a shift to another member (its holder, an administrator or the head of service records it)."""
    shift = await _shift(session, shift_id)
    rota = await _visible_rota(session, principal, shift.rota_id)
    if not (can_edit(principal, rota) or principal.professional_id == shift.professional_id):
        raise Forbidden(
            "Seuls le titulaire de la garde, l'administrateur et le chef de service peuvent la céder."
        )
    if data.to_professional_id == shift.professional_id:
        raise InvalidInput("Le remplaçant doit être un autre professionnel.", field="to_professional_id")
    await _check_member(session, rota, data.to_professional_id, "to_professional_id")
    await _check_free(
        session,
        rota,
        data.to_professional_id,
        shift.role,
        shift.starts_at,
        shift.ends_at,
        exclude={shift.id},
        field="to_professional_id",
    )
    await ShiftRepository(session).add_change(
        ShiftChange(
            shift_id=shift.id,
            kind=ShiftChangeKind.REPLACEMENT,
            from_professional_id=shift.professional_id,
            to_professional_id=data.to_professional_id,
            reason=data.reason,
            recorded_by=principal.professional_id,
            recorded_at=clock.now(),
        )
    )
    shift.professional_id = data.to_professional_id
    await session.flush()
    return shift


async def swap_shifts(
    session: AsyncSession, principal: Principal, shift_id: uuid.UUID, data: SwapCreate
) -> tuple[Shift, Shift]:
    """Two members of the same rota exchange their shifts (recorded on both)."""
    first = await _shift(session, shift_id)
    second = await _shift(session, data.other_shift_id)
    rota = await _visible_rota(session, principal, first.rota_id)
    if second.rota_id != first.rota_id:
        raise InvalidInput("Les deux gardes doivent appartenir à la même liste.", field="other_shift_id")
    if first.professional_id == second.professional_id:
        raise InvalidInput("Les deux gardes sont déjà tenues par la même personne.", field="other_shift_id")
    if not (
        can_edit(principal, rota)
        or principal.professional_id in (first.professional_id, second.professional_id)
    ):
        raise Forbidden(
            "Seuls les titulaires des gardes, l'administrateur et le chef de service peuvent les échanger."
        )
    a, b = first.professional_id, second.professional_id
    for shift, taker in ((first, b), (second, a)):
        await _check_free(
            session,
            rota,
            taker,
            shift.role,
            shift.starts_at,
            shift.ends_at,
            exclude={first.id, second.id},
            field="other_shift_id",
        )
    repo = ShiftRepository(session)
    now = clock.now()
    for shift, other, giver, taker in ((first, second, a, b), (second, first, b, a)):
        await repo.add_change(
            ShiftChange(
                shift_id=shift.id,
                kind=ShiftChangeKind.SWAP,
                from_professional_id=giver,
                to_professional_id=taker,
                other_shift_id=other.id,
                reason=data.reason,
                recorded_by=principal.professional_id,
                recorded_at=now,
            )
        )
        shift.professional_id = taker
    await session.flush()
    return first, second


def _within_years(value: datetime, field: str) -> datetime:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InvalidInput(f"Date attendue entre {FIRST_YEAR} et {LAST_YEAR}.", field=field)
    return clock.as_utc(value)


async def list_shifts(
    session: AsyncSession,
    principal: Principal,
    rota_id: uuid.UUID,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Shifts overlapping ``[start, end)`` (default: now and the next 30 days)."""
    rota = await _visible_rota(session, principal, rota_id)
    start = _within_years(start, "from") if start else clock.now()
    end = _within_years(end, "to") if end else start + timedelta(days=COVERAGE_DAYS)
    if end <= start:
        raise InvalidInput("La fin de la période doit suivre son début.", field="to")
    if end - start > timedelta(days=MAX_PATTERN_DAYS):
        raise InvalidInput(f"Période de {MAX_PATTERN_DAYS} jours au plus.", field="to")
    shifts = await ShiftRepository(session).between(rota.id, start, end)
    names = await RotaRepository(session).professional_names({s.professional_id for s in shifts})
    return [_shift_dict(s, names) for s in shifts]


def _shift_dict(shift: Shift, names: dict[uuid.UUID, str]) -> dict[str, Any]:
    return {
        "id": shift.id,
        "rota_id": shift.rota_id,
        "professional_id": shift.professional_id,
        "professional_name": names.get(shift.professional_id, ""),
        "role": shift.role,
        "starts_at": shift.starts_at,
        "ends_at": shift.ends_at,
        "pattern_id": shift.pattern_id,
        "planned_professional_id": shift.planned_professional_id,
        "note": shift.note,
    }


async def shift_changes(
    session: AsyncSession, principal: Principal, shift_id: uuid.UUID
) -> list[ShiftChange]:
    shift = await _shift(session, shift_id)
    await _visible_rota(session, principal, shift.rota_id)
    return await ShiftRepository(session).changes([shift.id])


# --- who is on duty, coverage ---------------------------------------------------------------------------------


async def on_duty(session: AsyncSession, rota_id: uuid.UUID, at: datetime) -> OnDuty:
    """The primary and backup on duty at ``at`` (after swaps and replacements: shifts hold their current
    holder), and the rota's head of service."""
    rota = await RotaRepository(session).get(rota_id)
    if rota is None:
        raise NotFound("Liste de garde introuvable.")
    at = _within_years(at, "at")
    primary = backup = None
    for shift in await ShiftRepository(session).at(rota.id, at):
        if shift.role == ShiftRole.PRIMARY and primary is None:
            primary = shift
        elif shift.role == ShiftRole.BACKUP and backup is None:
            backup = shift
    return OnDuty(
        rota_id=rota.id,
        at=at,
        primary_professional_id=primary.professional_id if primary else None,
        primary_shift_id=primary.id if primary else None,
        backup_professional_id=backup.professional_id if backup else None,
        backup_shift_id=backup.id if backup else None,
        head_professional_id=rota.head_professional_id,
    )


def _floor_minute(value: datetime) -> datetime:
    return value.replace(second=0, microsecond=0)


async def coverage(
    session: AsyncSession,
    principal: Principal,
    rota_id: uuid.UUID,
    start: datetime | None = None,
    days: int = COVERAGE_DAYS,
) -> CoverageRead:
    """Every interval (to the minute) without a primary in ``[start, start + days)`` (default: now, 30 days)."""
    rota = await _visible_rota(session, principal, rota_id)
    if not 1 <= days <= 366:
        raise InvalidInput("Durée attendue de 1 à 366 jours.", field="days")
    begin = _floor_minute(_within_years(start, "from") if start else clock.now())
    end = begin + timedelta(days=days)
    gaps = compute_gaps(
        [
            (s.starts_at, s.ends_at)
            for s in await ShiftRepository(session).between(rota.id, begin, end, ShiftRole.PRIMARY)
        ],
        begin,
        end,
    )
    return CoverageRead(rota_id=rota.id, starts_at=begin, ends_at=end, covered=not gaps, gaps=gaps)


def compute_gaps(
    intervals: list[tuple[datetime, datetime]], begin: datetime, end: datetime
) -> list[CoverageGap]:
    gaps: list[CoverageGap] = []
    cursor = begin
    for s, e in sorted((clock.as_utc(s), clock.as_utc(e)) for s, e in intervals):
        if s > cursor:
            gap_end = min(s, end)
            gaps.append(_gap(cursor, gap_end))
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append(_gap(cursor, end))
    return [g for g in gaps if g.minutes > 0]


def _gap(start: datetime, end: datetime) -> CoverageGap:
    return CoverageGap(starts_at=start, ends_at=end, minutes=int((end - start).total_seconds() // 60))


async def my_shifts(session: AsyncSession, principal: Principal, days: int = 60) -> list[tuple[Shift, str]]:
    now = clock.now()
    return await ShiftRepository(session).for_professional(
        principal.professional_id, now, now + timedelta(days=days)
    )


# --- ICS ------------------------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_calendar_feed(session: AsyncSession, principal: Principal) -> str:
    """A new secret feed address for the principal's shifts (the previous one stops working). Shown once."""
    token = secrets.token_urlsafe(32)
    repo = CalendarFeedRepository(session)
    feed = await repo.for_professional(principal.professional_id)
    if feed is None:
        await repo.add(CalendarFeed(professional_id=principal.professional_id, token_hash=_token_hash(token)))
    else:
        feed.token_hash = _token_hash(token)
        feed.created_at = clock.now()
        await session.flush()
    return token


async def professional_for_feed(session: AsyncSession, token: str) -> uuid.UUID:
    feed = await CalendarFeedRepository(session).by_hash(_token_hash(token))
    if feed is None:
        raise NotFound("Calendrier introuvable (adresse révoquée ou inconnue).")
    return feed.professional_id


async def shifts_ics(session: AsyncSession, professional_id: uuid.UUID, *, past_days: int = 30) -> bytes:
    """The professional's shifts (30 days back, everything ahead) as an iCalendar feed (RFC 5545)."""
    shifts = await ShiftRepository(session).for_professional(
        professional_id, clock.now() - timedelta(days=past_days)
    )
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Télésanté//Gardes et astreintes//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "Mes gardes — Télésanté")
    stamp = clock.now()
    for shift, rota_name in shifts:
        event = icalendar.Event()
        event.add("uid", f"garde-{shift.id}@telesante")
        event.add("dtstamp", stamp)
        event.add("dtstart", clock.as_utc(shift.starts_at))
        event.add("dtend", clock.as_utc(shift.ends_at))
        role = "titulaire" if shift.role == ShiftRole.PRIMARY else "second recours"
        event.add("summary", f"Garde {role} — {rota_name}")
        if shift.note:
            event.add("description", shift.note)
        calendar.add_component(event)
    return calendar.to_ical()


# --- paging ---------------------------------------------------------------------------------------------------


async def _page_read(session: AsyncSession, page: Page, events: list[PageEvent] | None = None) -> OnCallPage:
    """``events``: the page's whole journal when the caller has just written it (a new page)."""
    if events is None:
        events = await PageRepository(session).events([page.id])
    return OnCallPage(
        id=page.id,
        rota_id=page.rota_id,
        subject_type=page.subject_type,
        subject_id=page.subject_id,
        summary=page.summary,
        urgent=page.urgent,
        ack_minutes=page.ack_minutes,
        status=page.status,
        target=page.target,
        professional_id=page.paged_professional_id,
        uncovered=page.uncovered,
        paged_at=page.paged_at,
        escalate_at=page.escalate_at,
        acknowledged_at=page.acknowledged_at,
        acknowledged_by=page.acknowledged_by,
        events=[PageEventRead.model_validate(e) for e in events],
    )


async def _record(
    session: AsyncSession,
    page: Page,
    kind: PageEventKind,
    target: PageTarget | None,
    professional_id: uuid.UUID | None,
    detail: str = "",
    seq: int | None = None,
) -> PageEvent:
    """``seq``: the event's rank when the caller knows it (a page created by this transaction)."""
    return await PageRepository(session).add_event(
        PageEvent(
            page_id=page.id,
            kind=kind,
            target=target,
            professional_id=professional_id,
            at=clock.now(),
            detail=detail,
        ),
        seq=seq,
    )


def _notify(session: AsyncSession, page: Page, recipients: frozenset[uuid.UUID], kind: str) -> None:
    """Real-time notice to the paged person's accounts, after commit. The events package is imported lazily and
    its absence (or failure) never blocks paging: the page is recorded and shown on "mes gardes" anyway."""
    if not recipients:
        return
    try:
        from telesante.events.bus import Event
        from telesante.events.service import publish_on_commit
    except ImportError:  # pragma: no cover - the event bus ships with the app
        return
    publish_on_commit(
        session,
        Event(
            type=kind,
            recipients=recipients,
            data={
                "page_id": str(page.id),
                "rota_id": str(page.rota_id),
                "subject_type": page.subject_type,
                "subject_id": str(page.subject_id),
                "summary": page.summary,
                "target": page.target.value,
                "status": page.status.value,
                "url": f"/gardes/appels/{page.id}",
            },
            urgent=page.urgent,
        ),
    )


async def _call(
    session: AsyncSession,
    page: Page,
    target: PageTarget,
    professional_id: uuid.UUID,
    kind: PageEventKind,
    detail: str = "",
    seq: int | None = None,
) -> PageEvent:
    """Page ``professional_id`` now and arm the escalation timer (unless the head of service is paged: the last
    step, after which the page is marked exhausted). ``seq`` is given for a page created by this transaction: its
    journal's next rank, and no timer can be pending for it yet."""
    now = clock.now()
    page.target = target
    page.paged_professional_id = professional_id
    page.paged_at = now
    page.escalate_at = now + timedelta(minutes=page.ack_minutes)
    await session.flush()
    event = await _record(session, page, kind, target, professional_id, detail, seq)
    await schedule_job(
        session,
        ESCALATE_JOB,
        page.escalate_at,
        {"page_id": str(page.id), "target": target.value},
        dedupe_key=str(page.id),
        new_key=seq is not None,
    )
    _notify(session, page, await RotaRepository(session).account_ids(professional_id), "oncall.page")
    return event


async def page_on_call(
    session: AsyncSession,
    rota_id: uuid.UUID,
    *,
    subject_type: str,
    subject_id: uuid.UUID,
    summary: str,
    ack_minutes: int,
    urgent: bool,
    principal: Principal | None = None,
) -> OnCallPage:
    """Page whoever is on duty now; without acknowledgement within ``ack_minutes`` the page escalates to the
    backup, then to the head of service. An uncovered slot (no primary) pages the head directly and says so."""
    rota = await RotaRepository(session).get(rota_id)
    if rota is None:
        raise InvalidInput("Liste de garde inconnue.", field="rota_id")
    if not 1 <= ack_minutes <= 120:
        raise InvalidInput("Délai d'acquittement attendu de 1 à 120 minutes.", field="ack_minutes")
    summary = summary.strip()
    if not summary or len(summary) > 300:
        raise InvalidInput("Résumé de l'appel obligatoire (300 caractères au plus).", field="summary")
    if not subject_type or len(subject_type) > 50:
        raise InvalidInput("Type de sujet invalide.", field="subject_type")
    duty = await on_duty(session, rota.id, clock.now())
    page = Page(
        id=uuid.uuid4(),  # known before the insert: the page is written once, with its first call
        rota_id=rota.id,
        subject_type=subject_type,
        subject_id=subject_id,
        summary=summary,
        urgent=urgent,
        ack_minutes=ack_minutes,
        status=PageStatus.PENDING,
        target=PageTarget.PRIMARY,
        paged_professional_id=duty.primary_professional_id or rota.head_professional_id,
        uncovered=duty.primary_professional_id is None,
        created_at=clock.now(),
        paged_at=clock.now(),
        created_by=principal.professional_id if principal else None,
    )
    PageRepository(session).stage(page)
    if duty.primary_professional_id is not None:
        events = [
            await _call(
                session, page, PageTarget.PRIMARY, duty.primary_professional_id, PageEventKind.PAGED, seq=1
            )
        ]
    else:
        events = [
            await _record(
                session,
                page,
                PageEventKind.SKIPPED,
                PageTarget.PRIMARY,
                None,
                "Créneau non couvert : aucun titulaire de garde.",
                seq=1,
            ),
            await _call(
                session,
                page,
                PageTarget.HEAD,
                rota.head_professional_id,
                PageEventKind.PAGED,
                "Créneau non couvert : appel direct du chef de service.",
                seq=2,
            ),
        ]
    return await _page_read(session, page, events)


async def escalate_page(session: AsyncSession, payload: dict[str, Any]) -> None:
    """Timer: the paged person did not acknowledge in time; page the next in line (backup, then head)."""
    page = await PageRepository(session).get_for_update(uuid.UUID(payload["page_id"]))
    if page is None or page.status != PageStatus.PENDING or page.target.value != payload.get("target"):
        return  # acknowledged, resolved, or already escalated: a stale timer
    target = page.target
    missed = page.paged_professional_id
    detail = f"Pas d'acquittement en {page.ack_minutes} min."
    if target == PageTarget.HEAD:
        page.status = PageStatus.EXHAUSTED
        page.escalate_at = None
        await session.flush()
        await _record(session, page, PageEventKind.EXHAUSTED, target, missed, detail + " Escalade épuisée.")
        _notify(session, page, await RotaRepository(session).account_ids(missed), "oncall.page")
        return
    rota = await RotaRepository(session).get(page.rota_id)
    assert rota is not None
    if target == PageTarget.PRIMARY:
        duty = await on_duty(session, rota.id, clock.now())
        backup = duty.backup_professional_id
        if backup is not None and backup != missed:
            await _call(session, page, PageTarget.BACKUP, backup, PageEventKind.ESCALATED, detail)
            return
        await _record(
            session, page, PageEventKind.SKIPPED, PageTarget.BACKUP, None, "Aucun second recours de garde."
        )
    await _call(session, page, PageTarget.HEAD, rota.head_professional_id, PageEventKind.ESCALATED, detail)


async def acknowledge_page(session: AsyncSession, principal: Principal, page_id: uuid.UUID) -> OnCallPage:
    """The paged person takes the call: the escalation timer is cancelled."""
    page = await PageRepository(session).get_for_update(page_id)
    if page is None:
        raise NotFound("Appel introuvable.")
    if page.paged_professional_id != principal.professional_id:
        if await _can_see_page(session, principal, page):
            raise Forbidden("Seule la personne appelée peut acquitter cet appel.")
        raise NotFound("Appel introuvable.")
    if page.status == PageStatus.ACKNOWLEDGED:
        raise Conflict("Appel déjà acquitté.", field="status")
    if page.status == PageStatus.CANCELLED:
        raise Conflict("Appel clos : la demande a été prise en charge.", field="status")
    now = clock.now()
    page.status = PageStatus.ACKNOWLEDGED
    page.acknowledged_at = now
    page.acknowledged_by = principal.professional_id
    page.escalate_at = None
    await session.flush()
    await _record(session, page, PageEventKind.ACKNOWLEDGED, page.target, principal.professional_id)
    await cancel_jobs(session, ESCALATE_JOB, str(page.id))
    return await _page_read(session, page)


async def resolve_pages(session: AsyncSession, subject_type: str, subject_id: uuid.UUID) -> int:
    """The subject was taken care of (a request accepted by someone): pending pages stop escalating."""
    count = 0
    for page in await PageRepository(session).for_subject(subject_type, subject_id):
        if page.status in (PageStatus.PENDING, PageStatus.EXHAUSTED):
            page.status = PageStatus.CANCELLED
            page.escalate_at = None
            await session.flush()
            await _record(
                session, page, PageEventKind.ACKNOWLEDGED, None, None, "Prise en charge par ailleurs."
            )
            await cancel_jobs(session, ESCALATE_JOB, str(page.id))
            count += 1
    return count


async def list_pages(session: AsyncSession, subject_type: str, subject_id: uuid.UUID) -> list[OnCallPage]:
    return [
        await _page_read(session, p)
        for p in await PageRepository(session).for_subject(subject_type, subject_id)
    ]


async def _can_see_page(session: AsyncSession, principal: Principal, page: Page) -> bool:
    try:
        await _visible_rota(session, principal, page.rota_id)
    except NotFound:
        return False
    return True


async def get_page(session: AsyncSession, principal: Principal, page_id: uuid.UUID) -> OnCallPage:
    page = await PageRepository(session).get(page_id)
    if page is None or not (
        page.paged_professional_id == principal.professional_id
        or await _can_see_page(session, principal, page)
    ):
        raise NotFound("Appel introuvable.")
    return await _page_read(session, page)


async def my_pages(session: AsyncSession, principal: Principal) -> list[OnCallPage]:
    pages = await PageRepository(session).pending_for_professional(principal.professional_id)
    return [await _page_read(session, p) for p in pages]


async def professional_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    return await RotaRepository(session).professional_names(ids)
