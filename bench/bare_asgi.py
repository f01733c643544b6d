"""A bare ASGI application answering every request with the bytes of a CT frame (512×512×2): the ceiling of what
the benchmark's HTTP client can fetch one by one on this machine, whatever the server.

The frames are 300 different ones, in turn, as a series' slices are (until 2026-12-05 it was one frame of zeros,
the same pages each time; no difference measured here: 3,740–4,200 against 4,100–4,360 frames/s)."""

from __future__ import annotations

import itertools
import os

FRAMES = [os.urandom(512 * 512 * 2) for _ in range(300)]
_next = itertools.cycle(FRAMES)


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    frame = next(_next)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(len(frame)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": frame})
