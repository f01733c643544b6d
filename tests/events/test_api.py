"""GET /evenements through a real HTTP server, read as a browser's EventSource reads it (httpx-sse): each user
gets their own events only; heartbeats; bearer tokens; 401 without credentials; the stream ends cleanly when the
client leaves, when its time is up and when the server stops."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from httpx_sse import aconnect_sse

from telesante.events.bus import Event
from tests.events.conftest import serving, signed_in, stop_server, wait_for
from tests.factories import token_for


async def next_sse(iterator, seconds: float = 5.0):
    async with asyncio.timeout(seconds):
        return await anext(iterator)


async def test_each_signed_in_user_receives_their_own_events_only(app, people):
    alice, bob = people
    alice_id, bob_id = alice.account.id, bob.account.id
    bus = app.state.event_bus
    async with serving(app) as served:
        alice_client, bob_client = await signed_in(served.url, alice), await signed_in(served.url, bob)
        try:
            async with (
                aconnect_sse(alice_client, "GET", "/evenements") as alice_source,
                aconnect_sse(bob_client, "GET", "/evenements") as bob_source,
            ):
                for source in (alice_source, bob_source):
                    assert source.response.status_code == 200
                    assert source.response.headers["content-type"].startswith("text/event-stream")
                await wait_for(lambda: bus.subscriber_count(alice_id) == 1, "Alice abonnée")
                await wait_for(lambda: bus.subscriber_count(bob_id) == 1, "Bob abonné")

                for_alice = Event(
                    type="request.sent",
                    recipients=frozenset({alice_id}),
                    data={"request_id": "a"},
                    urgent=True,
                )
                for_both = Event(
                    type="request.updated", recipients=frozenset({alice_id, bob_id}), data={"n": 2}
                )
                await bus.publish(for_alice)
                await bus.publish(for_both)

                alice_events, bob_events = alice_source.aiter_sse(), bob_source.aiter_sse()
                first = await next_sse(alice_events)
                assert (first.event, first.id) == ("request.sent", for_alice.id)
                assert json.loads(first.data) == for_alice.browser_payload()
                assert json.loads(first.data)["urgent"] is True
                second = await next_sse(alice_events)
                assert (second.event, second.id) == ("request.updated", for_both.id)
                # Bob's first event is the shared one: Alice's own never reached him (delivery keeps the order)
                bob_first = await next_sse(bob_events)
                assert (bob_first.event, bob_first.id) == ("request.updated", for_both.id)
                assert "recipients" not in json.loads(bob_first.data)

            # both clients left: their subscriptions are gone
            await wait_for(lambda: bus.subscriber_count() == 0, "abonnements fermés après déconnexion")
        finally:
            await alice_client.aclose()
            await bob_client.aclose()


async def test_heartbeat_comments_keep_the_stream_alive(app, people):
    alice, _ = people
    async with serving(app) as served:
        client = await signed_in(served.url, alice)
        try:
            async with client.stream("GET", "/evenements") as response:
                assert response.status_code == 200
                async with asyncio.timeout(10):  # heartbeat every second in these tests
                    async for line in response.aiter_lines():
                        if line.startswith(":"):
                            break
        finally:
            await client.aclose()


async def test_api_clients_use_a_bearer_token(app, session, people):
    alice, bob = people
    headers = await token_for(session, alice)
    bus = app.state.event_bus
    async with serving(app) as served, httpx.AsyncClient(base_url=served.url, timeout=10) as client:
        async with aconnect_sse(client, "GET", "/evenements", headers=headers) as source:
            assert source.response.status_code == 200
            await wait_for(lambda: bus.subscriber_count(alice.account.id) == 1, "client API abonné")
            await bus.publish(Event(type="request.updated", recipients=frozenset({bob.account.id}), data={}))
            mine = Event(type="request.updated", recipients=frozenset({alice.account.id}), data={"k": "v"})
            await bus.publish(mine)
            received = await next_sse(source.aiter_sse())
            assert received.id == mine.id


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer jeton-inconnu"}])
async def test_without_valid_credentials_401_json_not_a_redirect(client, headers):
    response = await client.get("/evenements", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401 and "Authentification requise" in body["detail"]


async def test_a_stream_ends_by_itself_after_its_maximum_duration(app, people):
    alice, _ = people
    app.state.settings.events_stream_max_seconds = 1
    bus = app.state.event_bus
    async with serving(app) as served:
        client = await signed_in(served.url, alice)
        try:
            async with aconnect_sse(client, "GET", "/evenements") as source:
                async with asyncio.timeout(10):
                    events = [sse async for sse in source.aiter_sse()]  # returns when the server ends it
            assert events == []
            assert bus.subscriber_count() == 0
        finally:
            await client.aclose()


async def test_server_shutdown_ends_open_streams_cleanly(app, people, caplog):
    alice, _ = people
    bus = app.state.event_bus
    async with serving(app) as served:
        client = await signed_in(served.url, alice)
        try:
            with caplog.at_level(logging.WARNING):
                async with aconnect_sse(client, "GET", "/evenements") as source:
                    await wait_for(lambda: bus.subscriber_count(alice.account.id) == 1, "Alice abonnée")
                    stopping = asyncio.create_task(stop_server(served))
                    async with asyncio.timeout(10):
                        events = [sse async for sse in source.aiter_sse()]
                    assert events == []
                async with asyncio.timeout(15):
                    await stopping
        finally:
            await client.aclose()
    assert served.task.done() and served.task.exception() is None
    assert bus.subscriber_count() == 0
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, [r.getMessage() for r in problems]
    leftovers = [
        t
        for t in asyncio.all_tasks()
        if not t.done() and "events" in repr(t.get_coro()) and t is not asyncio.current_task()
    ]
    assert not leftovers
