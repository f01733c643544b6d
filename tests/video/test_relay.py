"""Video calls across instances (video/relay.py) on the machine's Redis: two hubs standing for two instances, the
call owned by the first; a participant connected to the second is proxied — waiting room, admission, relay of
signals and chat, leaving; and when the owner stops, the proxied participant is disconnected (to reconnect)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from telesante.video.relay import VideoRelay
from telesante.video.signalling import GUEST, HOST, Member, SignallingHub
from tests.events.conftest import redis_url  # noqa: F401 - the machine's Redis, as a fixture
from tests.video.test_signalling import FakeConnection


async def _until(predicate, seconds: float = 5.0):
    async with asyncio.timeout(seconds):
        while not predicate():  # noqa: ASYNC110 - a plain condition, no event to wait on
            await asyncio.sleep(0.01)


@pytest.fixture
async def instances(redis_url):  # noqa: F811
    prefix = f"telesante:test:{uuid.uuid4().hex}"
    relays = []
    for name in ("a", "b"):
        relay = VideoRelay(
            redis_url, SignallingHub(4), prefix=prefix, instance_id=name, heartbeat_seconds=0.2
        )
        await relay.start()
        relays.append(relay)
    yield relays
    for relay in relays:
        if relay._tasks:
            await relay.stop()


async def test_a_participant_on_another_instance_is_proxied_to_the_owner(instances):
    a, b = instances
    room = uuid.uuid4().hex
    assert await a.owner_of(room) == "a"
    doctor = Member("a-doctor", "Dr", HOST, FakeConnection())
    await a.hub.join(room, doctor)
    assert await b.owner_of(room) == "a"  # the call stays with its owner
    guest_socket = FakeConnection()
    guest = Member("g-1", "Fille", GUEST, guest_socket)
    await b.proxy_join("a", room, "conn-1", guest)
    await _until(lambda: "waiting" in guest_socket.types())
    await _until(lambda: doctor.connection.last("lobby")["waiting"] != [])
    assert doctor.connection.last("lobby")["waiting"][0]["id"] == "g-1"
    await a.hub.handle(room, doctor, {"type": "admit", "id": "g-1"})
    await _until(lambda: "welcome" in guest_socket.types())
    assert guest_socket.last("welcome")["peers"] == [{"id": "a-doctor", "name": "Dr", "role": HOST}]
    await b.proxy_message(
        "a", room, "conn-1", {"type": "signal", "to": "a-doctor", "data": {"candidate": None}}
    )
    await _until(lambda: "signal" in doctor.connection.types())
    assert doctor.connection.last("signal") == {"type": "signal", "from": "g-1", "data": {"candidate": None}}
    await a.hub.handle(room, doctor, {"type": "chat", "text": "Bonjour"})
    await _until(lambda: "chat" in guest_socket.types())
    assert b.hub.rooms == {}  # the second instance holds no call state
    await b.proxy_leave("a", room, "conn-1", dropped=False)
    await _until(lambda: "peer-left" in doctor.connection.types())


async def test_the_owner_going_away_disconnects_proxied_participants(instances):
    a, b = instances
    room = uuid.uuid4().hex
    assert await a.owner_of(room) == "a"
    await a.hub.join(room, Member("a-doctor", "Dr", HOST, FakeConnection()))
    guest_socket = FakeConnection()
    await b.proxy_join("a", room, "conn-2", Member("g-2", "Interprète", GUEST, guest_socket))
    await _until(lambda: "waiting" in guest_socket.types())
    await a.stop()
    await _until(lambda: guest_socket.closed is not None)
    assert guest_socket.closed[0] == 1012  # the browser reconnects by itself
    assert await b.owner_of(room) == "b"  # and the call gets a new owner
