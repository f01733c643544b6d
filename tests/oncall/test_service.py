"""Rotas and shifts through the service layer: validation, weekly patterns across DST, coverage, hand-overs, ICS."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import icalendar
import pytest

from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.kit.schemas import parse_input
from telesante.oncall import service
from telesante.oncall.models import ShiftChangeKind, ShiftRole
from telesante.oncall.schemas import PatternCreate, ReplacementCreate, RotaCreate, ShiftCreate, SwapCreate
from tests.oncall.support import T0, at, make_world, shift

H = timedelta(hours=1)


async def test_shift_end_must_follow_start(session):
    world = await make_world(session)
    with pytest.raises(InvalidInput) as error:
        await shift(session, world, world.alice, T0, T0)
    assert error.value.field == "ends_at"
    assert "postérieure" in error.value.message
    with pytest.raises(InvalidInput):
        await shift(session, world, world.alice, T0, T0 - H)


async def test_shift_holder_must_be_member_of_the_rota(session):
    world = await make_world(session)
    with pytest.raises(InvalidInput) as error:
        await shift(session, world, world.elsewhere, T0, T0 + H)
    assert error.value.field == "professional_id"
    assert "membre" in error.value.message


async def test_overlapping_primary_shifts_are_refused_naming_the_conflict(session):
    world = await make_world(session)
    first = await shift(session, world, world.alice, T0, T0 + 12 * H)
    with pytest.raises(Conflict) as error:
        await shift(session, world, world.bruno, T0 + 11 * H, T0 + 20 * H)
    assert error.value.extra["conflicting_shift_id"] == str(first.id)
    assert world.alice.professional.family_name in error.value.message
    assert "01/12/2026 13:00" in error.value.message  # the conflicting slot, in Paris time
    # Back to back is fine, and a backup may overlap the primary.
    await shift(session, world, world.bruno, T0 + 12 * H, T0 + 20 * H)
    await shift(session, world, world.chloe, T0, T0 + 12 * H, ShiftRole.BACKUP)
    with pytest.raises(Conflict):  # nobody is primary and backup at once
        await shift(session, world, world.bruno, T0 + 12 * H, T0 + 13 * H, ShiftRole.BACKUP)


async def test_only_administrators_and_head_edit_a_rota(session):
    world = await make_world(session)
    data = ShiftCreate(professional_id=world.alice.professional.id, starts_at=T0, ends_at=T0 + H)
    with pytest.raises(Forbidden):
        await service.add_shift(session, world.alice.principal, world.rota.id, data)
    with pytest.raises(NotFound):  # rotas of other organisations are not even visible
        await service.add_shift(session, world.elsewhere.principal, world.rota.id, data)
    with pytest.raises(NotFound):
        await service.add_shift(session, world.outsider.principal, world.rota.id, data)
    created = await service.add_shift(session, world.head.principal, world.rota.id, data)
    assert created.created_by == world.head.professional.id


async def test_network_rota_admits_members_of_every_organisation(session):
    world = await make_world(session)
    other_org_id = next(g.organisation_id for g in world.elsewhere.principal.grants)
    rota = await service.create_rota(
        session,
        world.admin.principal,
        RotaCreate(
            name="Thrombectomie Bretagne",
            scope="network",
            organisation_id=world.organisation.id,
            network_organisation_ids=[other_org_id],
            head_professional_id=world.head.professional.id,
        ),
    )
    assert rota.ack_minutes == 5  # TELESANTE_ONCALL_ACK_MINUTES default
    await service.add_shift(
        session,
        world.admin.principal,
        rota.id,
        ShiftCreate(professional_id=world.elsewhere.professional.id, starts_at=T0, ends_at=T0 + H),
    )
    assert [r.id for r in await service.list_rotas(session, world.elsewhere.principal)] == [rota.id]
    with pytest.raises(InvalidInput) as error:
        await service.create_rota(
            session,
            world.admin.principal,
            RotaCreate(
                name="Réseau sans réseau",
                scope="network",
                organisation_id=world.organisation.id,
                head_professional_id=world.head.professional.id,
            ),
        )
    assert error.value.field == "network_organisation_ids"


def _pattern(world, who, weekdays, start, end, first, last, role=ShiftRole.PRIMARY, label=""):
    return PatternCreate(
        professional_id=who.professional.id,
        role=role,
        label=label,
        weekdays=weekdays,
        start_time=start,
        end_time=end,
        valid_from=first,
        valid_until=last,
    )


async def _full_week_patterns(session, world, first: date, last: date):
    """Week days 08:30→18:30, every night 18:30→08:30, week-end days 08:30→18:30: full coverage."""
    for who, weekdays, start, end in (
        (world.alice, [1, 2, 3, 4, 5], time(8, 30), time(18, 30)),
        (world.bruno, [1, 2, 3, 4, 5, 6, 7], time(18, 30), time(8, 30)),
        (world.chloe, [6, 7], time(8, 30), time(18, 30)),
    ):
        await service.add_pattern(
            session,
            world.admin.principal,
            world.rota.id,
            _pattern(world, who, weekdays, start, end, first, last),
        )


async def test_weekly_patterns_across_the_spring_dst_change(session):
    world = await make_world(session)
    # Week of Monday 23 March 2026; clocks go forward on Sunday 29 March at 02:00.
    pattern, nights = await service.add_pattern(
        session,
        world.admin.principal,
        world.rota.id,
        _pattern(
            world,
            world.bruno,
            [1, 2, 3, 4, 5, 6, 7],
            time(18, 30),
            time(8, 30),
            date(2026, 3, 23),
            date(2026, 3, 29),
            label="nuit",
        ),
    )
    assert len(nights) == 7 and all(n.pattern_id == pattern.id for n in nights)
    saturday = nights[5]
    assert clock.to_paris(saturday.starts_at).strftime("%d %H:%M") == "28 18:30"
    assert clock.to_paris(saturday.ends_at).strftime("%d %H:%M") == "29 08:30"
    assert saturday.starts_at == datetime(2026, 3, 28, 17, 30, tzinfo=UTC)
    assert saturday.ends_at - saturday.starts_at == 13 * H  # one hour shorter
    assert nights[0].ends_at - nights[0].starts_at == 14 * H
    assert nights[6].starts_at == datetime(2026, 3, 29, 16, 30, tzinfo=UTC)  # 18:30 summer time


async def test_full_patterns_leave_no_gap_across_the_autumn_dst_change(session):
    world = await make_world(session)
    # Clocks go back on Sunday 25 October 2026 at 03:00; patterns from Monday 19 to Sunday 1 November.
    await _full_week_patterns(session, world, date(2026, 10, 19), date(2026, 11, 1))
    start = datetime(2026, 10, 19, 6, 30, tzinfo=UTC)  # Monday 08:30 Paris (summer time)
    report = await service.coverage(session, world.admin.principal, world.rota.id, start=start, days=13)
    assert report.covered, report.gaps
    long_night = await service.on_duty(session, world.rota.id, datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert long_night.primary_professional_id == world.bruno.professional.id
    shifts = await service.list_shifts(
        session,
        world.admin.principal,
        world.rota.id,
        datetime(2026, 10, 24, 17, 0, tzinfo=UTC),
        datetime(2026, 10, 24, 17, 1, tzinfo=UTC),
    )
    assert [s["ends_at"] - s["starts_at"] for s in shifts] == [15 * H]  # Saturday night: one hour longer


async def test_coverage_lists_every_uncovered_minute_of_the_next_30_days(session):
    world = await make_world(session)
    at(T0)
    await shift(session, world, world.alice, T0, T0 + 10 * H)
    await shift(session, world, world.bruno, T0 + 10 * H + timedelta(minutes=45), T0 + 24 * H)
    await shift(session, world, world.chloe, T0 + 2 * H, T0 + 3 * H, ShiftRole.BACKUP)  # backups do not count
    report = await service.coverage(session, world.admin.principal, world.rota.id)
    assert not report.covered
    assert [(g.starts_at, g.ends_at, g.minutes) for g in report.gaps] == [
        (T0 + 10 * H, T0 + 10 * H + timedelta(minutes=45), 45),
        (T0 + 24 * H, T0 + timedelta(days=30), 29 * 24 * 60),
    ]
    at(T0 + timedelta(seconds=30))  # the window starts at the current minute
    report = await service.coverage(session, world.admin.principal, world.rota.id)
    assert report.starts_at == T0 and report.gaps[0].minutes == 45


async def test_pattern_conflict_refuses_the_whole_pattern(session):
    world = await make_world(session)
    blocking = await shift(
        session,
        world,
        world.chloe,
        datetime(2026, 12, 3, 18, 0, tzinfo=UTC),
        datetime(2026, 12, 3, 19, 0, tzinfo=UTC),
    )
    with pytest.raises(Conflict) as error:
        await service.add_pattern(
            session,
            world.admin.principal,
            world.rota.id,
            _pattern(
                world,
                world.bruno,
                [1, 2, 3, 4, 5],
                time(18, 30),
                time(8, 30),
                date(2026, 11, 30),
                date(2026, 12, 6),
            ),
        )
    assert error.value.extra["conflicting_shift_id"] == str(blocking.id)
    shifts = await service.list_shifts(
        session, world.admin.principal, world.rota.id, T0 - 48 * H, T0 + 240 * H
    )
    assert [s["id"] for s in shifts] == [blocking.id]  # nothing of the pattern was written
    with pytest.raises(InvalidInput) as bad:
        parse_input(
            PatternCreate,
            {
                "professional_id": str(world.bruno.professional.id),
                "weekdays": [0, 8],
                "start_time": "18:30",
                "end_time": "08:30",
                "valid_from": "2026-11-30",
                "valid_until": "2026-12-06",
            },
        )
    assert bad.value.field == "weekdays" and "lundi" in bad.value.message


async def test_replacement_and_swap_change_who_is_on_duty(session):
    world = await make_world(session)
    at(T0)
    monday = await shift(session, world, world.alice, T0, T0 + 12 * H)
    tuesday = await shift(session, world, world.bruno, T0 + 12 * H, T0 + 24 * H)
    assert (
        await service.on_duty(session, world.rota.id, T0 + H)
    ).primary_professional_id == world.alice.professional.id

    # Alice hands her shift to Chloé herself.
    await service.replace_shift(
        session,
        world.alice.principal,
        monday.id,
        ReplacementCreate(to_professional_id=world.chloe.professional.id, reason="Congé maladie"),
    )
    duty = await service.on_duty(session, world.rota.id, T0 + H)
    assert duty.primary_professional_id == world.chloe.professional.id
    assert duty.primary_shift_id == monday.id
    (change,) = await service.shift_changes(session, world.admin.principal, monday.id)
    assert change.kind == ShiftChangeKind.REPLACEMENT
    assert (change.from_professional_id, change.to_professional_id) == (
        world.alice.professional.id,
        world.chloe.professional.id,
    )
    assert change.recorded_by == world.alice.professional.id and change.reason == "Congé maladie"
    assert change.recorded_at == T0

    # Bruno cannot hand over a shift that is not his; a non-member cannot take one.
    with pytest.raises(Forbidden):
        await service.replace_shift(
            session,
            world.bruno.principal,
            monday.id,
            ReplacementCreate(to_professional_id=world.bruno.professional.id, reason="Je prends"),
        )
    with pytest.raises(InvalidInput) as error:
        await service.replace_shift(
            session,
            world.admin.principal,
            monday.id,
            ReplacementCreate(to_professional_id=world.elsewhere.professional.id, reason="Renfort"),
        )
    assert error.value.field == "to_professional_id"

    # Chloé and Bruno swap.
    await service.swap_shifts(
        session, world.chloe.principal, monday.id, SwapCreate(other_shift_id=tuesday.id, reason="Échange")
    )
    assert (
        await service.on_duty(session, world.rota.id, T0 + H)
    ).primary_professional_id == world.bruno.professional.id
    assert (
        await service.on_duty(session, world.rota.id, T0 + 13 * H)
    ).primary_professional_id == world.chloe.professional.id
    history = await service.shift_changes(session, world.admin.principal, tuesday.id)
    assert [(c.kind, c.other_shift_id) for c in history] == [(ShiftChangeKind.SWAP, monday.id)]
    assert (await service.on_duty(session, world.rota.id, T0 + 30 * H)).primary_professional_id is None


async def test_ics_export_parses_back_with_the_shifts_in_utc(session):
    world = await make_world(session)
    at(T0)
    first = await shift(session, world, world.alice, T0 + H, T0 + 13 * H)
    second = await shift(session, world, world.alice, T0 + 48 * H, T0 + 60 * H, ShiftRole.PRIMARY)
    await shift(session, world, world.bruno, T0 + 13 * H, T0 + 20 * H)  # not Alice's
    cancelled = await shift(session, world, world.alice, T0 + 100 * H, T0 + 101 * H)
    await service.cancel_shift(session, world.admin.principal, cancelled.id)

    raw = await service.shifts_ics(session, world.alice.professional.id)
    calendar = icalendar.Calendar.from_ical(raw)
    events = calendar.walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [f"garde-{first.id}@telesante", f"garde-{second.id}@telesante"]
    for event, expected in zip(events, (first, second), strict=True):
        assert event.decoded("DTSTART") == expected.starts_at
        assert event.decoded("DTEND") == expected.ends_at
        assert event.decoded("DTSTART").utcoffset() == timedelta(0)
        assert event.decoded("DTSTAMP") == T0
        assert "Astreinte neurovasculaire" in str(event["SUMMARY"])
    assert b"DTSTART:20261201T130000Z" in raw


async def test_calendar_feed_token_finds_its_owner_and_rotates(session):
    world = await make_world(session)
    token = await service.create_calendar_feed(session, world.alice.principal)
    assert await service.professional_for_feed(session, token) == world.alice.professional.id
    newer = await service.create_calendar_feed(session, world.alice.principal)
    assert await service.professional_for_feed(session, newer) == world.alice.professional.id
    with pytest.raises(NotFound):
        await service.professional_for_feed(session, token)
