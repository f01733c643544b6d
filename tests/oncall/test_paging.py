"""Paging with escalation driven by the durable timers, at injected clock times."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

import telesante.oncall.tasks  # noqa: F401 - registers the escalation handler
from telesante.events.service import use_event_bus
from telesante.jobs.service import run_due_jobs
from telesante.kit.errors import Conflict, Forbidden, NotFound
from telesante.oncall import service
from telesante.oncall.models import PageEventKind, PageStatus, PageTarget, ShiftRole
from tests.conftest import _SharedSessionFactory
from tests.oncall.support import T0, at, make_world, shift

H = timedelta(hours=1)
M = timedelta(minutes=1)


class RecordingBus:
    def __init__(self):
        self.events = []

    async def publish(self, event) -> None:
        self.events.append(event)


async def _commit_and_run(session, when) -> int:
    """Commit what the test did (the request), then let a worker run what is due at ``when``."""
    await session.commit()
    at(when)
    return await run_due_jobs(_SharedSessionFactory(session), worker="test-worker")


async def _staffed(session):
    world = await make_world(session, ack_minutes=5)
    await shift(session, world, world.alice, T0 - H, T0 + 12 * H)
    await shift(session, world, world.bruno, T0 - H, T0 + 12 * H, ShiftRole.BACKUP)
    return world


async def _page(session, world, **kwargs):
    at(T0)
    return await service.page_on_call(
        session,
        world.rota.id,
        subject_type="tele_request",
        subject_id=kwargs.pop("subject_id", uuid.uuid4()),
        summary="Avis neurovasculaire urgent à prendre en charge",
        ack_minutes=kwargs.pop("ack_minutes", 5),
        urgent=True,
        principal=world.admin.principal,
    )


async def test_unanswered_page_escalates_to_backup_then_head_then_gives_up(session):
    world = await _staffed(session)
    bus = RecordingBus()
    with use_event_bus(bus):
        page = await _page(session, world)
        assert (page.target, page.professional_id, page.status) == (
            PageTarget.PRIMARY,
            world.alice.professional.id,
            PageStatus.PENDING,
        )
        assert page.escalate_at == T0 + 5 * M and not page.uncovered

        assert await _commit_and_run(session, T0 + 5 * M - timedelta(seconds=1)) == 0  # not yet
        assert (await service.get_page(session, world.alice.principal, page.id)).target == PageTarget.PRIMARY

        assert await _commit_and_run(session, T0 + 5 * M) == 1
        page = await service.get_page(session, world.admin.principal, page.id)
        assert (page.target, page.professional_id) == (PageTarget.BACKUP, world.bruno.professional.id)
        assert page.paged_at == T0 + 5 * M and page.escalate_at == T0 + 10 * M

        assert await _commit_and_run(session, T0 + 9 * M) == 0
        assert await _commit_and_run(session, T0 + 10 * M) == 1
        page = await service.get_page(session, world.admin.principal, page.id)
        assert (page.target, page.professional_id) == (PageTarget.HEAD, world.head.professional.id)

        assert await _commit_and_run(session, T0 + 15 * M) == 1
        page = await service.get_page(session, world.admin.principal, page.id)
        assert page.status == PageStatus.EXHAUSTED
        assert await _commit_and_run(session, T0 + 60 * M) == 0  # nothing left to run

    assert [(e.kind, e.target, e.professional_id, e.at) for e in page.events] == [
        (PageEventKind.PAGED, PageTarget.PRIMARY, world.alice.professional.id, T0),
        (PageEventKind.ESCALATED, PageTarget.BACKUP, world.bruno.professional.id, T0 + 5 * M),
        (PageEventKind.ESCALATED, PageTarget.HEAD, world.head.professional.id, T0 + 10 * M),
        (PageEventKind.EXHAUSTED, PageTarget.HEAD, world.head.professional.id, T0 + 15 * M),
    ]
    # Each paged person was notified on their own account, after commit, without patient identity.
    paged = [(e.type, e.recipients, e.urgent) for e in bus.events]
    assert paged[:3] == [
        ("oncall.page", frozenset({world.alice.account.id}), True),
        ("oncall.page", frozenset({world.bruno.account.id}), True),
        ("oncall.page", frozenset({world.head.account.id}), True),
    ]
    assert bus.events[0].data["page_id"] == str(page.id)


async def test_acknowledgement_cancels_the_escalation(session):
    world = await _staffed(session)
    page = await _page(session, world)
    at(T0 + 2 * M)
    with pytest.raises(Forbidden):  # only the paged person acknowledges
        await service.acknowledge_page(session, world.bruno.principal, page.id)
    with pytest.raises(NotFound):  # someone who cannot see the rota does not learn the page exists
        await service.acknowledge_page(session, world.elsewhere.principal, page.id)
    acknowledged = await service.acknowledge_page(session, world.alice.principal, page.id)
    assert acknowledged.status == PageStatus.ACKNOWLEDGED
    assert acknowledged.acknowledged_at == T0 + 2 * M
    assert acknowledged.acknowledged_by == world.alice.professional.id
    assert await _commit_and_run(session, T0 + 30 * M) == 0
    page = await service.get_page(session, world.alice.principal, page.id)
    assert page.target == PageTarget.PRIMARY and page.status == PageStatus.ACKNOWLEDGED
    assert [e.kind for e in page.events] == [PageEventKind.PAGED, PageEventKind.ACKNOWLEDGED]
    with pytest.raises(Conflict):
        await service.acknowledge_page(session, world.alice.principal, page.id)


async def test_backup_acknowledges_after_escalation(session):
    world = await _staffed(session)
    page = await _page(session, world)
    await _commit_and_run(session, T0 + 5 * M)
    with pytest.raises(Forbidden):  # the primary is no longer the paged person
        await service.acknowledge_page(session, world.alice.principal, page.id)
    at(T0 + 6 * M)
    page = await service.acknowledge_page(session, world.bruno.principal, page.id)
    assert page.status == PageStatus.ACKNOWLEDGED
    assert await _commit_and_run(session, T0 + 11 * M) == 0
    assert (await service.get_page(session, world.head.principal, page.id)).target == PageTarget.BACKUP


async def test_uncovered_slot_pages_the_head_directly_and_says_so(session):
    world = await make_world(session)
    page = await _page(session, world)
    assert page.uncovered
    assert (page.target, page.professional_id) == (PageTarget.HEAD, world.head.professional.id)
    assert [(e.kind, e.target) for e in page.events] == [
        (PageEventKind.SKIPPED, PageTarget.PRIMARY),
        (PageEventKind.PAGED, PageTarget.HEAD),
    ]
    assert "non couvert" in page.events[0].detail
    assert await _commit_and_run(session, T0 + 5 * M) == 1
    assert (await service.get_page(session, world.head.principal, page.id)).status == PageStatus.EXHAUSTED


async def test_no_backup_on_duty_escalates_straight_to_the_head(session):
    world = await make_world(session)
    await shift(session, world, world.alice, T0 - H, T0 + H)
    page = await _page(session, world, ack_minutes=3)
    assert await _commit_and_run(session, T0 + 3 * M) == 1
    page = await service.get_page(session, world.head.principal, page.id)
    assert (page.target, page.escalate_at) == (PageTarget.HEAD, T0 + 6 * M)
    assert [e.kind for e in page.events] == [
        PageEventKind.PAGED,
        PageEventKind.SKIPPED,
        PageEventKind.ESCALATED,
    ]


async def test_pages_of_a_subject_and_their_resolution(session):
    world = await _staffed(session)
    subject = uuid.uuid4()
    page = await _page(session, world, subject_id=subject)
    assert [p.id for p in await service.list_pages(session, "tele_request", subject)] == [page.id]
    assert await service.list_pages(session, "tele_request", uuid.uuid4()) == []
    assert await service.resolve_pages(session, "tele_request", subject) == 1
    assert await _commit_and_run(session, T0 + 30 * M) == 0
    (resolved,) = await service.list_pages(session, "tele_request", subject)
    assert resolved.status == PageStatus.CANCELLED and resolved.target == PageTarget.PRIMARY


async def test_my_pages_lists_what_awaits_my_acknowledgement(session):
    world = await _staffed(session)
    page = await _page(session, world)
    assert [p.id for p in await service.my_pages(session, world.alice.principal)] == [page.id]
    assert await service.my_pages(session, world.bruno.principal) == []
