"""Parsing received DICOM files outside the server's process.

Reading an instance's header and turning it into DICOM JSON (pydicom) takes about a millisecond of pure Python per
instance, holding the interpreter's lock: a study of 300 slices arriving by STOW-RS would keep the event loop from
receiving, writing and indexing for that long. With ``TELESANTE_DICOM_PARSE_PROCESSES`` ≥ 1 (default 2) the parsing
runs in that many helper processes (forked from a ``forkserver``, started at the first instance and kept for the
life of the server), so that it uses the other cores while the server goes on. With 0 it runs in the server's worker
threads.

Each helper has two pipes, driven by the server's event loop (no thread in the server): the server writes a request
(a small header, then the file's bytes as received, in pieces, never joined or pickled in the server) and the helper
answers, in order, with a ``ParsedInstance`` (identifiers, index attributes, DICOM JSON as text, frame offsets) or
the refusal: the same function, the same result, the same refusals (``InvalidDicom`` with its French message) as in
a thread. ``concurrent.futures.ProcessPoolExecutor``, used until 2026-12-05, spent a fifth of the server's processor
time in its two threads (pickling each file into a buffer, then the results) and in waking them (docs/performance.md).
For STOW-RS the helper also writes the parsed file into the blob store's staging folder (``parse_and_stage``,
``blobs.Stager``), in its writer thread while it parses the next file (since 2026-12-05 15:08 UTC: +5 % STOW-RS
side by side, 428 against 408 inst/s over 12 studies).

If a helper dies, the instances it held are parsed in a thread and a new helper takes its place. A helper ends when
its request pipe closes (the server's shutdown) or when the server is gone (killed without a shutdown)."""

from __future__ import annotations

import asyncio
import collections
import ctypes
import errno
import logging
import multiprocessing
import os
import pickle
import queue
import struct
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import anyio

from telesante.imaging.dicom import InvalidDicom, ParsedInstance, parse_instance
from telesante.storage.blobs import Stager
from telesante.web.zerocopy import ReceivedChunk

log = logging.getLogger(__name__)

_REQUEST = struct.Struct("<IQ")  # the request's header length (pickled stager), then the file's length
_ANSWER = struct.Struct("<I")  # the answer's length (pickled outcome)
_PIPE_BYTES = 1024 * 1024  # Linux's default ceiling for an unprivileged process (/proc/sys/fs/pipe-max-size)
_LEND_BYTES = 64 * 1024  # pieces from this size are lent to the pipe (vmsplice) rather than copied into it
_SPLICE_F_NONBLOCK = 2  # never wait for room in the pipe: the event loop must not block


class _IoVec(ctypes.Structure):
    _fields_ = (("base", ctypes.c_void_p), ("length", ctypes.c_size_t))


try:
    _vmsplice: Any = ctypes.CDLL(None, use_errno=True).vmsplice
    _vmsplice.argtypes = (ctypes.c_int, ctypes.POINTER(_IoVec), ctypes.c_size_t, ctypes.c_uint)
    _vmsplice.restype = ctypes.c_ssize_t
except (OSError, AttributeError):  # not Linux: every piece is copied into the pipe
    _vmsplice = None


def _lendable(piece: Any) -> bool:
    """Memory that never changes: a ``bytes`` object, or a view of a body chunk the HTTP protocol received
    (``zerocopy.ReceivedChunk``, not written again while anything refers to it: the request holds its pieces
    until the helper has answered, ``_Helper.waiting``)."""
    return type(piece) is bytes or (type(piece) is memoryview and type(piece.obj) is ReceivedChunk)


def _lend(fd: int, piece: bytes | memoryview) -> int:
    """Lend ``piece``'s memory to the pipe (``vmsplice(2)`` without a gift: the pipe refers to the pages, the reader
    copies from them): the bytes it took, 0 if it took none (full, or refused). The caller keeps ``piece`` alive and
    unchanged until the reader has read it (``_lendable``)."""
    if type(piece) is bytes:
        address = ctypes.cast(ctypes.c_char_p(piece), ctypes.c_void_p)
    else:  # a view of a received chunk (writable, as a bytearray is)
        address = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(piece)))
    vector = _IoVec(address, len(piece))
    lent = _vmsplice(fd, ctypes.byref(vector), 1, _SPLICE_F_NONBLOCK)
    if lent < 0:
        if ctypes.get_errno() not in (errno.EAGAIN, errno.EINTR):
            global _vmsplice_works
            _vmsplice_works = False  # e.g. filtered by a sandbox: copied from now on
        return 0
    return lent


_vmsplice_works = _vmsplice is not None


def _outcome(data: bytes | list[bytes], stager: Stager | None = None) -> tuple[ParsedInstance | None, Any]:
    """In the helper: (the parsed instance, the staged file's name or None), or (None, the refusal's (message,
    field)): exceptions do not cross cleanly. A file is staged only once it is known to be DICOM. ``data`` may come
    in the pieces it was received in: joined here, in the helper, rather than in the server."""
    if not isinstance(data, bytes):
        data = b"".join(data)
    parsed, refusal = _parse_only(data)
    return (parsed, _stage(stager, data)) if parsed is not None else (None, refusal)


def _parse_only(data: bytes) -> tuple[ParsedInstance | None, tuple[str, str | None] | None]:
    """(the parsed instance, None) or (None, the refusal's (message, field))."""
    try:
        return parse_instance(data), None
    except InvalidDicom as exc:
        return None, (exc.message, exc.field)


def _stage(stager: Stager | None, data: bytes) -> str | None:
    if stager is None:
        return None
    try:
        return stager(data)
    except OSError:  # the batch writes the bytes at their key instead, and reports a lasting failure
        log.warning("staging a received instance failed", exc_info=True)
        return None


def _gone(pid: int) -> bool:
    """The process has ended: absent, or a zombie its parent has not reaped yet (Linux /proc; elsewhere kill 0)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return not Path("/proc/self").exists() and not _signalable(pid)
    except (OSError, IndexError):  # pragma: no cover - unreadable: ask the kernel
        return not _signalable(pid)


def _signalable(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - the pid was reused by another user's process
        return False
    return True


def _follow(server_pid: int) -> None:
    """In each helper: end when the server is gone, even killed without a shutdown (else the helper and the fork
    server, which still hold each other's pipes, would stay behind)."""

    def watch() -> None:
        while not _gone(server_pid):
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="follow-server", daemon=True).start()


def _serve(requests: Connection, answers: Connection, server_pid: int) -> None:
    """A helper's life: read a request, parse it, hand it on; until the request pipe closes. The staging write and
    the answer are left to one writer thread, in order (``_stage_and_answer``): a staged file is written with direct
    I/O, which waits for the disk (about half a millisecond for a slice), and the next instance is parsed meanwhile
    (the write releases the interpreter's lock). At most two parsed instances wait for the writer."""
    _follow(server_pid)
    inbox = requests.fileno()
    parsed: queue.Queue[tuple[Any, bytes | None, Stager | None] | None] = queue.Queue(maxsize=2)
    writer = threading.Thread(
        target=_stage_and_answer, args=(parsed, answers.fileno()), name="stage-writer", daemon=True
    )
    writer.start()
    while True:
        try:
            head = _read_exactly(inbox, _REQUEST.size)
        except EOFError:  # the server closed the pipe (its shutdown): what is in hand is answered first
            parsed.put(None)
            writer.join()
            os._exit(0)
        header_length, length = _REQUEST.unpack(head)
        stager = pickle.loads(_read_exactly(inbox, header_length))  # noqa: S301 - from the server that forked us
        data = _read_exactly(inbox, length)
        try:
            parsed.put((_parse_only(data), data, stager))
        except BaseException:  # noqa: BLE001 - a bug: told to the server, which parses this one in a thread
            parsed.put((("error", traceback.format_exc()[-2000:]), None, None))


def _stage_and_answer(parsed: queue.Queue, outbox: int) -> None:
    """The helper's writer thread: each parsed instance staged (once known to be DICOM), then answered, in the order
    the requests came."""
    while (item := parsed.get()) is not None:
        outcome, data, stager = item
        try:
            if data is not None and outcome[0] is not None:
                outcome = (outcome[0], _stage(stager, data))
            payload = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: BLE001 - as in _serve
            payload = pickle.dumps(
                ("error", traceback.format_exc()[-2000:]), protocol=pickle.HIGHEST_PROTOCOL
            )
        try:
            _write_all(outbox, _ANSWER.pack(len(payload)) + payload)
        except OSError:  # the server is gone: nobody to answer
            return


def _read_exactly(fd: int, length: int) -> bytes:
    """``length`` bytes from the pipe. A slice usually lies whole in the pipe (1 MiB) and comes in one read, as the
    ``bytes`` it is used as: no buffer to clear, no copy; several reads are joined."""
    pieces, missing = [], length
    while missing:
        piece = os.read(fd, missing)
        if not piece:
            raise EOFError
        pieces.append(piece)
        missing -= len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)  # none: an empty part


def _write_all(fd: int, data: bytes) -> None:
    view, done = memoryview(data), 0
    while done < len(data):
        done += os.write(fd, view[done:])


def _widen(fd: int) -> None:
    """A pipe holds 64 KiB by default: a 512 KiB slice would cross in eight turns, the server and the helper waking
    each other up each time. Widened to 1 MiB, a slice crosses in one write. Best effort: on a system without
    ``F_SETPIPE_SZ`` (not Linux) or with a lower ceiling the pipe stays as it is."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (AttributeError, OSError, ImportError) as exc:
        log.info("DICOM parsing helper: pipe left at its default size (%s)", exc)


class _Gone(Exception):
    """The helper ended (or failed) with this instance in its hands."""


class _Answers(asyncio.Protocol):
    """The server's end of a helper's answer pipe: each whole answer settles the oldest waiting request."""

    def __init__(self, helper: _Helper):
        self.helper = helper
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        while len(buffer) >= _ANSWER.size:
            (length,) = _ANSWER.unpack_from(buffer)
            end = _ANSWER.size + length
            if len(buffer) < end:
                return
            answer = pickle.loads(buffer[_ANSWER.size : end])  # noqa: S301 - from our own helper
            del buffer[:end]
            if self.helper.waiting:
                # the helper read the whole request before answering: the pieces lent to the pipe are let go here
                waiter, _lent = self.helper.waiting.popleft()
                if not waiter.done():
                    waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.helper.lost()


class _Helper:
    """One helper process and the server's ends of its two pipes, on one event loop."""

    def __init__(self, pool: _Pool):
        self.pool = pool
        # each request's answer to come, with the pieces lent to the pipe for it (held until the helper answered or
        # ended, even if the caller stopped waiting: the pipe refers to their pages)
        self.waiting: collections.deque[tuple[asyncio.Future, list[Any]]] = collections.deque()
        self.process: Any = None
        self.requests: Connection | None = None
        self.answers: Connection | None = None
        self.writer: asyncio.WriteTransport | None = None
        self.reader: asyncio.ReadTransport | None = None
        self.alive = False

    async def start(self, loop: asyncio.AbstractEventLoop) -> None:
        # forked from a clean process (the fork server), never from the server with its threads
        context = multiprocessing.get_context("forkserver")
        their_requests, self.requests = context.Pipe(duplex=False)
        self.answers, their_answers = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_serve, args=(their_requests, their_answers, os.getpid()), name="dicom-parse", daemon=True
        )
        try:
            try:
                await asyncio.to_thread(self.process.start)  # a round trip to the fork server
            finally:
                their_requests.close()  # the helper's ends: its exit then reads as the end of our pipes
                their_answers.close()
            _widen(self.requests.fileno())
            self.writer, _ = await loop.connect_write_pipe(asyncio.Protocol, self.requests)
            self.reader, _ = await loop.connect_read_pipe(lambda: _Answers(self), self.answers)
        except BaseException:
            if self.writer is not None:
                self.writer.close()
            elif self.requests is not None:
                self.requests.close()
            if self.reader is None and self.answers is not None:
                self.answers.close()
            if self.process.pid is not None:
                self.process.terminate()
            raise
        self.alive = True

    def send(
        self, loop: asyncio.AbstractEventLoop, data: bytes | list[bytes], stager: Stager | None
    ) -> asyncio.Future:
        pieces = [data] if isinstance(data, bytes) else data
        header = pickle.dumps(stager, protocol=pickle.HIGHEST_PROTOCOL)
        waiter = loop.create_future()
        held: list[Any] = []
        self.waiting.append((waiter, held))
        assert self.writer is not None
        writer = self.writer
        writer.write(_REQUEST.pack(len(header), sum(map(len, pieces))) + header)
        fd = self.requests.fileno()
        for piece in pieces:
            # Lent to the pipe when nothing waits in the transport (else the order would change): the server's
            # process does not copy the piece, the helper's read does (the one copy there was in either case).
            if (
                _vmsplice_works
                and _lendable(piece)
                and len(piece) >= _LEND_BYTES
                and not writer.get_write_buffer_size()
            ):
                lent = _lend(fd, piece)
                if lent:
                    held.append(piece)
                    if lent == len(piece):
                        continue
                    piece = memoryview(piece)[lent:]
            writer.write(piece)  # straight into the pipe; kept by the transport only if the pipe is full
        return waiter

    def lost(self) -> None:
        """The answer pipe closed: the helper ended. What it held is parsed in a thread; a new one is started."""
        self.alive = False
        if self in self.pool.helpers:
            self.pool.helpers.remove(self)
        if self.writer is not None:
            self.writer.close()
        while self.waiting:
            waiter, _lent = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(_Gone())

    def end(self, *, wait: float) -> None:
        """Blocking: the helper is ended if it has not ended on its own within ``wait`` seconds. Its pipes are closed
        here only if their event loop is closed (a test's); a live loop closes them itself when the helper's answer
        pipe reaches its end (``lost``): closing them behind its back would leave it watching reused numbers."""
        self.alive = False
        if self.process is not None:
            self.process.join(wait)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(5)
        if self.pool.loop.is_closed():
            for end in (self.requests, self.answers):
                if end is not None:
                    end.close()


class _Pool:
    def __init__(self, loop: asyncio.AbstractEventLoop, size: int):
        self.loop, self.size = loop, size
        self.helpers: list[_Helper] = []
        self._starting: asyncio.Lock = asyncio.Lock()

    async def helper(self) -> _Helper:
        """The helper with the fewest instances in hand; the pool is filled up first (after a death too)."""
        if len(self.helpers) < self.size:
            async with self._starting:
                while len(self.helpers) < self.size:
                    helper = _Helper(self)
                    await helper.start(self.loop)
                    self.helpers.append(helper)
        return min(self.helpers, key=lambda helper: len(helper.waiting))


_pool: _Pool | None = None


async def _current_pool(processes: int) -> _Pool:
    global _pool
    loop = asyncio.get_running_loop()
    if _pool is None or _pool.loop is not loop or _pool.size != processes:
        old, _pool = _pool, _Pool(loop, processes)
        if old is not None and old.loop is loop:
            await _close(old)  # another size: its helpers finish what they hold and end
        elif old is not None:
            await asyncio.to_thread(_stop_all, old)  # another event loop (tests): not usable from this one
    return _pool


def _stop_all(pool: _Pool) -> None:
    for helper in list(pool.helpers):
        helper.end(wait=0)
    pool.helpers.clear()


async def parse(data: bytes, processes: int, limiter: anyio.CapacityLimiter | None = None) -> ParsedInstance:
    """``parse_instance`` in a helper process (``processes`` ≥ 1) or in a worker thread (0); InvalidDicom as there."""
    return (await parse_and_stage(data, processes, limiter, None))[0]


async def parse_and_stage(
    data: bytes | list[bytes], processes: int, limiter: anyio.CapacityLimiter | None, stager: Stager | None
) -> tuple[ParsedInstance, str | None]:
    """``parse`` and, once the file is known to be DICOM, ``stager`` writes it to the store's staging folder in the
    same helper (or thread): the server's process neither copies it again nor waits for the disk. The staged
    file's name, or None (no stager, or the write failed: logged)."""
    outcome: Any = None
    if processes >= 1:
        try:
            pool = await _current_pool(processes)
            outcome = await (await pool.helper()).send(pool.loop, data, stager)
        except _Gone:
            log.error("DICOM parsing helper died: a new one is started, this instance is parsed in a thread")
        except (OSError, EOFError):
            log.exception("DICOM parsing helper could not be started: this instance is parsed in a thread")
        if isinstance(outcome, tuple) and outcome and outcome[0] == "error":
            log.error("DICOM parsing helper failed, this instance is parsed in a thread: %s", outcome[1])
            outcome = None
    if outcome is None:
        outcome = await anyio.to_thread.run_sync(_outcome, data, stager, limiter=limiter)
    parsed, detail = outcome
    if parsed is None:
        message, field = detail
        raise InvalidDicom(message, field=field)
    return parsed, detail


async def aclose() -> None:
    """Stop the helpers (at the server's shutdown): their request pipes are closed, they end on their own."""
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        await _close(pool)


async def _close(pool: _Pool) -> None:
    """The request pipes closed: each helper answers what it holds, then ends (its answer pipe closes, and
    ``lost`` settles anything left); waited for in a thread, ended by force after 5 s."""
    helpers = list(pool.helpers)
    for helper in helpers:
        if helper.writer is not None:
            helper.writer.close()
    await asyncio.to_thread(_join_all, helpers)


def _join_all(helpers: list[_Helper]) -> None:
    for helper in helpers:
        helper.end(wait=5)


def shutdown() -> None:
    """Stop the helpers from synchronous code (tests): ended at once; their pipes follow (see ``_Helper.end``)."""
    global _pool
    pool, _pool = _pool, None
    if pool is not None:
        _stop_all(pool)
