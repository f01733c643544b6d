"""Browser-like helpers for page tests (CSRF token extraction, login through the real form), and the frozen
server clock of service tests."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx

from telesante.kit import clock

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def csrf_token(client: httpx.AsyncClient, path: str = "/connexion") -> str:
    response = await client.get(path)
    match = CSRF_RE.search(response.text)
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1)


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post("/connexion", data={"email": email, "password": password, "csrf_token": token})


class FrozenClock:
    """The server's clock in a test, moved by hand (``frozen.advance(minutes=…)`` or ``frozen.now = …``)."""

    def __init__(self, now: datetime):
        self.now = now

    def advance(self, **delta) -> None:
        self.now = self.now + timedelta(**delta)


@contextlib.contextmanager
def frozen_clock(at: datetime) -> Iterator[FrozenClock]:
    frozen = FrozenClock(at)
    clock.set_clock(lambda: frozen.now)
    try:
        yield frozen
    finally:
        clock.set_clock(None)
