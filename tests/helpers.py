"""Browser-like helpers for page tests: CSRF token extraction, login through the real form."""

from __future__ import annotations

import re

import httpx

CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def csrf_token(client: httpx.AsyncClient, path: str = "/connexion") -> str:
    response = await client.get(path)
    match = CSRF_RE.search(response.text)
    assert match, f"no CSRF token on {path} ({response.status_code})"
    return match.group(1)


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = await csrf_token(client)
    return await client.post("/connexion", data={"email": email, "password": password, "csrf_token": token})
