"""Parsing received DICOM files outside the server's process.

Reading an instance's header and turning it into DICOM JSON (pydicom) takes about a millisecond of pure Python per
instance, holding the interpreter's lock: a study of 300 slices arriving by STOW-RS would keep the event loop from
receiving, writing and indexing for that long. With ``TELESANTE_DICOM_PARSE_PROCESSES`` ≥ 1 (default 1) the parsing
runs in that many helper processes (a ``forkserver`` pool, started at the first instance and kept for the life of
the server), so that it uses another core while the server goes on. With 0 it runs in the server's worker threads.

The helper receives the file's bytes and sends back a ``ParsedInstance`` (identifiers, index attributes, DICOM JSON
and frame offsets): the same function, the same result, the same refusals (``InvalidDicom`` with its French
message). If a helper dies, the pool is started again and that instance is parsed in a thread. For STOW-RS the
helper also writes the parsed file into the blob store's staging folder (``parse_and_stage``, ``blobs.Stager``)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import anyio

from telesante.imaging.dicom import InvalidDicom, ParsedInstance, parse_instance
from telesante.storage.blobs import Stager

log = logging.getLogger(__name__)

_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()


def _outcome(data: bytes | list[bytes], stager: Stager | None = None) -> tuple[ParsedInstance | None, Any]:
    """In the helper: (the parsed instance, the staged file's name or None), or (None, the refusal's (message,
    field)): exceptions do not cross cleanly. A file is staged only once it is known to be DICOM. ``data`` may come
    in the pieces it was received in: joined here, in the helper, rather than in the server."""
    if not isinstance(data, bytes):
        data = b"".join(data)
    try:
        parsed = parse_instance(data)
    except InvalidDicom as exc:
        return None, (exc.message, exc.field)
    return parsed, _stage(stager, data)


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


def _executor(processes: int) -> ProcessPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != processes:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            # forkserver: helpers are forked from a clean process, never from the server with its threads
            _pool = ProcessPoolExecutor(
                processes,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_follow,
                initargs=(os.getpid(),),
            )
            _pool_size = processes
            _widen_call_pipe(_pool)
        return _pool


_PIPE_BYTES = 1024 * 1024  # Linux's default ceiling for an unprivileged process (/proc/sys/fs/pipe-max-size)


def _widen_call_pipe(pool: ProcessPoolExecutor) -> None:
    """The pipe that carries each file to the helpers holds 64 KiB by default: a 512 KiB slice then crosses in eight
    turns, the server's sending thread and the helper waking each other up each time. Widened to 1 MiB, a slice
    crosses in one write (docs/performance.md: +5 % instances per second, 0.16 ms less processor time per instance).
    Best effort: the pipe belongs to ``concurrent.futures``, and on a system without ``F_SETPIPE_SZ`` (not Linux) or
    with a lower ceiling the pipe simply stays as it is."""
    try:
        import fcntl

        writer = pool._call_queue._writer  # type: ignore[attr-defined]
        fcntl.fcntl(writer.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
    except (AttributeError, OSError, ImportError) as exc:
        log.info("DICOM parsing helpers: pipe left at its default size (%s)", exc)


def _discard(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is broken:
            _pool = None
    broken.shutdown(wait=False, cancel_futures=True)


async def parse(data: bytes, processes: int, limiter: anyio.CapacityLimiter | None = None) -> ParsedInstance:
    """``parse_instance`` in a helper process (``processes`` ≥ 1) or in a worker thread (0); InvalidDicom as there."""
    return (await parse_and_stage(data, processes, limiter, None))[0]


async def parse_and_stage(
    data: bytes | list[bytes], processes: int, limiter: anyio.CapacityLimiter | None, stager: Stager | None
) -> tuple[ParsedInstance, str | None]:
    """``parse`` and, once the file is known to be DICOM, ``stager`` writes it to the store's staging folder in the
    same helper (or thread): the server's process neither copies it again nor waits for the disk. The staged
    file's name, or None (no stager, or the write failed: logged)."""
    if processes < 1:
        outcome = await anyio.to_thread.run_sync(_outcome, data, stager, limiter=limiter)
    else:
        executor = _executor(processes)
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(executor, _outcome, data, stager)
        except BrokenProcessPool:
            log.error("DICOM parsing helper died: pool restarted, this instance parsed in a thread")
            _discard(executor)
            outcome = await anyio.to_thread.run_sync(_outcome, data, stager, limiter=limiter)
    parsed, detail = outcome
    if parsed is None:
        message, field = detail
        raise InvalidDicom(message, field=field)
    return parsed, detail


def shutdown() -> None:
    """Stop the helpers (at the server's shutdown)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
