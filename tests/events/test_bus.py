"""The in-process bus: delivery to the recipients only, in order; clean stop and restart; events checked when
raised (not after the commit) and faithful on the wire."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from telesante.events.bus import BusClosed, Event, InProcessBus, make_event_bus
from telesante.kit import clock

ALICE, BOB, CAROL = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def event(*recipients: uuid.UUID, type: str = "request.updated", **data) -> Event:
    return Event(type=type, recipients=frozenset(recipients), data=data or {"request_id": "r1"})


async def next_event(subscription) -> Event:
    async with asyncio.timeout(5):
        return await anext(subscription)


async def test_events_reach_their_recipients_only_in_order():
    bus = InProcessBus()
    await bus.start()
    async with bus.subscribe(ALICE) as alice, bus.subscribe(BOB) as bob, bus.subscribe(ALICE) as alice_tab2:
        first, second = event(ALICE, BOB, status="envoyee"), event(ALICE, status="acceptee")
        await bus.publish(first)
        await bus.publish(event(CAROL))  # nobody here is Carol
        await bus.publish(second)

        assert [await next_event(alice), await next_event(alice)] == [first, second]
        assert [await next_event(alice_tab2), await next_event(alice_tab2)] == [first, second]
        assert await next_event(bob) == first
        assert bob.pending == 0  # Bob got neither Carol's event nor Alice's second one
    assert bus.subscriber_count() == 0
    await bus.stop()


async def test_stop_ends_every_subscription_and_refuses_new_ones_until_restart():
    bus = InProcessBus()
    await bus.start()
    received: list[Event] = []
    subscribed = asyncio.Event()

    async def listen() -> None:
        async with bus.subscribe(ALICE) as subscription:
            subscribed.set()
            async for item in subscription:
                received.append(item)

    listener = asyncio.create_task(listen())
    await subscribed.wait()
    await bus.publish(event(ALICE))
    await bus.stop()
    async with asyncio.timeout(5):
        await listener  # ended by itself, without cancellation or error
    assert len(received) == 1
    assert bus.subscriber_count() == 0

    with pytest.raises(BusClosed):
        async with bus.subscribe(ALICE):
            pass

    await bus.start()
    async with bus.subscribe(ALICE) as subscription:
        again = event(ALICE)
        await bus.publish(again)
        assert await next_event(subscription) == again
    await bus.stop()


async def test_a_reader_too_far_behind_is_closed_rather_than_growing_memory(monkeypatch):
    bus = InProcessBus()
    async with bus.subscribe(ALICE) as subscription:
        for _ in range(300):
            await bus.publish(event(ALICE))
        assert subscription.overflowed
        count = 0
        async for _ in subscription:
            count += 1
        assert count == 256  # what was queued is still read, then the stream ends (the browser reconnects)


def test_events_are_checked_where_they_are_raised():
    with pytest.raises(ValueError, match="type d'évènement invalide"):
        Event(type="Request Updated\n", recipients=frozenset({ALICE}), data={})
    with pytest.raises(ValueError, match="data : valeurs JSON simples"):
        Event(type="request.updated", recipients=frozenset({ALICE}), data={"id": uuid.uuid4()})
    with pytest.raises(TypeError, match="recipients"):
        Event(type="request.updated", recipients="alice", data={})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Event(type="request.updated", recipients=frozenset({"pas-un-uuid"}), data={})  # type: ignore[arg-type]
    coerced = Event(type="request.updated", recipients={str(ALICE)}, data={})  # type: ignore[arg-type]
    assert coerced.recipients == frozenset({ALICE})


def test_wire_form_round_trips_and_browser_payload_hides_recipients():
    clock.set_clock(lambda: datetime(2026, 3, 1, 8, 30, tzinfo=UTC))
    try:
        original = Event(
            type="oncall.page", recipients=frozenset({ALICE, BOB}), data={"n": 1, "ok": True}, urgent=True
        )
    finally:
        clock.set_clock(None)
    assert original.at == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    assert Event.from_json(original.to_json()) == original
    payload = original.browser_payload()
    assert payload == {
        "id": original.id,
        "type": "oncall.page",
        "at": "2026-03-01T08:30:00+00:00",
        "urgent": True,
        "data": {"n": 1, "ok": True},
    }
    for garbage in ("pas du json", "{}", '{"id": "x", "type": "request.updated"}'):
        with pytest.raises(ValueError, match="message d'évènement invalide"):
            Event.from_json(garbage)


def test_in_process_unless_a_redis_url_is_set(settings):
    assert isinstance(make_event_bus(settings), InProcessBus)
