"""uvicorn's HTTP/1.1 protocol (httptools), plus early answers written straight from the page cache.

A viewer fetches a study's frames one by one: 300 requests of 512 KiB for a head CT. Once the frames route has let
a caller read a study, the next frames need no database, no framework and no copy in Python: ``imaging/fastpath.py``
decides from what it keeps in memory, and the file range is already in the page cache. This protocol asks such an
*early responder* before it starts the ASGI application for a request. When the responder answers (a status 200,
its headers, bytes before and after, and the body as a view of the file mapped in memory,
``FilesystemBlobStore.mapped_if_cached``), the protocol hands the head, the view and the tail to the socket in one
system call (``sendmsg``): the kernel copies the page-cache pages into the socket, in the event loop, without an
asyncio task, without an ASGI message. When it declines (``None``), the request goes to the application unchanged.

Until 2026-12-05 the answer was a file descriptor sent with ``sendfile(2)``: measured side by side on loopback, a
mapped view sent with ``sendmsg`` cost less per frame, and needs no descriptor per answer (docs/performance.md).
Only the kernel ever reads the view (each piece is sent by a system call, never copied into a Python buffer): were
the file cut short under the mapping, the call fails (``EFAULT``) and the connection ends, where a copy in the
process would stop the server (``SIGBUS``). Blobs are never rewritten in place (``storage/blobs.py``).

Never under TLS (uvicorn's TLS runs in Python and would copy), never when ``TELESANTE_ZERO_COPY_SEND`` is off, never
with a uvicorn whose internals differ from what this module was written for (checked at import: the stock protocol
then runs unchanged), never while uvicorn still holds unsent bytes of the connection. The responder must only
answer when the range is in the page cache (the fast path asks ``mincore(2)``), else the copy would wait for the
disk in the event loop. A client that reads slowly is waited for (the loop watches its socket), as uvicorn waits for
its own writes; one that goes away ends the sending.

It also reads large request bodies itself, for the routes that ask (``read_bodies_directly``: STOW-RS, where a
study of 150 MB arrives in one request). uvicorn hands a body on as the ``bytes`` that uvloop made of each read, which
httptools copies again into a new ``bytes`` for the application: measured on loopback with the STOW-RS route's
multipart parser, 0.53–0.67 ms of the server's processor per 512 KiB slice. Once the request's head is parsed, and
when its ``Content-Length`` is at least ``DIRECT_BODY_BYTES``, the protocol gives the connection to a reader of its own
(``asyncio.BufferedProtocol``) until the last byte of the body: the kernel writes the body straight into chunks of
``BODY_CHUNK_BYTES`` (``ReceivedChunk``), each handed to the application once full, as it is: 0.32 ms per slice
(docs/performance.md). Then the connection goes back to uvicorn's protocol, with a fresh parser, for the next request.
The application receives the same ASGI messages (a ``bytearray`` is a bytes-like body), one chunk at a time: reading
pauses while a chunk waits for the application, as uvicorn's own flow control does. A client that asked to be told
to go on (``Expect: 100-continue``, curl's default for bodies above 1 MiB) is told when the application first reads,
as uvicorn tells it. Never with a chunked body or a pipelined request (uvicorn reads those as before)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

try:
    import httptools
    from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
    from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string
except ImportError:  # httptools missing: uvicorn serves with h11, and nothing here is used
    HttpToolsProtocol = RequestResponseCycle = httptools = None  # type: ignore[assignment,misc]
    STATUS_LINE = {}
    HIGH_WATER_LIMIT = 65536

_CYCLE_ATTRIBUTES = (
    "scope",
    "body",
    "keep_alive",
    "response_started",
    "response_complete",
    "message_event",
    "on_response",
)
_PROTOCOL_ATTRIBUTES = (
    "_start_asgi_task",
    "on_response_complete",
    "connection_made",
    "connection_lost",
    "on_body",
    "_should_upgrade",
    "on_headers_complete",
    "data_received",
    "pause_writing",
    "resume_writing",
    "_unset_keepalive_if_required",
    "timeout_keep_alive_handler",
)


def _compatible() -> bool:
    """This uvicorn's protocol has what the subclass relies on (its internals are not a public API)."""
    if HttpToolsProtocol is None or not hasattr(socket.socket, "sendmsg"):
        return False
    if not all(hasattr(HttpToolsProtocol, name) for name in _PROTOCOL_ATTRIBUTES) or 200 not in STATUS_LINE:
        return False
    assigned = RequestResponseCycle.__init__.__code__.co_names
    made = HttpToolsProtocol.__init__.__code__.co_names
    receiving = RequestResponseCycle.receive.__code__.co_names
    return (
        all(name in assigned for name in _CYCLE_ATTRIBUTES)
        and all(
            name in assigned
            for name in ("more_body", "disconnected", "flow", "transport", "waiting_for_100_continue")
        )
        and all(name in made for name in ("flow", "parser", "pipeline", "timeout_keep_alive", "loop"))
        and "receive" in RequestResponseCycle.run_asgi.__code__.co_names
        and all(
            name in receiving
            for name in ("message_event", "body", "more_body", "disconnected", "waiting_for_100_continue")
        )
    )


COMPATIBLE = _compatible()


@functools.cache
def enabled() -> bool:
    """Whether connections ask early responders (read once; ``enabled.cache_clear()`` reads the setting again)."""
    from telesante.config import get_settings

    return COMPATIBLE and get_settings().zero_copy_send


@dataclass(frozen=True, slots=True)
class Answer:
    """A 200 response: ``before``, then ``body`` (a view of a mapped file's range, or any bytes-like object), then
    ``after``. The view is held until it is sent."""

    fields: bytes  # header fields, each "name: value\r\n", without Content-Length (the protocol adds it)
    before: bytes
    body: bytes | memoryview
    after: bytes


Responder = Callable[[dict], Answer | None]
_responders: dict[int, Responder] = {}  # id(ASGI application) → its responder

# a body from this size is read by the protocol itself, on the routes that ask
DIRECT_BODY_BYTES = 1024 * 1024
BODY_CHUNK_BYTES = 1024 * 1024  # what the application receives at a time, then


class ReceivedChunk(bytearray):
    """A piece of a request body, written by the kernel straight into this buffer and handed to the application once
    full. Nothing writes it again while anything refers to it (``_new_chunk``): its memory may be lent as a ``bytes``
    object's would (``imaging/parsing.py``), provided the borrower holds a reference until it is done."""


SPARE_CHUNKS = 24  # full-size chunks kept to be written again once nothing refers to them (24 MiB at most)
_chunks: list[ReceivedChunk] = []


def _unreferenced() -> int:
    """What ``sys.getrefcount`` gives, in ``_new_chunk``'s loop, for a chunk that nothing else refers to: measured
    with the same code rather than assumed (interpreters count differently, e.g. borrowed references on the stack)."""
    probe = [ReceivedChunk(1)]
    for chunk in probe:
        return sys.getrefcount(chunk)
    return 0


_UNREFERENCED = _unreferenced()


def _new_chunk(size: int) -> ReceivedChunk:
    """A chunk to receive into. A full-size one is taken from those handed on earlier that nothing refers to any more
    (no view, no parsed part, no pipe they were lent to: the parsing helper's answer releases those): a new
    ``bytearray`` is zeroed by Python and its pages faulted in by the kernel, about an eighth of the event loop's
    samples during a STOW-RS load here (py-spy). Reused only when unreachable from anywhere else, so nothing can see it
    written again."""
    if size == BODY_CHUNK_BYTES:
        for chunk in _chunks:
            if sys.getrefcount(chunk) == _UNREFERENCED:  # only the list, this loop and the call: nobody else
                return chunk
        chunk = ReceivedChunk(size)
        if len(_chunks) < SPARE_CHUNKS:
            _chunks.append(chunk)
        return chunk
    return ReceivedChunk(size)


Wants = Callable[[dict], bool]
_direct_readers: dict[int, Wants] = {}  # id(ASGI application) → which requests' bodies to read directly


def read_bodies_directly(app: Any, wants: Wants) -> Callable[[], None]:
    """Let this protocol read the large bodies of the requests to ``app`` for which ``wants(scope)`` is true (called
    in the event loop with the request's scope, once its head is parsed: it must not block nor raise). Returns what
    removes it."""
    _direct_readers[id(app)] = wants
    return lambda: _direct_readers.pop(id(app), None)


def answer_early(app: Any, responder: Responder) -> Callable[[], None]:
    """Let ``responder`` answer requests to ``app`` before the application runs, on connections served by this
    protocol. Returns what removes it. It is called in the event loop with the request's ASGI scope (type,
    method, path, query string, headers): it must not block, and must not raise (an error is logged and the
    request goes to the application)."""
    _responders[id(app)] = responder
    return lambda: _responders.pop(id(app), None)


_defaults: tuple[object, bytes] = (None, b"")


def _status_and_defaults(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The status line and uvicorn's default header fields (Date, Server), as bytes: uvicorn replaces its list every
    second (the date), so the bytes are made again only then."""
    global _defaults
    if _defaults[0] is not default_headers:
        fields = b"".join(name + b": " + value + b"\r\n" for name, value in default_headers)
        _defaults = (default_headers, STATUS_LINE[200] + fields)
    return _defaults[1]


def _registered_for(app: Any, registry: dict[int, Any]) -> Any:
    for _ in range(8):  # uvicorn wraps the application in its own middleware (proxy headers, message logger…)
        found = registry.get(id(app))
        if found is not None or not hasattr(app, "app"):
            return found
        app = app.app
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body's length when it is announced once, and not chunked; else None."""
    lengths = []
    for name, value in headers:
        if name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            return None
    if len(lengths) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 15:
        return None
    return int(lengths[0])


class ZeroCopyHttpToolsProtocol(HttpToolsProtocol if COMPATIBLE else object):  # type: ignore[misc]
    """uvicorn's httptools protocol; give it to uvicorn as ``http=`` (``--http telesante.web.zerocopy:…``)."""

    _socket: socket.socket | None = None
    _waiter: asyncio.Future | None = None
    _responder: Responder | None = None
    _wants: Wants | None = None
    _taking: Any = None  # the request whose body this protocol reads itself once the data in hand is parsed
    _expected = 0  # that body's length
    _parsed = 0  # how much of it httptools has parsed

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if (
            self.scheme == "http"  # under TLS the kernel would send the file in clear
            and sock is not None
            and sock.family in (socket.AF_INET, socket.AF_INET6)
            and enabled()
        ):
            self._responder = _registered_for(self.app, _responders)
            self._wants = _registered_for(self.app, _direct_readers)

    def on_headers_complete(self) -> None:
        previous = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if (
            self._wants is None
            or cycle is previous
            or cycle is None
            or self.pipeline  # queued behind a response in progress: read by uvicorn
        ):
            return
        length = _content_length(cycle.scope["headers"])
        if length is None or length < DIRECT_BODY_BYTES:
            return
        try:
            wanted = self._wants(cycle.scope)
        except Exception:  # the route's fault: uvicorn reads the body
            log.exception("direct body reading: the route's choice failed")
            return
        if wanted:
            self._taking, self._expected, self._parsed = cycle, length, 0
            cycle.receive = functools.partial(_receive_direct, cycle)  # looked up when the ASGI task starts

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        cycle, self._taking = self._taking, None
        if cycle is None or cycle is not self.cycle or not cycle.more_body or self.transport.is_closing():
            return
        remaining = self._expected - self._parsed
        if remaining <= 0:
            return
        if cycle.body:
            # what httptools passed on with the head waits for the application: no more until it is taken
            self.flow.pause_reading()
        _switch(self.transport, _BodyReader(self, cycle, remaining))

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        super().connection_lost(exc)

    def on_body(self, body: bytes) -> None:
        """A piece of a request's body. uvicorn appends each piece to a ``bytearray`` and its ``receive`` copies
        that into ``bytes``: two copies of every byte received, 30 MiB for a 15 MiB STOW-RS request. When nothing
        waits, the piece itself is kept instead, and ``receive`` hands it on as it is (``bytes(b)`` is ``b``); a
        piece arriving behind others goes uvicorn's way, into a ``bytearray`` (appending to ``bytes`` would copy
        all that waits at each piece: quadratic for a body sent in many small chunks)."""
        cycle = self.cycle
        if cycle is self._taking:
            self._parsed += len(body)
        if cycle.body or cycle.response_complete or (self.parser.should_upgrade() and self._should_upgrade()):
            if type(cycle.body) is bytes:
                cycle.body = bytearray(cycle.body)
            super().on_body(body)
            return
        cycle.body = body
        if len(body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if (
            self._responder is not None
            and app is self.app  # else uvicorn answers 503 (its concurrency limit)
            and cycle.scope["method"] == "GET"
            and not self.expect_100_continue
        ):
            try:
                answer = self._responder(cycle.scope)
            except Exception:  # a responder's fault: the application answers instead
                log.exception("early responder failed")
                answer = None
            if (
                answer is not None
                and self.transport.get_write_buffer_size() == 0
                and not self.transport.is_closing()
            ):
                self._answer(cycle, answer)
                return
        super()._start_asgi_task(cycle, app)

    def _answer(self, cycle: Any, answer: Answer) -> None:
        length = len(answer.before) + len(answer.body) + len(answer.after)
        head = [
            _status_and_defaults(self.server_state.default_headers),
            answer.fields,
            b"content-length: %d\r\n" % length,
        ]
        if not cycle.keep_alive:
            head.append(b"connection: close\r\n")
        head += (b"\r\n", answer.before)
        if self.access_log:  # as uvicorn logs what the application answers
            scope = cycle.scope
            self.access_logger.info(
                '%s - "GET %s HTTP/%s" 200',
                get_client_addr(scope),
                get_path_with_query_string(scope),
                scope["http_version"],
            )
        cycle.response_started = True
        job = [memoryview(b"".join(head)), memoryview(answer.body), memoryview(answer.after)]
        try:
            done = self._push(job)  # usually all of it: the socket's buffer takes a frame at once
        except OSError:  # the client went away (or the file was cut short under the mapping: EFAULT)
            self.transport.close()
            return
        if done:
            self._complete(cycle)
            return
        task = self.loop.create_task(self._finish(cycle, job))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _push(self, job: list[memoryview]) -> bool:
        """Send what the client's socket takes now (head, body and tail in one ``sendmsg``, then what is left): True
        once everything is sent. OSError if the client went away."""
        sock = self._socket
        if sock is None:  # a descriptor of our own for the socket: the loop watches it apart from uvicorn's
            sock = self._socket = socket.socket(
                fileno=os.dup(self.transport.get_extra_info("socket").fileno())
            )
            sock.setblocking(False)
        try:
            while job:
                sent = sock.sendmsg(job)
                while job and sent >= len(job[0]):
                    sent -= len(job.pop(0))
                if job and sent:
                    job[0] = job[0][sent:]
        except BlockingIOError:
            return False
        return True

    async def _finish(self, cycle: Any, job: list[memoryview]) -> None:
        try:
            while not self._push(job):
                await self._writable()
        except OSError:  # the client went away (reset, broken pipe, lost while waiting)
            self.transport.close()
            return
        finally:
            job.clear()  # the views let go: the mapping can be undone
        self._complete(cycle)

    def _complete(self, cycle: Any) -> None:
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.transport.close()
        cycle.on_response()

    async def _writable(self) -> None:
        """Until the client's socket takes data again (or the connection is lost)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        fd = self._socket.fileno()

        def ready() -> None:
            if not waiter.done():
                waiter.set_result(None)

        loop.add_writer(fd, ready)
        try:
            await waiter
        finally:
            self._waiter = None
            if self._socket is not None:
                loop.remove_writer(fd)

    def _release(self) -> None:
        sock, self._socket = self._socket, None
        if sock is None:
            return
        self.loop.remove_writer(sock.fileno())
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionResetError("connection lost"))
        sock.close()


async def _receive_direct(cycle: Any) -> dict:
    """uvicorn's ``receive`` for a body read directly, without its copy of every body into a new ``bytes``: a
    received chunk is handed on as it is. As uvicorn's, the first call tells a client that asked (``Expect:
    100-continue``, curl's default above 1 MiB) to send the body; an answer sent before it never does
    (``waiting_for_100_continue`` is then off), and the client chooses to send the body (read and dropped) or to close."""
    if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
        cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        cycle.waiting_for_100_continue = False
    if not cycle.disconnected and not cycle.response_complete:
        cycle.flow.resume_reading()
        await cycle.message_event.wait()
        cycle.message_event.clear()
    if cycle.disconnected or cycle.response_complete:
        return {"type": "http.disconnect"}
    body = cycle.body
    cycle.body = b""
    return {
        "type": "http.request",
        "body": body if type(body) is ReceivedChunk else bytes(body),
        "more_body": cycle.more_body,
    }


def _switch(transport: Any, protocol: Any) -> None:
    """Give the connection to ``protocol``. uvloop chooses how it reads (into its own buffer, or into the protocol's)
    when reading starts: reading is restarted if it is on."""
    transport.set_protocol(protocol)
    if transport.is_reading():
        transport.pause_reading()
        transport.resume_reading()


class _BodyReader(asyncio.BufferedProtocol):
    """The connection while the rest of a large body arrives: the kernel writes it into ``ReceivedChunk`` buffers,
    each handed to the request's cycle once full (and reading paused until the application takes it); after the last
    byte the connection goes back to the HTTP protocol, with a fresh parser. Never reads past the body: a pipelined
    request behind it is left to the HTTP protocol."""

    def __init__(self, http: ZeroCopyHttpToolsProtocol, cycle: Any, remaining: int):
        self.http, self.cycle, self.remaining = http, cycle, remaining
        self.chunk: ReceivedChunk | None = None
        self.filled = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.chunk is None:
            self.chunk, self.filled = _new_chunk(min(BODY_CHUNK_BYTES, self.remaining)), 0
        return memoryview(self.chunk)[self.filled :]

    def buffer_updated(self, nbytes: int) -> None:
        http, cycle = self.http, self.cycle
        http._unset_keepalive_if_required()
        self.filled += nbytes
        self.remaining -= nbytes
        if self.chunk is None or self.filled < len(self.chunk):
            return
        chunk, self.chunk = self.chunk, None
        last = self.remaining <= 0
        if last:
            # the next request is uvicorn's: a parser that has not seen this body's bytes
            http.parser = httptools.HttpRequestParser(http)
            with contextlib.suppress(AttributeError):  # as uvicorn sets it up (httptools ≥ 0.6.3)
                http.parser.set_dangerous_leniencies(lenient_data_after_close=True)
            _switch(http.transport, http)
            if cycle.response_complete and not http.pipeline and not http.transport.is_closing():
                # answered before the body ended: the reads since cancelled the keep-alive timer uvicorn armed then
                http._unset_keepalive_if_required()
                http.timeout_keep_alive_task = http.loop.call_later(
                    http.timeout_keep_alive, http.timeout_keep_alive_handler
                )
        if cycle.response_complete or cycle.disconnected:
            return  # answered without reading it all (a refusal): the rest of the body is read and dropped
        cycle.body = chunk
        if last:
            cycle.more_body = False
        else:
            http.flow.pause_reading()  # until the application takes this chunk (its receive resumes reading)
        cycle.message_event.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.http.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return None  # the client stopped sending mid-body: the connection closes (connection_lost follows)

    def pause_writing(self) -> None:
        self.http.pause_writing()

    def resume_writing(self) -> None:
        self.http.resume_writing()


def protocol() -> type | str:
    """What ``uvicorn.run(http=…)`` should get: this protocol when it can work, else uvicorn's own choice."""
    if HttpToolsProtocol is None:
        return "auto"
    if not COMPATIBLE:
        log.warning("frames sent by the kernel: off, this uvicorn's HTTP protocol is not the one expected")
        return "auto"
    return ZeroCopyHttpToolsProtocol
