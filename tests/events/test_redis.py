"""RedisBus with the machine's real Redis: two buses are two application instances. An event published on one
reaches the subscribers of the other (and its own, through Redis); recipients are respected; stop/start is clean;
then the whole path: a request committed on instance A reaches a browser connected to instance B."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import httpx
import pytest
import redis.asyncio as redis_asyncio
from httpx_sse import aconnect_sse
from pydantic import SecretStr

from telesante.auth.dependencies import SessionDep
from telesante.events.bus import BusUnavailable, Event, RedisBus, make_event_bus
from telesante.events.service import publish_on_commit
from telesante.main import create_app
from tests.conftest import _TestDatabase
from tests.events.conftest import serving, signed_in, wait_for

ALICE, BOB = uuid.uuid4(), uuid.uuid4()


async def next_event(subscription, seconds: float = 5.0) -> Event:
    async with asyncio.timeout(seconds):
        return await anext(subscription)


@pytest.fixture
async def two_instances(redis_url, redis_channel):
    first, second = RedisBus(redis_url, channel=redis_channel), RedisBus(redis_url, channel=redis_channel)
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.stop()
        await second.stop()


async def test_an_event_published_on_one_instance_reaches_the_other(two_instances):
    first, second = two_instances
    async with (
        second.subscribe(ALICE) as alice_on_second,
        second.subscribe(BOB) as bob_on_second,
        first.subscribe(ALICE) as alice_on_first,
    ):
        for_alice = Event(
            type="request.sent", recipients=frozenset({ALICE}), data={"request_id": "r1"}, urgent=True
        )
        for_bob = Event(type="request.updated", recipients=frozenset({BOB}), data={"request_id": "r2"})
        await first.publish(for_alice)
        await first.publish(for_bob)

        assert await next_event(alice_on_second) == for_alice  # crossed instances, intact (urgent, time, id)
        assert (
            await next_event(alice_on_first) == for_alice
        )  # the publisher's own users hear it through Redis
        assert (
            await next_event(bob_on_second) == for_bob
        )  # Bob's first event is his own: Alice's never reached him
        assert alice_on_second.pending == 0 and alice_on_first.pending == 0


async def test_foreign_messages_on_the_channel_are_skipped(two_instances, redis_url, redis_channel, caplog):
    _, second = two_instances
    raw = redis_asyncio.Redis.from_url(redis_url)
    try:
        async with second.subscribe(ALICE) as subscription:
            with caplog.at_level(logging.WARNING, logger="telesante.events"):
                await raw.publish(redis_channel, "pas un évènement")
                valid = Event(type="request.updated", recipients=frozenset({ALICE}), data={})
                await raw.publish(redis_channel, valid.to_json())
                assert await next_event(subscription) == valid
            assert any("message ignoré" in r.getMessage() for r in caplog.records)
            assert second.running  # the listener survived
    finally:
        await raw.aclose()


async def test_stop_ends_subscriptions_and_leaves_no_task_then_start_again(redis_url, redis_channel):
    bus, peer = RedisBus(redis_url, channel=redis_channel), RedisBus(redis_url, channel=redis_channel)
    await bus.start()
    await peer.start()
    try:
        received: list[Event] = []
        subscribed = asyncio.Event()

        async def listen() -> None:
            async with bus.subscribe(ALICE) as subscription:
                subscribed.set()
                async for item in subscription:
                    received.append(item)

        listener = asyncio.create_task(listen())
        await subscribed.wait()
        await bus.stop()
        async with asyncio.timeout(5):
            await listener  # ended by itself
        assert not bus.running and bus.subscriber_count() == 0
        listeners = [
            t for t in asyncio.all_tasks() if t.get_name() == f"redis-bus:{redis_channel}" and not t.done()
        ]
        assert len(listeners) == 1  # the peer's only: the stopped bus left no task behind

        await bus.start()  # restartable: a fresh connection, subscribed again
        async with bus.subscribe(ALICE) as subscription:
            again = Event(type="request.updated", recipients=frozenset({ALICE}), data={"again": True})
            await peer.publish(again)
            assert await next_event(subscription) == again
        assert received == []
    finally:
        await bus.stop()
        await peer.stop()


async def test_start_fails_clearly_when_redis_cannot_be_reached():
    bus = RedisBus("redis://127.0.0.1:1/0", channel="telesante:test:injoignable")  # nothing listens on port 1
    with pytest.raises(BusUnavailable, match="Redis injoignable"):
        await bus.start()
    await bus.stop()


def test_a_redis_url_selects_the_redis_bus(settings, redis_channel):
    configured = settings.model_copy(
        update={"redis_url": SecretStr("redis://127.0.0.1:6379/0"), "events_redis_channel": redis_channel}
    )
    bus = make_event_bus(configured)
    assert isinstance(bus, RedisBus) and bus.channel == redis_channel


async def test_a_change_committed_on_instance_a_reaches_a_browser_on_instance_b(
    session, engine, settings, people, redis_url, redis_channel
):
    alice, bob = people
    configured = settings.model_copy(
        update={"redis_url": SecretStr(redis_url), "events_redis_channel": redis_channel}
    )
    instance_a = create_app(configured, database=_TestDatabase(session, engine))
    instance_b = create_app(configured, database=_TestDatabase(session, engine))

    async def raise_event(session: SessionDep, account_id: uuid.UUID):
        publish_on_commit(
            session,
            Event(type="request.updated", recipients=frozenset({account_id}), data={"for": str(account_id)}),
        )
        return {"ok": True}

    instance_a.add_api_route("/api/essai-evenement", raise_event, methods=["GET"])

    async with serving(instance_a) as served_a, serving(instance_b) as served_b:
        browser = await signed_in(served_b.url, alice)
        try:
            async with (
                aconnect_sse(browser, "GET", "/evenements") as source,
                httpx.AsyncClient(base_url=served_a.url, timeout=10) as other_client,
            ):
                await wait_for(
                    lambda: instance_b.state.event_bus.subscriber_count(alice.account.id) == 1, "abonnée"
                )
                for account in (bob.account.id, alice.account.id):
                    response = await other_client.get(
                        "/api/essai-evenement", params={"account_id": str(account)}
                    )
                    assert response.status_code == 200, response.text
                async with asyncio.timeout(5):
                    received = await anext(source.aiter_sse())
                assert received.event == "request.updated"
                assert json.loads(received.data)["data"] == {
                    "for": str(alice.account.id)
                }  # not Bob's, raised first
        finally:
            await browser.aclose()
