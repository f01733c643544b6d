"""Two application processes (uvicorn, as deployed) on the machine's PostgreSQL and Redis: a request sent through
instance A reaches the expert's stream open on instance B; the expert's acceptance on B reaches the requester's
stream on A; a professional of another hospital connected to B receives nothing."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from pathlib import Path

import httpx
import pytest
from bench.notify import migrate as migrate_database
from bench.notify import (
    recreate_database,
    seed_in_subprocess,
    server_env,
    start_instance,
    stop_instance,
)
from httpx_sse import aconnect_sse

from tests.conftest import WORKER

pytestmark = pytest.mark.slow

DATABASE = "test_two_processes" + (f"_{WORKER}" if WORKER else "")


@pytest.fixture
async def two_processes(redis_url):
    try:
        database_url = await recreate_database(DATABASE)
    except OSError as exc:
        pytest.fail(f"PostgreSQL injoignable sur 127.0.0.1:5432 ({exc}).", pytrace=False)
    channel = f"telesante:test:{uuid.uuid4().hex}"
    env_a = server_env(Path(tempfile.mkdtemp(prefix="telesante-a-")), database_url, redis_url, channel)
    env_b = {**env_a, "TELESANTE_DATA_DIR": tempfile.mkdtemp(prefix="telesante-b-")}
    migrate_database(env_a)
    info = seed_in_subprocess(env_a, listeners=1)
    a = start_instance(env_a)
    try:
        b = start_instance(env_b)
    except Exception:
        stop_instance(a)
        raise
    try:
        yield a.url, b.url, info
    finally:
        stop_instance(a)
        stop_instance(b)


async def _collect(client, url: str, token: str, into: list, ready: asyncio.Event) -> None:
    async with aconnect_sse(
        client, "GET", f"{url}/evenements", headers={"Authorization": f"Bearer {token}"}
    ) as s:
        assert s.response.status_code == 200
        ready.set()
        async for message in s.aiter_sse():
            if message.event != "ping" and message.data:
                into.append((message.event, json.loads(message.data)["data"]))


async def _wait_for(events: list, predicate, seconds: float = 10.0) -> tuple[str, dict]:
    async with asyncio.timeout(seconds):
        while True:
            for item in events:
                if predicate(item):
                    return item
            await asyncio.sleep(0.02)


async def test_an_event_raised_on_one_process_reaches_a_browser_on_the_other(two_processes):
    url_a, url_b, info = two_processes
    expert_on_b: list = []
    other_on_b: list = []
    requester_on_a: list = []
    readies = [asyncio.Event() for _ in range(3)]
    async with httpx.AsyncClient(timeout=httpx.Timeout(20.0, read=None)) as client:
        listeners = [
            asyncio.create_task(_collect(client, url_b, info["expert_token"], expert_on_b, readies[0])),
            asyncio.create_task(_collect(client, url_b, info["listener_tokens"][0], other_on_b, readies[1])),
            asyncio.create_task(_collect(client, url_a, info["requester_token"], requester_on_a, readies[2])),
        ]
        try:
            async with asyncio.timeout(20):
                await asyncio.gather(*(r.wait() for r in readies))
            await asyncio.sleep(0.5)  # the subscriptions reach Redis
            doctor = {"Authorization": f"Bearer {info['requester_token']}"}
            created = await client.post(
                f"{url_a}/api/requests",
                json={
                    "offer_id": info["offer_id"],
                    "patient_id": info["patient_id"],
                    "answers": {"question": "Conduite à tenir ?", "context": "Chute sous AVK."},
                },
                headers=doctor,
            )
            assert created.status_code == 201, created.text
            request_id = created.json()["id"]
            sent = await client.post(f"{url_a}/api/requests/{request_id}/send", json={}, headers=doctor)
            assert sent.status_code == 200, sent.text

            kind, data = await _wait_for(expert_on_b, lambda e: e[1].get("request_id") == request_id)
            assert kind == "request.sent" and data["status"] == "sent" and data["urgent"] is True

            accepted = await client.post(
                f"{url_b}/api/requests/{request_id}/accept",
                headers={"Authorization": f"Bearer {info['expert_token']}"},
            )
            assert accepted.status_code == 200, accepted.text
            _, data = await _wait_for(
                requester_on_a,
                lambda e: e[1].get("request_id") == request_id and e[1]["status"] == "accepted",
            )
            assert data["request_id"] == request_id
            await asyncio.sleep(1.0)  # time enough for a misdirected event to arrive
            assert other_on_b == []  # not a recipient: the other hospital's professional saw nothing
        finally:
            for task in listeners:
                task.cancel()
            await asyncio.gather(*listeners, return_exceptions=True)
