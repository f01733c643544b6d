"""Scheduling rules: sites, doctors' availability (weekly patterns, exceptions, public holidays), slots, and
appointments booked, cancelled and rescheduled without ever giving one slot to two patients.

Slots are stored (FHIR Slot): a pattern creates the slots of its whole validity at once, in Paris time, skipping
public holidays; an exception blocks the free slots it covers. Booking claims a slot with one conditional update
(``SlotRepository.claim``) and a unique index keeps one live appointment per slot."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

import icalendar
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.config import Settings, get_settings
from telesante.consents.models import ConsentScopeType
from telesante.consents.service import check_consent
from telesante.directory.models import CLINICAL_ROLES, Role
from telesante.directory.repository import MembershipRepository, ProfessionalRepository
from telesante.events.bus import Event
from telesante.events.service import publish_on_commit
from telesante.jobs.service import cancel_jobs, schedule_job
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.kit.holidays import is_public_holiday
from telesante.offers.models import ActType, Offer
from telesante.offers.service import (
    get_offer,
    list_organisation_offers,
    list_requestable_offers,
    may_request,
)
from telesante.patients.service import link_patient_to_organisation, require_patient_access
from telesante.scheduling.models import (
    ELIGIBILITY_QUESTIONS,
    SITE_KIND_LABELS,
    Appointment,
    AppointmentStatus,
    AvailabilityException,
    AvailabilityPattern,
    SiteKind,
    Slot,
    SlotStatus,
    TeleconsultationSite,
    WaitingEntry,
    WaitingStatus,
)
from telesante.scheduling.repository import (
    AppointmentRepository,
    ExceptionRepository,
    PatternRepository,
    SiteRepository,
    SlotRepository,
    WaitingRepository,
)
from telesante.scheduling.schemas import (
    AppointmentCreate,
    AppointmentReschedule,
    CallPreparation,
    ExceptionCreate,
    PatternCreate,
    SiteCreate,
    WaitingCreate,
)

BOOKABLE_ACTS = frozenset({ActType.TELECONSULTATION, ActType.TELESOIN})
REMINDER_JOB = "scheduling.reminder"
MAX_PATTERN_DAYS = 366


# --- sites ----------------------------------------------------------------------------------------------------


async def create_site(session: AsyncSession, principal: Principal, data: SiteCreate) -> TeleconsultationSite:
    """A site of an organisation (its administrator); the assisting staff must work there."""
    if not principal.can_administer(data.organisation_id):
        raise Forbidden("Seul un administrateur de l'établissement déclare ses lieux de téléconsultation.")
    repo = SiteRepository(session)
    if await repo.get_by_name(data.organisation_id, data.name) is not None:
        raise Conflict("Un lieu de ce nom existe déjà dans l'établissement.", field="name")
    memberships = MembershipRepository(session)
    for professional_id in data.staff_professional_ids:
        if not any(
            [
                await memberships.holds_role(professional_id, data.organisation_id, role)
                for role in CLINICAL_ROLES
            ]
        ):
            raise InvalidInput(
                "Un membre de l'équipe sur place n'exerce pas dans cet établissement.",
                field="staff_professional_ids",
            )
    site = await repo.add(
        TeleconsultationSite(**data.model_dump(exclude={"staff_professional_ids"}), active=True)
    )
    await repo.set_staff(site.id, list(dict.fromkeys(data.staff_professional_ids)))
    await record_access(
        session, principal, action=Action.CREATE, object_type="TeleconsultationSite", object_id=site.id
    )
    return site


async def list_sites(
    session: AsyncSession, principal: Principal, organisation_id: uuid.UUID | None = None
) -> list[tuple[TeleconsultationSite, list[uuid.UUID]]]:
    """Sites of the principal's organisations (a regional administrator: all), with their staff."""
    if principal.is_regional_admin:
        organisations = None
    else:
        organisations = principal.clinical_organisation_ids | principal.admin_organisation_ids()
    if organisation_id is not None:
        if organisations is not None and organisation_id not in organisations:
            return []
        organisations = frozenset({organisation_id})
    repo = SiteRepository(session)
    sites = await repo.list_sites(organisations)
    staff = await repo.staff_of([site.id for site in sites])
    return [(site, staff[site.id]) for site in sites]


async def get_site(session: AsyncSession, site_id: uuid.UUID) -> TeleconsultationSite | None:
    return await SiteRepository(session).get(site_id)


async def professional_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    return await ProfessionalRepository(session).display_names(ids)


async def offer_titles(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {offer_id: (await get_offer(session, offer_id)).title for offer_id in ids}


async def site_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    repo = SiteRepository(session)
    return {site_id: site.name for site_id in ids if (site := await repo.get(site_id)) is not None}


def site_label(site: TeleconsultationSite | None) -> str:
    return site.name if site is not None else SITE_KIND_LABELS[SiteKind.HOME]


# --- availability ---------------------------------------------------------------------------------------------


async def _bookable_offer(session: AsyncSession, offer_id: uuid.UUID) -> Offer:
    offer = await get_offer(session, offer_id)
    if offer.act_type not in BOOKABLE_ACTS or not offer.active:
        raise InvalidInput(
            "Seules les offres actives de téléconsultation ou de télésoin se réservent sur créneaux.",
            field="offer_id",
        )
    return offer


async def _may_manage_agenda(session: AsyncSession, principal: Principal, professional_id: uuid.UUID) -> None:
    """A professional manages their own agenda; an administrator of an organisation where they work manages it
    too (the secretary's work is done through the administrator account or the doctor)."""
    if principal.professional_id == professional_id or principal.is_regional_admin:
        return
    for organisation_id in principal.admin_organisation_ids():
        if await MembershipRepository(session).holds_role(professional_id, organisation_id, Role.EXPERT):
            return
    raise Forbidden(
        "Vous ne pouvez modifier que votre propre agenda (ou celui des médecins de votre établissement)."
    )


def pattern_periods(data: PatternCreate, zone: str) -> list[tuple[datetime, datetime]]:
    """The UTC slots of a weekly pattern written in Paris local time (DST-aware), public holidays skipped when
    asked. Each slot ends within the pattern's hours: a remainder shorter than a slot is not offered."""
    _within_years(data.valid_from, "valid_from")
    _within_years(data.valid_until, "valid_until")
    if (data.valid_until - data.valid_from).days >= MAX_PATTERN_DAYS:
        raise InvalidInput(f"Une disponibilité couvre au plus {MAX_PATTERN_DAYS} jours.", field="valid_until")
    if data.start_time.second or data.end_time.second or data.start_time.microsecond:
        raise InvalidInput("Heures attendues à la minute près.", field="start_time")
    step = timedelta(minutes=data.slot_minutes)
    periods = []
    day = data.valid_from
    while day <= data.valid_until:
        if day.isoweekday() in data.weekdays and not (
            data.skip_public_holidays and is_public_holiday(day, zone)
        ):
            start = datetime.combine(day, data.start_time)
            end_of_day = datetime.combine(day, data.end_time)
            while start + step <= end_of_day:
                periods.append((_paris(start), _paris(start + step)))
                start += step
        day += timedelta(days=1)
    return periods


def _within_years(day: date, field: str) -> None:
    """A day the platform can place in time (a year like 0001 or 9999 overflows once moved to UTC or a week on)."""
    if not clock.FIRST_YEAR <= day.year <= clock.LAST_YEAR:
        raise InvalidInput(f"Date attendue entre {clock.FIRST_YEAR} et {clock.LAST_YEAR}.", field=field)


def _paris(local: datetime) -> datetime:
    return clock.as_utc(local.replace(tzinfo=clock.PARIS))


def _first_overlap(
    new: list[tuple[datetime, datetime]], existing: list[tuple[datetime, datetime]]
) -> tuple[datetime, datetime] | None:
    """The first new period that overlaps an existing one (both lists sorted by start)."""
    existing = [(clock.as_utc(s), clock.as_utc(e)) for s, e in existing]
    i = 0
    for start, end in new:
        while i < len(existing) and existing[i][1] <= start:
            i += 1
        if i < len(existing) and existing[i][0] < end:
            return start, end
    return None


async def add_pattern(
    session: AsyncSession, principal: Principal, data: PatternCreate, settings: Settings
) -> tuple[AvailabilityPattern, int]:
    """Record a doctor's weekly availability for an offer and create its slots (from now on); a slot that would
    overlap one the doctor already has refuses the whole pattern, naming the first clash."""
    await _may_manage_agenda(session, principal, data.professional_id)
    offer = await _bookable_offer(session, data.offer_id)
    if not await MembershipRepository(session).holds_role(
        data.professional_id, offer.organisation_id, Role.EXPERT
    ):
        raise InvalidInput(
            "Ce professionnel n'est pas expert dans l'établissement qui propose cette offre.",
            field="professional_id",
        )
    now = clock.now()
    periods = [(s, e) for s, e in pattern_periods(data, settings.public_holidays) if s > now]
    if not periods:
        raise InvalidInput(
            "Aucun créneau à venir : vérifiez les jours, les heures et la période.", field="weekdays"
        )
    slots = SlotRepository(session)
    clash = _first_overlap(
        periods, await slots.periods_between(data.professional_id, periods[0][0], periods[-1][1])
    )
    if clash is not None:
        raise Conflict(
            f"Le créneau du {clock.format_paris(clash[0])} chevauche une disponibilité déjà ouverte.",
            field="start_time",
        )
    pattern = await PatternRepository(session).add(
        AvailabilityPattern(**data.model_dump(), created_by_account_id=principal.account_id)
    )
    exceptions = await ExceptionRepository(session).active_overlapping(
        data.professional_id, periods[0][0], periods[-1][1]
    )
    blocked = [(clock.as_utc(x.starts_at), clock.as_utc(x.ends_at)) for x in exceptions]
    await slots.add_many(
        [
            Slot(
                professional_id=data.professional_id,
                offer_id=data.offer_id,
                pattern_id=pattern.id,
                starts_at=start,
                ends_at=end,
                status=SlotStatus.BLOCKED
                if any(bs < end and be > start for bs, be in blocked)
                else SlotStatus.FREE,
            )
            for start, end in periods
        ]
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="AvailabilityPattern",
        object_id=pattern.id,
        details={"slots": len(periods)},
    )
    return pattern, len(periods)


async def end_pattern(
    session: AsyncSession, principal: Principal, pattern_id: uuid.UUID
) -> tuple[AvailabilityPattern, int]:
    """Stop a pattern: its future slots that nobody booked disappear; booked appointments stay (move them)."""
    pattern = await PatternRepository(session).get(pattern_id)
    if pattern is None:
        raise NotFound("Disponibilité introuvable.")
    await _may_manage_agenda(session, principal, pattern.professional_id)
    if pattern.ended_at is not None:
        raise Conflict("Cette disponibilité est déjà arrêtée.")
    pattern.ended_at = clock.now()
    removed = await SlotRepository(session).delete_unbooked_of_pattern(pattern.id, pattern.ended_at)
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="AvailabilityPattern",
        object_id=pattern.id,
        details={"ended": True, "slots_removed": removed},
    )
    return pattern, removed


async def list_patterns(
    session: AsyncSession, principal: Principal, professional_id: uuid.UUID
) -> list[AvailabilityPattern]:
    await _may_manage_agenda(session, principal, professional_id)
    return await PatternRepository(session).list_for_professional(professional_id)


async def add_exception(
    session: AsyncSession, principal: Principal, data: ExceptionCreate
) -> tuple[AvailabilityException, int, list[Appointment]]:
    """The doctor is away: free slots in the period are blocked; booked appointments in it are listed to be
    moved (they are not cancelled behind the patient's back)."""
    await _may_manage_agenda(session, principal, data.professional_id)
    starts_at, ends_at = clock.as_utc(data.starts_at), clock.as_utc(data.ends_at)
    if ends_at - starts_at > timedelta(days=MAX_PATTERN_DAYS):
        raise InvalidInput(f"Une indisponibilité couvre au plus {MAX_PATTERN_DAYS} jours.", field="ends_at")
    exception = await ExceptionRepository(session).add(
        AvailabilityException(
            professional_id=data.professional_id,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=data.reason,
            created_by_account_id=principal.account_id,
        )
    )
    blocked = await SlotRepository(session).block_free(data.professional_id, starts_at, ends_at)
    to_move = await AppointmentRepository(session).booked_between(data.professional_id, starts_at, ends_at)
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="AvailabilityException",
        object_id=exception.id,
        details={"slots_blocked": blocked, "appointments_to_move": len(to_move)},
    )
    return exception, blocked, to_move


async def remove_exception(session: AsyncSession, principal: Principal, exception_id: uuid.UUID) -> int:
    """The doctor is available again: slots the exception blocked become free, unless another one covers them."""
    repo = ExceptionRepository(session)
    exception = await repo.get(exception_id)
    if exception is None or exception.removed_at is not None:
        raise NotFound("Indisponibilité introuvable.")
    await _may_manage_agenda(session, principal, exception.professional_id)
    exception.removed_at = clock.now()
    await session.flush()
    slots = SlotRepository(session)
    others = await repo.active_overlapping(exception.professional_id, exception.starts_at, exception.ends_at)
    freed = 0
    for slot in await slots.blocked_between(
        exception.professional_id, exception.starts_at, exception.ends_at
    ):
        if not any(o.starts_at < slot.ends_at and o.ends_at > slot.starts_at for o in others):
            slot.status = SlotStatus.FREE
            freed += 1
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.DELETE,
        object_type="AvailabilityException",
        object_id=exception.id,
        details={"slots_freed": freed},
    )
    return freed


# --- slots and appointments -----------------------------------------------------------------------------------


def _booking_organisation(
    principal: Principal, organisation_id: uuid.UUID | None, *, clinical: bool = False
) -> uuid.UUID:
    """The organisation booking: one of the principal's clinical ones, or (unless ``clinical``) one whose medical
    secretariat it is."""
    organisations = principal.clinical_organisation_ids if clinical else principal.identity_organisation_ids
    if organisation_id is not None:
        if organisation_id not in organisations:
            raise Forbidden("Vous n'exercez pas dans cet établissement.")
        return organisation_id
    if len(organisations) == 1:
        return next(iter(organisations))
    if not organisations:
        raise Forbidden(
            "Réserver une téléconsultation demande un rôle clinique ou de secrétariat médical dans un établissement."
            if not clinical
            else "Inscrire un patient en file d'attente demande un rôle clinique dans un établissement."
        )
    raise InvalidInput(
        "Vous exercez dans plusieurs établissements : précisez celui qui réserve.", field="organisation_id"
    )


async def _check_site(session: AsyncSession, site_id: uuid.UUID | None, organisation_id: uuid.UUID) -> None:
    """A chosen site must be an active site of the booking organisation (none: the patient's home)."""
    if site_id is None:
        return
    site = await SiteRepository(session).get(site_id)
    if site is None or not site.active or site.organisation_id != organisation_id:
        raise InvalidInput("Lieu de téléconsultation inconnu dans votre établissement.", field="site_id")


async def _may_book(session: AsyncSession, offer: Offer, organisation_id: uuid.UUID) -> bool:
    return organisation_id == offer.organisation_id or await may_request(session, offer, organisation_id)


async def _may_book_for(session: AsyncSession, principal: Principal, offer: Offer) -> bool:
    """The principal may book this offer: through a clinical organisation that may request it, or as the medical
    secretariat of the organisation whose doctors give it (a secretariat books for its own doctors only)."""
    if offer.organisation_id in principal.secretariat_organisation_ids:
        return True
    return any([await _may_book(session, offer, org) for org in principal.clinical_organisation_ids])


async def bookable_offers(session: AsyncSession, principal: Principal) -> list[Offer]:
    """Teleconsultation offers the principal may book: those its clinical organisations may request, and those of
    the organisations whose medical secretariat it is."""
    found = {
        offer.id: offer
        for offer in await list_requestable_offers(session, principal, act_type=ActType.TELECONSULTATION)
    }
    for organisation_id in sorted(principal.secretariat_organisation_ids):
        for offer in await list_organisation_offers(session, organisation_id):
            if offer.active and offer.act_type == ActType.TELECONSULTATION:
                found.setdefault(offer.id, offer)
    return sorted(found.values(), key=lambda offer: offer.title.lower())


async def list_free_slots(
    session: AsyncSession,
    principal: Principal,
    offer_id: uuid.UUID,
    settings: Settings,
    *,
    starts_at: datetime | None = None,
    days: int | None = None,
    professional_id: uuid.UUID | None = None,
) -> list[tuple[Slot, str]]:
    """Free slots of an offer the principal's organisations may book, from now (or ``starts_at``) over ``days``
    (at most the booking horizon), each with its doctor's name."""
    offer = await _bookable_offer(session, offer_id)
    if not await _may_book_for(session, principal, offer):
        raise NotFound("Offre inconnue.")
    now = clock.now()
    start = max(clock.as_utc(starts_at), now) if starts_at else now
    horizon = now + timedelta(days=settings.scheduling_horizon_days)
    end = min(start + timedelta(days=days or settings.scheduling_horizon_days), horizon)
    slots = await SlotRepository(session).free_slots(offer.id, start, end, professional_id)
    names = await ProfessionalRepository(session).display_names({slot.professional_id for slot in slots})
    return [(slot, names.get(slot.professional_id, "")) for slot in slots]


async def _visible(
    session: AsyncSession, principal: Principal, appointment_id: uuid.UUID, *, clinical: bool = False
) -> Appointment:
    appointment = await AppointmentRepository(session).get_visible(principal, appointment_id, clinical)
    if appointment is None:
        raise NotFound("Rendez-vous introuvable.")
    return appointment


async def _claim(
    session: AsyncSession,
    principal: Principal,
    slot_id: uuid.UUID,
    *,
    patient_id: uuid.UUID,
    organisation_id: uuid.UUID,
    site_id: uuid.UUID | None,
    reason: str,
    callback_phone: str,
    own_doctors_only: bool = False,
) -> Appointment:
    """Claim a slot for the booking ``organisation_id``; ``own_doctors_only``: it books through its medical
    secretariat, for its own doctors' offers only."""
    slots = SlotRepository(session)
    slot = await slots.get(slot_id)
    if slot is None:
        raise NotFound("Créneau introuvable.")
    offer = await _bookable_offer(session, slot.offer_id)
    if not await _may_book(session, offer, organisation_id):
        raise Forbidden("Votre établissement ne peut pas demander cette offre.")
    if own_doctors_only and offer.organisation_id != organisation_id:
        raise Forbidden(
            "Un secrétariat médical ne programme que les téléconsultations des médecins de son établissement."
        )
    await _check_site(session, site_id, organisation_id)
    now = clock.now()
    if clock.as_utc(slot.starts_at) <= now:
        raise Conflict("Ce créneau est passé : choisissez-en un autre.", field="slot_id")
    if not await slots.claim(slot.id, now):
        raise Conflict(
            "Ce créneau n'est plus libre (réservé entre-temps ou indisponible) : choisissez-en un autre.",
            field="slot_id",
        )
    appointment = Appointment(
        slot_id=slot.id,
        offer_id=offer.id,
        professional_id=slot.professional_id,
        expert_organisation_id=offer.organisation_id,
        patient_id=patient_id,
        organisation_id=organisation_id,
        site_id=site_id,
        starts_at=clock.as_utc(slot.starts_at),
        ends_at=clock.as_utc(slot.ends_at),
        status=AppointmentStatus.BOOKED,
        reason=reason,
        callback_phone=callback_phone,
        booked_by_account_id=principal.account_id,
        booked_by_name=principal.display_name,
    )
    try:
        async with session.begin_nested():
            await AppointmentRepository(session).add(appointment)
    except IntegrityError:
        raise Conflict("Ce créneau vient d'être réservé : choisissez-en un autre.", field="slot_id") from None
    # the doctor's organisation sees the patient from now on (care relationship through the act)
    await link_patient_to_organisation(
        session, principal, patient_id, offer.organisation_id, f"appointment:{appointment.id}"
    )
    return appointment


async def book_appointment(
    session: AsyncSession, principal: Principal, data: AppointmentCreate
) -> Appointment:
    """Book a slot for a patient the principal cares for, or whose identity its medical secretariat holds (for the
    organisation's own doctors); exactly one of two simultaneous bookings succeeds."""
    organisation_id = _booking_organisation(principal, data.organisation_id)
    await require_patient_access(session, principal, data.patient_id, identity=True)
    appointment = await _claim(
        session,
        principal,
        data.slot_id,
        patient_id=data.patient_id,
        organisation_id=organisation_id,
        site_id=data.site_id,
        reason=data.reason,
        callback_phone=data.callback_phone,
        own_doctors_only=organisation_id not in principal.clinical_organisation_ids,
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="Appointment",
        object_id=appointment.id,
        patient_id=appointment.patient_id,
    )
    await _schedule_reminder(session, appointment)
    await _announce(session, appointment, "appointment.booked")
    return appointment


async def _schedule_reminder(session: AsyncSession, appointment: Appointment) -> None:
    hours = get_settings().appointment_reminder_hours
    run_at = clock.as_utc(appointment.starts_at) - timedelta(hours=hours)
    if hours and run_at > clock.now():
        await schedule_job(
            session,
            REMINDER_JOB,
            run_at,
            {"appointment_id": str(appointment.id)},
            dedupe_key=str(appointment.id),
        )


async def send_reminder(session: AsyncSession, payload: dict[str, Any]) -> None:
    """Timer before a teleconsultation: an e-mail to whoever booked it and to the doctor, an SMS to the callback
    number. No health data: the date, the time, the place, the link (the page asks to sign in)."""
    from telesante.auth.repository import AccountRepository
    from telesante.notifications.mail import Mail, send_after_commit
    from telesante.notifications.sms import send_sms_after_commit

    appointment = await AppointmentRepository(session).get(uuid.UUID(payload["appointment_id"]))
    if appointment is None or appointment.status != AppointmentStatus.BOOKED or appointment.reminder_sent_at:
        return
    settings = get_settings()
    site = await SiteRepository(session).get(appointment.site_id) if appointment.site_id else None
    when = clock.format_paris(appointment.starts_at)
    accounts = AccountRepository(session)
    emails = []
    for account in (
        await accounts.get(appointment.booked_by_account_id),
        await accounts.get_by_professional(appointment.professional_id),
    ):
        if account is not None and account.active and account.email not in emails:
            emails.append(account.email)
    link = f"{settings.public_url.rstrip('/')}/rendez-vous/{appointment.id}"
    send_after_commit(
        session,
        settings,
        Mail(
            to=tuple(emails),
            subject=f"Télésanté — rappel : téléconsultation le {when}",
            body=(
                f"Rappel : une téléconsultation est programmée le {when} ({site_label(site)}).\n"
                f"Préparez-la (éligibilité, consentement, numéro de rappel) et démarrez-la depuis : {link}\n\n"
                "Ce message ne contient aucune donnée de santé : connectez-vous pour la consulter."
            ),
        ),
    )
    if appointment.callback_phone:
        send_sms_after_commit(
            session,
            settings,
            appointment.callback_phone,
            f"Rappel : téléconsultation le {when} ({site_label(site)}). "
            "Si la vidéo ne fonctionne pas, le médecin vous rappellera à ce numéro.",
        )
    appointment.reminder_sent_at = clock.now()
    await session.flush()


async def _release(session: AsyncSession, appointment: Appointment) -> None:
    """The slot of a cancelled appointment: free again if it is still ahead and the doctor is available."""
    if appointment.slot_id is None or clock.as_utc(appointment.starts_at) <= clock.now():
        return
    away = await ExceptionRepository(session).active_overlapping(
        appointment.professional_id, appointment.starts_at, appointment.ends_at
    )
    await SlotRepository(session).set_status(
        appointment.slot_id, SlotStatus.BLOCKED if away else SlotStatus.FREE
    )


async def cancel_appointment(
    session: AsyncSession, principal: Principal, appointment_id: uuid.UUID, reason: str
) -> Appointment:
    appointment = await _visible(session, principal, appointment_id)
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict("Seul un rendez-vous programmé peut être annulé.", field="status")
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancelled_at = clock.now()
    appointment.cancelled_by_name = principal.display_name
    appointment.cancel_reason = reason
    await session.flush()
    await _release(session, appointment)
    await cancel_jobs(session, REMINDER_JOB, str(appointment.id))
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Appointment",
        object_id=appointment.id,
        patient_id=appointment.patient_id,
        details={"status": "cancelled"},
    )
    await _announce(session, appointment, "appointment.cancelled")
    return appointment


async def reschedule_appointment(
    session: AsyncSession, principal: Principal, appointment_id: uuid.UUID, data: AppointmentReschedule
) -> Appointment:
    """Move a booked appointment to another slot: the new one is claimed first; the old one is then cancelled and
    points to it. If the new slot is taken, nothing changes."""
    old = await _visible(session, principal, appointment_id)
    if old.status != AppointmentStatus.BOOKED:
        raise Conflict("Seul un rendez-vous programmé peut être reporté.", field="status")
    new = await _claim(
        session,
        principal,
        data.slot_id,
        patient_id=old.patient_id,
        organisation_id=old.organisation_id,
        site_id=old.site_id,
        reason=old.reason,
        callback_phone=old.callback_phone,
    )
    old.status = AppointmentStatus.CANCELLED
    old.cancelled_at = clock.now()
    old.cancelled_by_name = principal.display_name
    old.cancel_reason = data.reason
    old.rescheduled_to_id = new.id
    await session.flush()
    await _release(session, old)
    await cancel_jobs(session, REMINDER_JOB, str(old.id))
    await _schedule_reminder(session, new)
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Appointment",
        object_id=old.id,
        patient_id=old.patient_id,
        details={"rescheduled_to": str(new.id)},
    )
    await _announce(session, new, "appointment.booked")
    return new


class ConsentMissing(Conflict):
    code = "consentement-requis"
    title = "Consentement requis"


async def prepare_call(
    session: AsyncSession, principal: Principal, appointment_id: uuid.UUID, data: CallPreparation
) -> Appointment:
    """Before the call (CSP R.6316-2, HAS 2019): the eligibility checklist answered (a situation where a
    teleconsultation is not advised needs a justification), the patient's consent to the teleconsultation on record,
    a callback number; then the act (request) is opened, assigned to the doctor. Done again, it updates the
    checklist and the number (the act stays the same)."""
    appointment = await _visible(session, principal, appointment_id, clinical=True)  # not a secretariat
    if appointment.status != AppointmentStatus.BOOKED:
        raise Conflict("Ce rendez-vous n'est plus programmé.", field="status")
    answers = {key: getattr(data, key) for key in ELIGIBILITY_QUESTIONS}
    concerns = [label for key, label in ELIGIBILITY_QUESTIONS.items() if answers[key]]
    if concerns and len(data.justification.strip()) < 10:
        raise InvalidInput(
            "La téléconsultation n'est pas conseillée dans cette situation ("
            + "; ".join(concerns).lower()
            + ") : justifiez de la maintenir, ou proposez une consultation en présence.",
            field="justification",
        )
    consent = await check_consent(
        session, principal, appointment.patient_id, ConsentScopeType.ACT, "teleconsultation"
    )
    if not consent.allowed:
        raise ConsentMissing(
            f"Consentement du patient à la téléconsultation requis avant l'appel : {consent.message} "
            "Informez le patient et recueillez son consentement.",
            field="consent",
        )
    appointment.eligibility = answers
    appointment.eligibility_justification = data.justification.strip()
    appointment.callback_phone = data.callback_phone
    appointment.prepared_at = clock.now()
    appointment.prepared_by_name = principal.display_name
    if appointment.request_id is None:
        from telesante.requests.service import open_scheduled_act

        site = await SiteRepository(session).get(appointment.site_id) if appointment.site_id else None
        request = await open_scheduled_act(
            session,
            principal,
            offer_id=appointment.offer_id,
            patient_id=appointment.patient_id,
            requester_organisation_id=appointment.organisation_id,
            doctor_professional_id=appointment.professional_id,
            consent_id=consent.consent_id,
            answers={
                "question": appointment.reason,
                "context": f"Téléconsultation programmée le {clock.format_paris(appointment.starts_at)}"
                f" ({site_label(site)}).",
            },
        )
        appointment.request_id = request.id
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Appointment",
        object_id=appointment.id,
        patient_id=appointment.patient_id,
        details={"prepared": True, "concerns": len(concerns)},
    )
    return appointment


async def mark_fulfilled(session: AsyncSession, appointment_id: uuid.UUID) -> None:
    """The call took place and its report is signed (video)."""
    appointment = await AppointmentRepository(session).get(appointment_id)
    if appointment is not None and appointment.status == AppointmentStatus.BOOKED:
        appointment.status = AppointmentStatus.FULFILLED
        await session.flush()


async def get_appointment(
    session: AsyncSession, principal: Principal, appointment_id: uuid.UUID, *, clinical: bool = False
) -> Appointment:
    """An appointment the principal may see (``clinical``: through a clinical role, not a secretariat), audited."""
    appointment = await _visible(session, principal, appointment_id, clinical=clinical)
    await record_access(
        session,
        principal,
        action=Action.READ,
        object_type="Appointment",
        object_id=appointment.id,
        patient_id=appointment.patient_id,
    )
    return appointment


async def list_appointments(
    session: AsyncSession,
    principal: Principal,
    *,
    day_from: date,
    days: int = 7,
    professional_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
) -> list[Appointment]:
    """Appointments of the principal's organisations (booking side or doctor's side) from ``day_from`` (Paris)."""
    if not 1 <= days <= 92:
        raise InvalidInput("Période de 1 à 92 jours.", field="days")
    _within_years(day_from, "from")
    start = _paris(datetime.combine(day_from, time()))
    found = await AppointmentRepository(session).list_visible(
        principal, start, start + timedelta(days=days), professional_id=professional_id, patient_id=patient_id
    )
    await record_access(
        session,
        principal,
        action=Action.SEARCH,
        object_type="Appointment",
        object_id=None,
        details={"from": day_from.isoformat(), "days": days, "found": len(found)},
    )
    return found


async def _announce(session: AsyncSession, appointment: Appointment, kind: str) -> None:
    """Tell the doctor (live), after commit; ids only."""
    from telesante.auth.repository import AccountRepository

    account = await AccountRepository(session).get_by_professional(appointment.professional_id)
    if account is None:
        return
    publish_on_commit(
        session,
        Event(
            type=kind,
            recipients=frozenset({account.id}),
            data={
                "appointment_id": str(appointment.id),
                "starts_at": clock.as_utc(appointment.starts_at).isoformat(),
            },
        ),
    )


# --- calendar feed --------------------------------------------------------------------------------------------


async def appointments_ics(
    session: AsyncSession, professional_id: uuid.UUID, *, past_days: int = 30
) -> bytes:
    """The doctor's teleconsultations as an iCalendar feed (RFC 5545). A calendar application fetches it without
    logging in, so it carries no patient identity: the place, the offer and a link to the appointment."""
    from telesante.offers.repository import OfferRepository

    appointments = await AppointmentRepository(session).for_professional(
        professional_id, clock.now() - timedelta(days=past_days)
    )
    sites = SiteRepository(session)
    offers = OfferRepository(session)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Télésanté//Téléconsultations//FR")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "Mes téléconsultations — Télésanté")
    stamp = clock.now()
    cache: dict[Any, Any] = {}
    for appointment in appointments:
        if appointment.site_id not in cache:
            cache[appointment.site_id] = await sites.get(appointment.site_id) if appointment.site_id else None
        if appointment.offer_id not in cache:
            cache[appointment.offer_id] = await offers.get(appointment.offer_id)
        offer = cache[appointment.offer_id]
        event = icalendar.Event()
        event.add("uid", f"rdv-{appointment.id}@telesante")
        event.add("dtstamp", stamp)
        event.add("dtstart", clock.as_utc(appointment.starts_at))
        event.add("dtend", clock.as_utc(appointment.ends_at))
        event.add("summary", f"Téléconsultation — {site_label(cache[appointment.site_id])}")
        event.add("description", offer.title if offer else "")
        event.add("status", "CANCELLED" if appointment.status == AppointmentStatus.CANCELLED else "CONFIRMED")
        calendar.add_component(event)
    return calendar.to_ical()


# --- unscheduled care: the waiting list -----------------------------------------------------------------------


async def join_waiting_list(session: AsyncSession, principal: Principal, data: WaitingCreate) -> WaitingEntry:
    """A patient waits at a site for the next available doctor of an offer (*soins non programmés*); the offer's
    doctors are told at once."""
    from telesante.requests.repository import RequestRepository

    organisation_id = _booking_organisation(principal, data.organisation_id, clinical=True)
    await require_patient_access(session, principal, data.patient_id)
    offer = await _bookable_offer(session, data.offer_id)
    if not await _may_book(session, offer, organisation_id):
        raise Forbidden("Votre établissement ne peut pas demander cette offre.")
    await _check_site(session, data.site_id, organisation_id)
    entry = await WaitingRepository(session).add(
        WaitingEntry(
            offer_id=offer.id,
            patient_id=data.patient_id,
            organisation_id=organisation_id,
            site_id=data.site_id,
            reason=data.reason,
            callback_phone=data.callback_phone,
            status=WaitingStatus.WAITING,
            created_by_account_id=principal.account_id,
            created_by_name=principal.display_name,
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="WaitingEntry",
        object_id=entry.id,
        patient_id=entry.patient_id,
    )
    doctors = await RequestRepository(session).expert_accounts(offer.organisation_id, offer.service_id)
    if doctors:
        publish_on_commit(
            session,
            Event(
                type="waiting.added",
                recipients=frozenset(doctors),
                data={"entry_id": str(entry.id), "offer_id": str(offer.id)},
                urgent=True,
            ),
        )
    return entry


async def _expert_offer_ids(session: AsyncSession, principal: Principal) -> set[uuid.UUID]:
    """Bookable offers of the organisations where the principal is an expert (the queues they may take from)."""
    from telesante.offers.repository import OfferRepository

    organisations = {
        g.organisation_id for g in principal.grants if g.role == Role.EXPERT and g.organisation_id
    }
    offers = set()
    for organisation_id in organisations:
        for offer in await OfferRepository(session).list_for_organisation(organisation_id):
            if offer.act_type in BOOKABLE_ACTS and offer.active:
                offers.add(offer.id)
    return offers


async def waiting_queue(session: AsyncSession, principal: Principal) -> dict[str, list[WaitingEntry]]:
    """What waits: for the doctors, the queues of their offers (no patient identity before they take one: the
    site, the reason, since when); for the sites, their own entries."""
    repo = WaitingRepository(session)
    offers = await _expert_offer_ids(session, principal)
    queues = {
        "to_take": await repo.waiting(offer_ids=offers) if offers else [],
        "ours": await repo.recent_of(principal.clinical_organisation_ids, clock.now() - timedelta(days=1))
        if principal.clinical_organisation_ids
        else [],
    }
    await record_access(
        session,
        principal,
        action=Action.SEARCH,
        object_type="WaitingEntry",
        object_id=None,
        details={"to_take": len(queues["to_take"]), "ours": len(queues["ours"])},
    )
    return queues


async def take_next(
    session: AsyncSession, principal: Principal, offer_id: uuid.UUID, minutes: int = 20
) -> Appointment:
    """The doctor takes the patient who has waited longest for this offer: an appointment starting now, the patient
    linked to the doctor's organisation, the site told. Two doctors at once get two different patients."""
    offer = await _bookable_offer(session, offer_id)
    if offer.id not in await _expert_offer_ids(session, principal):
        raise Forbidden("Seuls les médecins de l'offre prennent en charge sa file d'attente.")
    now = clock.now()
    entry = await WaitingRepository(session).claim_oldest(offer.id, principal.professional_id, now)
    if entry is None:
        raise NotFound("Personne n'attend pour cette offre.")
    appointment = await AppointmentRepository(session).add(
        Appointment(
            slot_id=None,
            offer_id=offer.id,
            professional_id=principal.professional_id,
            expert_organisation_id=offer.organisation_id,
            patient_id=entry.patient_id,
            organisation_id=entry.organisation_id,
            site_id=entry.site_id,
            starts_at=now,
            ends_at=now + timedelta(minutes=minutes),
            status=AppointmentStatus.BOOKED,
            reason=entry.reason,
            callback_phone=entry.callback_phone,
            booked_by_account_id=entry.created_by_account_id,
            booked_by_name=entry.created_by_name,
        )
    )
    entry.appointment_id = appointment.id
    await session.flush()
    await link_patient_to_organisation(
        session, principal, entry.patient_id, offer.organisation_id, f"appointment:{appointment.id}"
    )
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="WaitingEntry",
        object_id=entry.id,
        patient_id=entry.patient_id,
        details={"taken": True, "appointment": str(appointment.id)},
    )
    publish_on_commit(
        session,
        Event(
            type="waiting.taken",
            recipients=frozenset({entry.created_by_account_id}),
            data={"entry_id": str(entry.id), "appointment_id": str(appointment.id)},
            urgent=True,
        ),
    )
    return appointment


async def cancel_waiting(
    session: AsyncSession, principal: Principal, entry_id: uuid.UUID, reason: str
) -> WaitingEntry:
    """The patient no longer waits (seen otherwise, gone home): the site or the offer's doctors remove the entry."""
    entry = await WaitingRepository(session).get(entry_id)
    offers = await _expert_offer_ids(session, principal)
    if entry is None or (
        entry.organisation_id not in principal.clinical_organisation_ids and entry.offer_id not in offers
    ):
        raise NotFound("Patient en attente introuvable.")
    if entry.status != WaitingStatus.WAITING:
        raise Conflict("Ce patient n'est plus en attente.", field="status")
    entry.status = WaitingStatus.CANCELLED
    entry.cancelled_at = clock.now()
    entry.cancel_reason = reason
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="WaitingEntry",
        object_id=entry.id,
        patient_id=entry.patient_id,
        details={"cancelled": True},
    )
    return entry


# --- read access for FHIR (Schedule, Slot) ------------------------------------------------------------------


async def _readable_offer(session: AsyncSession, principal: Principal, offer_id: uuid.UUID) -> bool:
    offer = await get_offer(session, offer_id)
    return any([await _may_book(session, offer, org) for org in principal.clinical_organisation_ids])


async def visible_patterns(
    session: AsyncSession, principal: Principal, professional_id: uuid.UUID
) -> list[AvailabilityPattern]:
    """A doctor's running availabilities that the principal may book from (their own, always)."""
    patterns = await PatternRepository(session).list_for_professional(professional_id)
    if principal.professional_id == professional_id:
        return [p for p in patterns if p.ended_at is None]
    return [
        p for p in patterns if p.ended_at is None and await _readable_offer(session, principal, p.offer_id)
    ]


async def get_visible_pattern(
    session: AsyncSession, principal: Principal, pattern_id: uuid.UUID
) -> AvailabilityPattern:
    pattern = await PatternRepository(session).get(pattern_id)
    if pattern is None or not (
        principal.professional_id == pattern.professional_id
        or await _readable_offer(session, principal, pattern.offer_id)
    ):
        raise NotFound("Agenda introuvable.")
    return pattern


async def get_visible_slot(session: AsyncSession, principal: Principal, slot_id: uuid.UUID) -> Slot:
    slot = await SlotRepository(session).get(slot_id)
    if slot is None or not (
        principal.professional_id == slot.professional_id
        or await _readable_offer(session, principal, slot.offer_id)
    ):
        raise NotFound("Créneau introuvable.")
    return slot


async def agenda(
    session: AsyncSession, principal: Principal, professional_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """A doctor's availability (their own by default; an administrator of their organisation may manage it):
    running patterns, absences ahead, the offers slots may be opened for, and for an administrator the doctors they
    may manage."""
    from telesante.offers.repository import OfferRepository

    professional_id = professional_id or principal.professional_id
    await _may_manage_agenda(session, principal, professional_id)
    memberships = MembershipRepository(session)
    expert_in = {
        m.organisation_id
        for m, _name in await memberships.list_for_professional(professional_id)
        if m.role == Role.EXPERT and m.ended_at is None and m.organisation_id
    }
    offers = [
        offer
        for organisation_id in expert_in
        for offer in await OfferRepository(session).list_for_organisation(organisation_id)
        if offer.act_type in BOOKABLE_ACTS and offer.active
    ]
    doctors: dict[uuid.UUID, str] = {}
    for organisation_id in principal.admin_organisation_ids():
        for membership, professional in await ProfessionalRepository(session).members_of(organisation_id):
            if membership.role == Role.EXPERT:
                doctors[professional.id] = professional.display_name
    patterns = await PatternRepository(session).list_for_professional(professional_id)
    absences = await ExceptionRepository(session).list_for_professional(professional_id, clock.now())
    names = await ProfessionalRepository(session).display_names({professional_id})
    return {
        "professional_id": professional_id,
        "professional_name": names.get(professional_id, ""),
        "own": professional_id == principal.professional_id,
        "doctors": doctors,
        "offers": offers,
        "patterns": [p for p in patterns if p.ended_at is None],
        "absences": absences,
    }
