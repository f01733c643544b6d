"""A bare ASGI application answering every request with the bytes of one CT frame (512×512×2): the ceiling of what
the benchmark's HTTP client can fetch one by one on this machine, whatever the server."""

from __future__ import annotations

FRAME = bytes(512 * 512 * 2)


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
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/octet-stream"),
                (b"content-length", str(len(FRAME)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": FRAME})
