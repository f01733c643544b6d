"""Two application processes (uvicorn, as deployed) on the machine's PostgreSQL and Redis: the doctor's browser
reaches instance A, the nurse's instance B; the call works as on one instance (waiting room, admission, signals,
chat), the nurse's messages going through Redis to the instance that serves the call."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from pathlib import Path

import pytest
import websockets
from bench.notify import migrate as migrate_database
from bench.notify import recreate_database, server_env, start_instance, stop_instance
from bench.signalling import seed_in_subprocess

from tests.conftest import WORKER
from tests.events.conftest import redis_url  # noqa: F401 - the machine's Redis, as a fixture

pytestmark = pytest.mark.slow

DATABASE = "test_video_two_processes" + (f"_{WORKER}" if WORKER else "")


@pytest.fixture
async def two_processes(redis_url):  # noqa: F811
    try:
        database_url = await recreate_database(DATABASE)
    except OSError as exc:
        pytest.fail(f"PostgreSQL injoignable sur 127.0.0.1:5432 ({exc}).", pytrace=False)
    channel = f"telesante:test:{uuid.uuid4().hex}"
    env_a = server_env(Path(tempfile.mkdtemp(prefix="telesante-a-")), database_url, redis_url, channel)
    env_a["TELESANTE_COOKIE_SECURE"] = "0"
    env_b = {**env_a, "TELESANTE_DATA_DIR": tempfile.mkdtemp(prefix="telesante-b-")}
    migrate_database(env_a)
    info = await asyncio.to_thread(seed_in_subprocess, env_a, 1)
    a = start_instance(env_a)
    try:
        b = start_instance(env_b)
    except Exception:
        stop_instance(a)
        raise
    try:
        yield a.url, b.url, info, a, database_url
    finally:
        stop_instance(a)
        stop_instance(b)


async def _connect(url: str, room: str, token: str):
    socket = await websockets.connect(
        f"{url.replace('http://', 'ws://')}/video/salles/{room}/ws",
        additional_headers={"Origin": url, "Cookie": f"ts_session={token}"},
    )
    return socket


async def _next(socket, kind: str, seconds: float = 10.0) -> dict:
    async with asyncio.timeout(seconds):
        while True:
            message = json.loads(await socket.recv())
            if message["type"] == kind:
                return message


async def test_a_call_spread_over_two_instances(two_processes):
    url_a, url_b, info, *_ = two_processes
    room = info["rooms"][0]
    doctor = await _connect(url_a, room, info["doctor"])
    try:
        assert (await _next(doctor, "welcome"))["peers"] == []
        nurse = await _connect(url_b, room, info["nurse"])
        try:
            assert (await _next(nurse, "config"))["max_participants"] == 4  # from her own instance
            await _next(nurse, "waiting")  # from the instance that serves the call
            lobby = await _next(doctor, "lobby")
            while not lobby["waiting"]:  # the first one was sent when the doctor joined, alone
                lobby = await _next(doctor, "lobby")
            nurse_id = lobby["waiting"][0]["id"]
            await doctor.send(json.dumps({"type": "admit", "id": nurse_id}))
            welcome = await _next(nurse, "welcome")
            doctor_id = welcome["peers"][0]["id"]
            assert welcome["you"]["id"] == nurse_id
            await nurse.send(
                json.dumps(
                    {
                        "type": "signal",
                        "to": doctor_id,
                        "data": {"description": {"type": "offer", "sdp": "v=0"}},
                    }
                )
            )
            signal = await _next(doctor, "signal")
            assert signal["from"] == nurse_id and signal["data"]["description"]["type"] == "offer"
            await doctor.send(json.dumps({"type": "chat", "text": "Bonjour, je vous entends."}))
            assert (await _next(nurse, "chat"))["text"] == "Bonjour, je vous entends."
        finally:
            await nurse.close()
        left = await _next(doctor, "peer-left")
        assert left["id"] == nurse_id
    finally:
        await doctor.close()


async def test_the_call_survives_its_owner_instance_stopping(two_processes):
    """A rolling restart: instance A serves the call (the doctor is on it), the nurse is proxied from B. A stops:
    the nurse's socket is closed at once, she reconnects to B, which now serves the call and knows from the journal
    that she was admitted (no second waiting room); the doctor comes back through B and finds her."""
    url_a, url_b, info, instance_a, database_url = two_processes
    room = info["rooms"][0]
    doctor = await _connect(url_a, room, info["doctor"])
    nurse = await _connect(url_b, room, info["nurse"])
    try:
        await _next(doctor, "welcome")
        await _next(nurse, "waiting")
        lobby = await _next(doctor, "lobby")
        while not lobby["waiting"]:
            lobby = await _next(doctor, "lobby")
        nurse_id = lobby["waiting"][0]["id"]
        await doctor.send(json.dumps({"type": "admit", "id": nurse_id}))
        await _next(nurse, "welcome")
        await asyncio.to_thread(stop_instance, instance_a)
        async with asyncio.timeout(5):  # closed by the stopping owner, not at B's next heartbeat
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await nurse.recv()
        await nurse.close()
        nurse = await _connect(url_b, room, info["nurse"])
        welcome = await _next(nurse, "welcome")  # straight in: no "waiting" first
        assert welcome["you"]["id"] == nurse_id and welcome["peers"] == []
        await doctor.close()
        doctor = await _connect(url_b, room, info["doctor"])
        welcome = await _next(doctor, "welcome")
        assert [p["id"] for p in welcome["peers"]] == [nurse_id]
        assert (await _next(nurse, "peer-joined"))["rejoined"] is False
    finally:
        await nurse.close()
        await doctor.close()
    import asyncpg

    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        kinds = [
            row["kind"]
            for row in await connection.fetch(
                "SELECT kind FROM video_call_events WHERE room_id = $1 AND participant = $2 ORDER BY at",
                uuid.UUID(room),
                nurse_id,
            )
        ]
    finally:
        await connection.close()
    assert kinds[:3] == ["joined", "admitted", "dropped"] and "reconnected" in kinds
