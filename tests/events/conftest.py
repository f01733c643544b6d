"""Event tests: a real Redis (127.0.0.1:6379, a channel of its own per run) and real HTTP servers (uvicorn in the
test's event loop, serving the test app, so that streams are read as a browser reads them)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio
import uvicorn
from redis.exceptions import RedisError

from telesante.config import Settings
from telesante.directory.models import Role
from tests.factories import PASSWORD, make_actor, make_organisation
from tests.helpers import login

REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Plain-HTTP test servers: the session cookie cannot be marked Secure there."""
    return Settings(
        data_dir=tmp_path,
        secret_key="test-secret-key-not-for-production",
        demo=False,
        cookie_secure=False,
        events_heartbeat_seconds=1,
        dicom_port=0,
        # No timer loop: the served app shares the test's one session, which a polling runner would use at the
        # same moment as a request (a "commit already in progress" race seen once in CI rehearsal).
        jobs_enabled=False,
    )


@pytest.fixture(scope="session")
def redis_channel_prefix() -> str:
    return f"telesante:test:{uuid.uuid4().hex}"


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The machine's Redis; a clear failure (never a skip) when it is not running."""
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        pytest.fail(f"Redis injoignable sur {REDIS_URL} ({exc}). Démarrez-le : {REDIS_START}", pytrace=False)
    finally:
        await client.aclose()
    yield REDIS_URL


@pytest.fixture
def redis_channel(redis_channel_prefix) -> str:
    """A channel of this test only: parallel runs and other tests never see its messages."""
    return f"{redis_channel_prefix}:{uuid.uuid4().hex[:8]}"


@dataclass
class Served:
    url: str
    server: uvicorn.Server
    task: asyncio.Task


async def start_server(app, http: Any = "auto", **options: Any) -> Served:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = {"lifespan": "on", "log_level": "warning", "timeout_graceful_shutdown": 10, "http": http}
    config = uvicorn.Config(app, **{**settings, **options})
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
            await asyncio.sleep(0.01)
    return Served(f"http://127.0.0.1:{port}", server, task)


async def stop_server(served: Served) -> None:
    served.server.should_exit = True
    async with asyncio.timeout(15):
        await served.task


@contextlib.asynccontextmanager
async def serving(app, http: Any = "auto", **options: Any) -> AsyncIterator[Served]:
    """``app`` served by uvicorn in this event loop; ``http``: uvicorn's HTTP protocol (name or class); ``options``:
    more of uvicorn's settings (TLS files…)."""
    served = await start_server(app, http, **options)
    try:
        yield served
    finally:
        if not served.task.done():
            await stop_server(served)


async def wait_for(predicate, what: str, seconds: float = 5.0) -> None:
    """Wait (bounded) until ``predicate()`` holds; fails with ``what`` otherwise. Nothing is asserted on timing."""
    try:
        async with asyncio.timeout(seconds):
            while not predicate():  # noqa: ASYNC110 - a plain condition, no event to wait on
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"toujours faux après {seconds} s : {what}")


@pytest.fixture
async def people(session):
    hospital = await make_organisation(session)
    alice = await make_actor(session, hospital, Role.REQUESTER)
    bob = await make_actor(session, hospital, Role.EXPERT)
    return alice, bob


async def signed_in(base_url: str, actor) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=10)
    response = await login(client, actor.email, PASSWORD)
    assert response.status_code == 303, response.text
    return client
