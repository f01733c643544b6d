"""The platform's HTTP protocol (web/zerocopy.py): uvicorn's, plus early answers sent from a file mapped in memory.

Served for real by uvicorn in the test's event loop, called by real clients (httpx, and raw sockets where a client
must misbehave: pipelining, reading slowly, leaving mid-file). The application below answers everything the early
responder declines, so each test can tell who answered."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mmap
import os
import socket
import subprocess

import h11
import httpx
import pytest

from telesante.config import get_settings
from telesante.web import zerocopy
from tests.events.conftest import serving

SIZE = 4 * 1024 * 1024


def _mapped(path) -> memoryview:
    """The file mapped in memory, as the blob store maps it (``FilesystemBlobStore.mapped_if_cached``)."""
    with open(path, "rb") as file:
        return memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY))


class Site:
    """A toy application and its early responder: ``/file/<offset>/<count>`` is a range of ``data``, sent from the
    file's mapping; ``/cut`` is a range of a file cut short after it was mapped; ``/boom`` makes the responder fail;
    anything else is the application's."""

    def __init__(self, path):
        self.data = os.urandom(SIZE)
        self.path = path
        path.write_bytes(self.data)
        self.view = _mapped(path)
        self.cut = path.with_name("cut.bin")
        self.cut.write_bytes(self.data)
        self.cut_view = _mapped(self.cut)
        self.asked = 0
        self.answered_by_app = 0
        self.direct_kinds: list[
            list[tuple[str, int]]
        ] = []  # per /direct request: (type, length) of each message
        self.disconnected = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.answered_by_app += 1
        body = f"application {scope['method']} {scope['path']}".encode()
        status = 200
        if scope["path"] == "/direct/refuse":  # answers before reading the body (a refusal)
            status = 415
        elif scope["path"].startswith("/direct"):  # read by the protocol itself (``read_bodies_directly``)
            received, kinds, kept = hashlib.sha256(), [], []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self.disconnected += 1
                    return
                kinds.append((type(message["body"]).__name__, len(message["body"])))
                if (
                    scope["path"] == "/direct/keep"
                ):  # held to the end, as views: a chunk reused meanwhile shows
                    kept.append(memoryview(message["body"]))
                else:
                    received.update(message["body"])
                if scope["path"] == "/direct/slow":
                    await asyncio.sleep(0.01)
                if not message.get("more_body"):
                    break
            for view in kept:
                received.update(view)
            self.direct_kinds.append(kinds)
            body = received.hexdigest().encode()
        elif scope["path"].startswith(
            "/echo"
        ):  # the body's digest, as received (slowly: pieces pile up meanwhile)
            received, messages = hashlib.sha256(), 0
            while True:
                message = await receive()
                messages += 1
                assert type(message["body"]) is bytes  # what ASGI promises, whichever way it was gathered
                received.update(message["body"])
                if scope["path"] == "/echo/slow":
                    await asyncio.sleep(0.005)
                if not message.get("more_body"):
                    break
            body = f"{received.hexdigest()} {messages}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})

    def responder(self, scope):
        self.asked += 1
        parts = scope["path"].strip("/").split("/")
        if parts[0] == "boom":
            raise RuntimeError("responder bug")
        if parts[0] == "cut":
            return zerocopy.Answer(b"", b"", self.cut_view[SIZE // 2 :], b"")
        if parts[0] != "file":
            return None
        offset, count = int(parts[1]), int(parts[2])
        fields = b"content-type: application/octet-stream\r\n"
        return zerocopy.Answer(fields, b"<", self.view[offset : offset + count], b">")

    def expected(self, offset: int, count: int) -> bytes:
        return b"<" + self.data[offset : offset + count] + b">"


@pytest.fixture
async def site(tmp_path):
    zerocopy.enabled.cache_clear()
    site = Site(tmp_path / "file.bin")
    stop = zerocopy.answer_early(site, site.responder)
    stop_direct = zerocopy.read_bodies_directly(site, lambda scope: scope["path"].startswith("/direct"))
    async with serving(site, zerocopy.ZeroCopyHttpToolsProtocol) as served:
        site.url = served.url
        site.port = int(served.url.rsplit(":", 1)[1])
        yield site
    stop_direct()
    stop()
    zerocopy.enabled.cache_clear()


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _settled(before: int) -> bool:
    """Whether the process is back to ``before`` open descriptors within 5 s (connections close in the loop)."""
    for _ in range(500):
        if _open_descriptors() <= before:
            return True
        await asyncio.sleep(0.01)
    return False


def _responses(raw: bytes) -> list[tuple[int, bytes]]:
    """Parse every HTTP/1.1 response in ``raw`` (h11, a client no one here wrote)."""
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    connection.send(h11.EndOfMessage())
    connection.receive_data(raw)
    found, status, body = [], None, b""
    while True:
        event = connection.next_event()
        if isinstance(event, h11.Response):
            status, body = event.status_code, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            found.append((status, body))
            if connection.their_state is not h11.DONE:  # the server said it closes
                return found
            connection.start_next_cycle()
            connection.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
            connection.send(h11.EndOfMessage())
        else:
            return found


@pytest.mark.parametrize("path", ["/echo", "/echo/slow"])
async def test_request_bodies_reach_the_application_whole(site, path):
    """Each piece of a body is handed on as received when nothing waits, gathered as uvicorn does otherwise (the
    application reading slowly): either way every byte arrives, once, in order; on one connection, twice."""
    body = os.urandom(3 * 1024 * 1024 + 17)

    async def pieces(size):
        for start in range(0, len(body), size):
            yield body[start : start + size]
            if start % (50 * size) == 0:
                await asyncio.sleep(0)

    async with httpx.AsyncClient(base_url=site.url) as client:
        sized = await client.post(path, content=body)
        chunked = await client.post(path, content=pieces(200_000))
        # many small chunks reach the server in one read: piled up behind each other, in uvicorn's buffer
        small = await client.post(path, content=pieces(1_000))
        empty = await client.post(path, content=b"")
    for response in (sized, chunked, small):
        digest, messages = response.text.split()
        assert response.status_code == 200
        assert digest == hashlib.sha256(body).hexdigest()
        assert int(messages) >= 1
    assert empty.text.split()[0] == hashlib.sha256(b"").hexdigest()


async def test_early_and_application_answers_share_one_connection(site):
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=1)) as http:
        first = await http.get(f"{site.url}/file/100/1000000")
        assert first.status_code == 200 and first.content == site.expected(100, 1000000)
        assert first.headers["content-length"] == str(1000002)
        assert first.headers["content-type"] == "application/octet-stream"
        assert "date" in first.headers and "server" in first.headers  # uvicorn's default headers
        other = await http.get(f"{site.url}/elsewhere")
        assert other.text == "application GET /elsewhere"
        whole = await http.get(f"{site.url}/file/0/{SIZE}")
        assert whole.content == site.expected(0, SIZE)
    assert site.asked == 3 and site.answered_by_app == 1


async def test_pipelined_requests_are_answered_in_order(site):
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    writer.write(
        b"GET /file/5/300000 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /app HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /file/7/11 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)  # until the server closes, as the last request asked
    writer.close()
    assert _responses(raw) == [
        (200, site.expected(5, 300000)),
        (200, b"application GET /app"),
        (200, site.expected(7, 11)),
    ]


async def test_a_slow_reader_gets_every_byte_and_keeps_its_connection(site):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # the server's sending must wait, often
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", site.port))
    await loop.sock_sendall(sock, f"GET /file/0/{SIZE} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    raw = b""
    head_end = -1
    while head_end < 0 or len(raw) < head_end + 4 + SIZE + 2:
        raw += await asyncio.wait_for(loop.sock_recv(sock, 8192), 10)
        head_end = raw.find(b"\r\n\r\n")
        await asyncio.sleep(0.0005 if len(raw) % 7 else 0.005)
    await loop.sock_sendall(sock, b"GET /app HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    while True:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
        if not chunk:
            break
        raw += chunk
    sock.close()
    assert _responses(raw) == [(200, site.expected(0, SIZE)), (200, b"application GET /app")]


async def test_a_client_leaving_mid_file_leaves_nothing_behind(site):
    async with httpx.AsyncClient() as http:  # warm: the server's own descriptors are open
        assert (await http.get(f"{site.url}/file/0/10")).status_code == 200
    before = _open_descriptors()
    loop = asyncio.get_running_loop()
    for _ in range(3):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", site.port))
        await loop.sock_sendall(sock, f"GET /file/0/{SIZE} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await asyncio.wait_for(loop.sock_recv(sock, 4096), 10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
        sock.close()
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{site.url}/file/3/5000")
        assert response.content == site.expected(3, 5000)

    assert await _settled(before)  # the files and the sockets' own descriptors are all closed


async def test_what_the_responder_declines_or_fails_goes_to_the_application(site, caplog):
    async with httpx.AsyncClient() as http:
        head = await http.head(f"{site.url}/file/0/10")  # only GET is answered early
        assert head.status_code == 200 and site.asked == 0
        with caplog.at_level(logging.ERROR, logger="telesante.web.zerocopy"):
            boom = await http.get(f"{site.url}/boom")
        assert boom.text == "application GET /boom"
        assert "early responder failed" in caplog.text
        declined = await http.get(f"{site.url}/other")
        assert declined.text == "application GET /other"
    assert site.asked == 2 and site.answered_by_app == 3


async def test_a_file_cut_short_under_its_mapping_ends_the_connection_not_the_server(site):
    """Blobs are never rewritten in place, but were one cut short while mapped, only the kernel reads the mapping
    (``sendmsg`` fails with EFAULT): the connection ends, never with a short answer taken for a whole one, and the
    server (a copy in the process would have stopped it with SIGBUS) goes on serving."""
    os.truncate(site.cut, 4096)
    before = _open_descriptors()
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{site.url}/cut")
        fine = await http.get(f"{site.url}/file/0/100")
        assert fine.content == site.expected(0, 100)
    assert await _settled(before)


async def test_off_when_the_setting_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("TELESANTE_ZERO_COPY_SEND", "0")
    get_settings.cache_clear()
    zerocopy.enabled.cache_clear()
    site = Site(tmp_path / "file.bin")
    stop = zerocopy.answer_early(site, site.responder)
    try:
        async with serving(site, zerocopy.ZeroCopyHttpToolsProtocol) as served, httpx.AsyncClient() as http:
            response = await http.get(f"{served.url}/file/0/10")
        assert response.text == "application GET /file/0/10" and site.asked == 0
    finally:
        stop()
        monkeypatch.delenv("TELESANTE_ZERO_COPY_SEND")
        get_settings.cache_clear()
        zerocopy.enabled.cache_clear()


async def test_never_under_tls(tmp_path):
    """The socket would carry the file in clear: a TLS connection is always answered by the application."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    await asyncio.to_thread(
        subprocess.run,
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    zerocopy.enabled.cache_clear()
    site = Site(tmp_path / "file.bin")
    stop = zerocopy.answer_early(site, site.responder)
    try:
        async with (
            serving(
                site, zerocopy.ZeroCopyHttpToolsProtocol, ssl_keyfile=str(key), ssl_certfile=str(cert)
            ) as served,
            httpx.AsyncClient(verify=False) as http,  # noqa: S501 - a certificate made for this test
        ):
            response = await http.get(served.url.replace("http://", "https://") + "/file/0/10")
        assert response.text == "application GET /file/0/10" and site.asked == 0
    finally:
        stop()


def test_the_platform_serves_with_this_protocol():
    assert zerocopy.COMPATIBLE  # this uvicorn is the one the subclass was written for
    assert zerocopy.protocol() is zerocopy.ZeroCopyHttpToolsProtocol


def test_another_uvicorn_falls_back_to_its_own_protocol(monkeypatch, caplog):
    """If uvicorn's internals are not the ones this subclass was written for, the stock protocol serves."""
    monkeypatch.setattr(zerocopy, "COMPATIBLE", False)
    with caplog.at_level(logging.WARNING, logger="telesante.web.zerocopy"):
        assert zerocopy.protocol() == "auto"
    assert "not the one expected" in caplog.text
    monkeypatch.setattr(zerocopy.RequestResponseCycle, "__init__", lambda self: None)  # attributes gone
    assert zerocopy._compatible() is False


async def test_uvicorns_concurrency_limit_still_answers_503(tmp_path):
    """Over uvicorn's limit_concurrency it answers 503 itself: nothing is answered early instead."""
    zerocopy.enabled.cache_clear()
    site = Site(tmp_path / "file.bin")
    stop = zerocopy.answer_early(site, site.responder)
    try:
        async with (
            serving(site, zerocopy.ZeroCopyHttpToolsProtocol, limit_concurrency=0) as served,
            httpx.AsyncClient() as http,
        ):
            response = await http.get(f"{served.url}/file/0/10")
        assert response.status_code == 503 and site.asked == 0 and site.answered_by_app == 0
    finally:
        stop()


async def test_an_early_answer_is_in_the_access_log(tmp_path):
    """Written as uvicorn writes the application's answers: client, request line, status."""
    zerocopy.enabled.cache_clear()
    site = Site(tmp_path / "file.bin")
    stop = zerocopy.answer_early(site, site.responder)
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    access = logging.getLogger("uvicorn.access")
    try:
        async with serving(site, zerocopy.ZeroCopyHttpToolsProtocol, log_level="info") as served:
            keep = Keep()
            access.addHandler(keep)
            async with httpx.AsyncClient() as http:
                response = await http.get(f"{served.url}/file/0/10")
            access.removeHandler(keep)
        assert response.content == site.expected(0, 10) and site.asked == 1 and site.answered_by_app == 0
        assert any(
            line.startswith("127.0.0.1:") and line.endswith('"GET /file/0/10 HTTP/1.1" 200') for line in lines
        )
    finally:
        stop()


# --- large bodies read by the protocol itself (read_bodies_directly) -------------------------------------------------


def _kinds_are_direct(kinds: list[tuple[str, int]]) -> bool:
    """After what httptools passed on with the head (bytes), the body came in received chunks, each full but the
    last."""
    chunks = [length for kind, length in kinds if kind == "ReceivedChunk"]
    return (
        bool(chunks)
        and all(kind == "bytes" for kind, _ in kinds[: len(kinds) - len(chunks)])
        and all(length == zerocopy.BODY_CHUNK_BYTES for length in chunks[:-1])
        and 0 < chunks[-1] <= zerocopy.BODY_CHUNK_BYTES
    )


async def test_received_chunks_are_written_again_only_once_nothing_refers_to_them(site):
    """Full chunks are reused (a new one costs zeroing and page faults), but never while anything refers to them:
    bodies held whole by the application while others arrive on other connections keep their bytes."""
    bodies = [os.urandom(5 * zerocopy.BODY_CHUNK_BYTES + n) for n in range(4)]
    async with httpx.AsyncClient(base_url=site.url) as client:
        answers = await asyncio.gather(
            *(client.post(path, content=body) for body in bodies for path in ("/direct/keep", "/direct"))
        )
        again = await client.post("/direct", content=bodies[0])
    expected = [hashlib.sha256(body).hexdigest() for body in bodies for _ in range(2)]
    assert [answer.text for answer in answers] == expected
    assert again.text == expected[0]
    assert all(_kinds_are_direct(kinds) for kinds in site.direct_kinds)
    assert 0 < len(zerocopy._chunks) <= zerocopy.SPARE_CHUNKS


@pytest.mark.parametrize("path", ["/direct", "/direct/slow"])
async def test_a_large_body_is_read_into_chunks_and_the_connection_goes_on(site, path):
    """A body from DIRECT_BODY_BYTES, on a route that asked: every byte once, in order, in received chunks (the
    application reading slowly or not); then the same connection serves the next requests, early answers included.
    A smaller body, a chunked one, and one on another route go uvicorn's way."""
    body = os.urandom(3 * zerocopy.BODY_CHUNK_BYTES + 17)

    async def pieces(size):
        for start in range(0, len(body), size):
            yield body[start : start + size]

    async with httpx.AsyncClient(base_url=site.url, limits=httpx.Limits(max_connections=1)) as client:
        direct = await client.post(path, content=body)
        after = await client.get("/app")
        early = await client.get("/file/0/10")
        again = await client.post(path, content=body[:-1])
        small = await client.post(path, content=body[: zerocopy.DIRECT_BODY_BYTES - 1])
        chunked = await client.post(path, content=pieces(300_000))
        elsewhere = await client.post("/echo", content=body)
    assert direct.status_code == 200 and direct.text == hashlib.sha256(body).hexdigest()
    assert after.text == "application GET /app" and early.content == site.expected(0, 10)
    assert again.text == hashlib.sha256(body[:-1]).hexdigest()
    assert small.text == hashlib.sha256(body[: zerocopy.DIRECT_BODY_BYTES - 1]).hexdigest()
    assert chunked.text == hashlib.sha256(body).hexdigest()
    assert elsewhere.text.split()[0] == hashlib.sha256(body).hexdigest()
    big, big_again, smaller, chunked_kinds = site.direct_kinds
    assert _kinds_are_direct(big) and _kinds_are_direct(big_again)
    assert all(kind == "bytes" for kind, _ in smaller + chunked_kinds)


async def _answers_to_the_end(reader, writer) -> list[tuple[int, bytes]]:
    """What the server answers until it closes the connection (the last request asked it to)."""
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return _responses(raw)


def _digest_then_app(body: bytes) -> list[tuple[int, bytes]]:
    """The answers to a ``/direct`` body followed by ``GET /app``."""
    return [(200, hashlib.sha256(body).hexdigest().encode()), (200, b"application GET /app")]


async def test_a_large_body_pipelined_with_the_next_request(site):
    """The reader never reads past the body: the request sent right behind it, in the same packets, is parsed by
    uvicorn's protocol and answered in order."""
    body = os.urandom(2 * zerocopy.BODY_CHUNK_BYTES + 5)
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    writer.write(
        b"POST /direct HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
        + b"GET /app HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert await _answers_to_the_end(reader, writer) == _digest_then_app(body)
    assert _kinds_are_direct(site.direct_kinds[0])


async def test_a_refusal_before_the_body_drops_the_rest_and_keeps_the_connection(site):
    """The application answers without reading the body (a refusal): the rest of the body is read and dropped, and
    the request behind it is answered."""
    body = os.urandom(3 * zerocopy.BODY_CHUNK_BYTES)
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    writer.write(b"POST /direct/refuse HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    writer.write(body[:1000])
    await writer.drain()
    await asyncio.sleep(0.05)  # the refusal is sent while most of the body is still to come
    writer.write(body[1000:] + b"GET /app HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert _responses(raw) == [(415, b"application POST /direct/refuse"), (200, b"application GET /app")]


async def test_a_client_leaving_mid_body_is_a_disconnect_and_leaves_nothing_behind(site):
    async with httpx.AsyncClient() as http:  # warm: the server's own descriptors are open
        assert (await http.get(f"{site.url}/app")).status_code == 200
    before = _open_descriptors()
    for _ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        writer.write(b"POST /direct HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (4 << 20))
        writer.write(os.urandom(3 * zerocopy.BODY_CHUNK_BYTES // 2))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await writer.wait_closed()
    await _settled(before)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{site.url}/app")).text == "application GET /app"
    assert site.disconnected == 3 and site.direct_kinds == []
    assert await _settled(before)


async def test_expect_100_continue_is_answered_and_the_body_read_directly(site):
    """A client that waits to be told to go on (``Expect: 100-continue``) is told when the application first reads;
    the body then comes in received chunks, and the connection serves the next request."""
    body = os.urandom(2 * zerocopy.BODY_CHUNK_BYTES + 5)
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    writer.write(
        b"POST /direct HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    await writer.drain()
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
    writer.write(body + b"GET /app HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert await _answers_to_the_end(reader, writer) == _digest_then_app(body)
    assert len(site.direct_kinds) == 1 and _kinds_are_direct(site.direct_kinds[0])


async def test_expect_100_continue_refused_before_the_body_gets_no_go_ahead(site):
    """An application that answers without reading (a refusal) never tells the client to send its body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    writer.write(
        b"POST /direct/refuse HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
        % (3 * zerocopy.BODY_CHUNK_BYTES)
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()  # as curl does after a final answer to a request whose body it did not send
    assert head.startswith(b"HTTP/1.1 415 ")
    assert site.direct_kinds == []


async def test_curl_uploads_with_its_default_expect_100_continue_are_read_directly(site, tmp_path):
    """curl, a client nobody here wrote, adds ``Expect: 100-continue`` to uploads above 1 MiB and waits for the go-ahead
    (up to a second): the upload is read directly, promptly, whole, twice over one connection."""
    body = os.urandom(3 * zerocopy.BODY_CHUNK_BYTES + 11)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(body)
    done = await asyncio.to_thread(
        subprocess.run,
        [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "-v",
            "--data-binary",
            f"@{upload}",
            f"{site.url}/direct",
            "--next",
            "--data-binary",
            f"@{upload}",
            f"{site.url}/direct",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout == hashlib.sha256(body).hexdigest() * 2
    assert done.stderr.count("Expect: 100-continue") == 2 and done.stderr.count("HTTP/1.1 100 Continue") == 2
    assert "Re-using existing connection" in done.stderr or "Reusing existing connection" in done.stderr
    assert len(site.direct_kinds) == 2 and all(_kinds_are_direct(kinds) for kinds in site.direct_kinds)


async def test_after_a_refusal_and_the_dropped_body_an_idle_connection_still_times_out(tmp_path):
    """uvicorn's keep-alive timer, armed when the refusal was sent and cancelled by the reads of the rest of the
    body, is armed again once the body is dropped: an idle client does not hold the connection for ever."""
    zerocopy.enabled.cache_clear()
    site = Site(tmp_path / "file.bin")
    stop = zerocopy.read_bodies_directly(site, lambda scope: scope["path"].startswith("/direct"))
    try:
        async with serving(site, zerocopy.ZeroCopyHttpToolsProtocol, timeout_keep_alive=1) as served:
            port = int(served.url.rsplit(":", 1)[1])
            body = os.urandom(3 * zerocopy.BODY_CHUNK_BYTES)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /direct/refuse HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
            writer.write(body[:1000])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(body[1000:])
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), 10)  # the server closes the idle connection
            writer.close()
        assert _responses(raw) == [(415, b"application POST /direct/refuse")]
    finally:
        stop()
