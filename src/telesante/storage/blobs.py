"""Where file contents live: a ``BlobStore`` keyed by opaque keys such as ``sha256/ab/cd/<hex>``.

Two backends share one key layout, so a data directory can be copied into a bucket (``aws s3 sync``, ``rclone``)
when an installation scales out:

- ``FilesystemBlobStore`` (default): ``<TELESANTE_DATA_DIR>/blobs/<key>``, atomic writes (temporary file in the
  same directory, ``fsync``, ``rename``, ``fsync`` of the folder and of the parent of any folder made), files
  ``0600`` and directories ``0700``. Files of 64 KiB to 16 MiB (a DICOM slice, a PDF) are written with direct I/O
  (``O_DIRECT``) where the file system allows it: see ``_write_direct``. Files staged before their key is known
  (``Stager``) are flushed early by one background thread per process (``_EarlyFlusher``); the batch that moves
  them under their keys still flushes each one first.
- ``S3BlobStore``: any S3-compatible object store (AWS, MinIO, Ceph RGW, Scaleway, OVHcloud…) through boto3, whose
  blocking calls run in a worker thread.

Keys are chosen by code, never by users; both backends still refuse any key that could leave their root.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import mmap
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from telesante.kit.errors import DomainError, NotFound

if TYPE_CHECKING:
    from telesante.config import Settings

log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 512
# Segments of letters, digits, '.', '_' and '-' that do not start with a dot: no '..', no hidden or temporary
# file names (the filesystem backend writes ``.tmp-*`` files next to the blobs), no absolute paths, no backslash.
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
_MISSING = "Fichier introuvable dans le stockage."


class InvalidBlobKey(ValueError):
    """A key that is empty, too long, or could escape the store's root (a programming error, not user input)."""


class StorageUnavailable(DomainError):
    status_code = 503
    code = "stockage-indisponible"
    title = "Stockage indisponible"

    def __init__(
        self, message: str = "Le stockage des fichiers est momentanément indisponible.", **kwargs: Any
    ):
        super().__init__(message, **kwargs)


def validate_key(key: str) -> list[str]:
    """The key's segments, or ``InvalidBlobKey`` when it is not a plain relative path of safe segments."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidBlobKey(f"invalid blob key: {key!r}")
    segments = key.split("/")
    if not all(_SEGMENT.fullmatch(segment) for segment in segments):
        raise InvalidBlobKey(f"invalid blob key: {key!r}")
    return segments


@runtime_checkable
class BlobStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` (replacing any previous content), all or nothing."""

    async def get(self, key: str) -> bytes:
        """The content under ``key``; ``NotFound`` (French message) when there is none."""

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes of the content under ``key`` from ``offset`` (a DICOM frame inside its file)."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; deleting a missing key is not an error."""

    async def exists(self, key: str) -> bool: ...

    async def put_if_absent(self, key: str, data: bytes, content_type: str) -> bool:
        """Store ``data`` under ``key`` unless something is already there; True when it was written now."""

    async def put_many_if_absent(
        self, items: list[tuple[str, bytes, str]], staged: list[StagedFile | None] | None = None
    ) -> list[bool]:
        """``put_if_absent`` for (key, data, content type) items, all durable when it returns. ``staged``, beside
        the items: what ``stage`` wrote of each beforehand (None: nothing), moved under its key instead of being
        written again, or removed when the key already exists."""

    def stager(self) -> Stager | None:
        """What writes a content ahead of time, before its key is known (a STOW-RS part as soon as it is parsed,
        while the rest of the body still arrives): None when this store has nothing to gain from it (S3 sends the
        bytes at ``put``). What is staged ends in ``put_many_if_absent`` or ``discard``."""

    async def discard(self, staged: list[StagedFile | None]) -> None:
        """Remove what a ``stager`` wrote and nothing has used."""


class StagedFile:
    """A content written under a temporary name (a ``Stager``) before its key is known.
    ``name`` becomes None once the file has been moved under its key or removed."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name: str | None = name

    def __repr__(self) -> str:
        return f"StagedFile({self.name!r})"


class FilesystemBlobStore:
    """Blobs as files under ``root``; each key's segments are sub-directories (the key layout does the sharding)."""

    def __init__(self, root: Path, *, direct_writes: bool = True):
        self.root = Path(root)
        self.direct_writes = direct_writes and hasattr(os, "O_DIRECT")
        self._resolved_root: Path | None = None
        self._checked: dict[str, Path] = {}  # keys whose path was checked not to leave the root
        self._safe_directories: set[Path] = set()  # directories checked not to lead out of the root
        self._made_directories: set[Path] = set()  # directories this process created or found (0700)
        # key → (view of the mapped file, its address, (device, inode) of the file mapped)
        self._mapped: dict[str, tuple[memoryview, int, tuple[int, int]]] = {}

    def __repr__(self) -> str:
        return f"FilesystemBlobStore({str(self.root)!r})"

    def path_for(self, key: str) -> Path:
        known = self._checked.get(key)
        if known is not None:
            return known
        segments = validate_key(key)
        root = self._root()
        path = root.joinpath(*segments)
        # Lexically safe already; what could still lead out is a symlink inside the root, at a directory level or
        # at the file. The directories are ours (0700): each level is looked at (one lstat) until it is seen to be a
        # directory inside the root, then remembered (a hot frame is read hundreds of times a second, a study is
        # written in hundreds of files under new directories, and resolving a whole path costs a system call per
        # level); a level that does not exist yet is made by this store. A key is remembered once its directory
        # exists and its file is not a link leading out.
        level, complete = root, True
        for segment in segments[:-1]:
            level = level / segment
            if level in self._safe_directories:
                continue
            try:
                mode = os.lstat(level).st_mode
            except (FileNotFoundError, NotADirectoryError):
                complete = False
                break
            if stat.S_ISLNK(mode) and not level.resolve().is_relative_to(root):
                raise InvalidBlobKey(f"blob key leaves the store: {key!r}")
            _remember(self._safe_directories, level)
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise InvalidBlobKey(f"blob key leaves the store: {key!r}")
        if complete:
            if len(self._checked) >= _REMEMBERED:
                self._checked.clear()
            self._checked[key] = path
        return path

    def _root(self) -> Path:
        if self._resolved_root is None:
            self._resolved_root = self.root.resolve()
        return self._resolved_root

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path_for(key)
        try:
            await asyncio.to_thread(self._write_atomically, path, bytes(data))
        except OSError as exc:
            log.exception("blob write failed: %s", key)
            raise StorageUnavailable() from exc
        finally:
            self._mapped.pop(key, None)  # a mapping of the content replaced (an old file) is not sent again

    async def put_if_absent(self, key: str, data: bytes, content_type: str) -> bool:
        path = self.path_for(key)

        try:
            return await asyncio.to_thread(
                self._write_if_absent, path, data
            )  # one worker-thread hop for both
        except OSError as exc:
            log.exception("blob write failed: %s", key)
            raise StorageUnavailable() from exc

    async def put_many_if_absent(
        self, items: list[tuple[str, bytes, str]], staged: list[StagedFile | None] | None = None
    ) -> list[bool]:
        paths = [(self.path_for(key), data) for key, data, _type in items]
        try:
            # one worker-thread hop for all
            return await asyncio.to_thread(self._write_many, paths, staged or [None] * len(paths))
        except OSError as exc:
            log.exception("blob write failed: %s…", items[0][0] if items else "")
            raise StorageUnavailable() from exc

    def stager(self) -> Stager | None:
        return Stager(str(self.root), self.direct_writes)

    async def discard(self, staged: list[StagedFile | None]) -> None:
        names = [file.name for file in staged if file is not None and file.name is not None]
        for file in staged:
            if file is not None:
                file.name = None
        if names:
            await asyncio.to_thread(_unlink_all, names)

    def _stage(self, data: bytes) -> str:
        directory = self._root() / _STAGING
        if directory not in self._made_directories:
            self._make_directories(directory)
            self._sweep_staging(directory)
        return self._write_new(directory, data, sync=False)  # flushed with its batch (``_write_many``)

    def _sweep_staging(self, directory: Path) -> None:
        """Staged files left by a server that stopped in the middle of a request (once per store: staged files live
        for the length of a request, those over an hour old are nobody's)."""
        limit = time.time() - 3600
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith(".tmp-") and entry.stat(follow_symlinks=False).st_mtime < limit:
                        Path(entry.path).unlink(missing_ok=True)
        except OSError:  # pragma: no cover - a sweep that fails leaves files behind, nothing worse
            log.warning("could not sweep %s", directory, exc_info=True)

    def _write_many(self, items: list[tuple[Path, bytes]], staged: list[StagedFile | None]) -> list[bool]:
        """Each file written under a temporary name (or staged so before), all flushed side by side, then all
        renamed, then each of their folders (and each parent of a folder made for them) flushed once: nothing
        appears under its name before its bytes are on disk, everything is on disk when this returns. Only this
        batch's files are flushed. ``syncfs(2)`` of the whole file system, used before 2026-12-05, was a little
        faster on a quiet disk (11 against 15 ms for 16 slices) but also wrote out whatever other programs had left
        in the page cache: 200 ms with 150 MB waiting, as a PACS or a database beside the platform would leave
        (docs/performance.md)."""
        written: list[bool] = []
        pending: dict[Path, str] = {}
        unused: list[str] = []
        changed: list[Path] = []  # folders holding a folder made for this batch
        try:
            for (path, data), early in zip(items, staged, strict=True):
                early_name = early.name if early is not None else None
                if path in pending or path.is_file():
                    written.append(False)
                    if early_name is not None:
                        unused.append(early_name)
                    continue
                if early_name is not None:
                    if path.parent not in self._made_directories:
                        self._make_directories(path.parent, changed)
                    pending[path] = early_name
                else:
                    pending[path] = self._write_temporary(path, bytes(data), sync=False, changed=changed)
                written.append(True)
            _fsync_files(list(pending.values()))  # side by side: one journal commit for many
            for path, tmp_name in pending.items():
                try:
                    os.replace(tmp_name, path)
                except FileNotFoundError:  # its folder was removed since this store made it (by hand)
                    self._make_directories(path.parent, changed)
                    os.replace(tmp_name, path)
            # the renames, and the folders made for them: all flushed side by side, one journal commit or two
            _fsync_directories(list(dict.fromkeys([*(path.parent for path in pending), *changed])))
        except BaseException:
            _unlink_all([*pending.values(), *unused])
            raise
        finally:
            for early in staged:
                if early is not None:
                    early.name = None  # moved or removed: never removed again by ``discard``
        _unlink_all(unused)
        return written

    def _write_if_absent(self, path: Path, data: bytes) -> bool:
        if path.is_file():
            return False
        self._write_atomically(path, bytes(data))
        return True

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(_MISSING) from None
        except OSError as exc:
            log.exception("blob read failed: %s", key)
            raise StorageUnavailable() from exc

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(_read_range, path, offset, length)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(_MISSING) from None
        except OSError as exc:
            log.exception("blob read failed: %s", key)
            raise StorageUnavailable() from exc

    def read_cached_into(self, key: str, offset: int, buffer: memoryview) -> bool:
        """Fill ``buffer`` from ``offset`` of the content under ``key`` if the page cache holds all of that range,
        without waiting for the disk (so it may run in the event loop); False when it would wait, or on any error
        (the caller then reads with ``get_range``, which reports errors properly)."""
        try:
            return _read_if_cached(str(self.path_for(key)), offset, buffer)
        except (OSError, InvalidBlobKey):
            return False

    def mapped_if_cached(self, key: str, offset: int, length: int) -> memoryview | None:
        """The range of the file under ``key``, as a view of the file mapped in memory, when the page cache holds all
        of it (so that the event loop can hand it to the socket: the kernel copies it from the cache once, nothing
        waits for the disk), else None; also None on any error (the caller then reads the usual way).

        Each file is mapped once (a private, read-only use of the page cache: no memory of its own) and kept among
        the last MAPPED_FILES mapped; a mapping is undone when the last view of it is released. A blob's content
        never changes under its key; ``put`` and ``delete`` forget its mapping. Whether the range is in the cache is
        asked of the kernel each time (``mincore(2)``), since the cache may have let it go since. The pages sent
        count in the process's resident size as file pages (``RssFile``), though they are the page cache's. A mapping
        kept is used only while its file is still the one under the key (one ``stat``): a file removed or replaced
        behind the store's back is not served from memory."""
        mapped = self._mapped.get(key)
        try:
            if mapped is not None:
                found = os.stat(self.path_for(key))
                if (found.st_dev, found.st_ino) != mapped[2]:
                    del self._mapped[key]
                    mapped = None
            if mapped is None:
                mapped = self._map(key)
        except (OSError, ValueError, TypeError, InvalidBlobKey):
            self._mapped.pop(key, None)
            return None
        view, address, _file = mapped
        if offset < 0 or length <= 0 or offset + length > len(view):
            return None
        if not _resident(address, offset, length):
            return None
        return view[offset : offset + length]

    def _map(self, key: str) -> tuple[memoryview, int, tuple[int, int]]:
        fd = os.open(self.path_for(key), os.O_RDONLY | os.O_CLOEXEC)
        try:
            found = os.fstat(fd)
            size = found.st_size
            # copy-on-write (never written): a private view of the cache's pages, whose address ctypes can take
            mapping = mmap.mmap(fd, size, access=mmap.ACCESS_COPY)
        finally:
            os.close(fd)
        address = _address_of(mapping)
        if len(self._mapped) >= MAPPED_FILES:
            del self._mapped[
                next(iter(self._mapped))
            ]  # the oldest: unmapped once no answer still sends from it
        # never written through
        mapped = self._mapped[key] = (memoryview(mapping).toreadonly(), address, (found.st_dev, found.st_ino))
        return mapped

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        self._mapped.pop(key, None)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except NotADirectoryError:
            return
        except OSError as exc:
            log.exception("blob delete failed: %s", key)
            raise StorageUnavailable() from exc

    async def exists(self, key: str) -> bool:
        path = self.path_for(key)
        return await asyncio.to_thread(path.is_file)

    def _make_directories(self, directory: Path, changed: list[Path] | None = None) -> None:
        """``directory`` and the levels above it up to the root, each made if missing. A folder made is a new entry
        in its parent, durable only once that parent is flushed too (as a renamed file's is in its folder): each
        such parent is added to ``changed``, which the caller flushes with its batch's folders before it returns."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        # One level at a time: ``mkdir(parents=True)`` would create the intermediate levels with the umask's mode.
        level = self._root()
        for part in directory.relative_to(level).parts:
            parent, level = level, level / part
            try:
                level.mkdir(mode=0o700)
            except FileExistsError:
                continue
            if changed is not None:
                changed.append(parent)
        _remember(self._made_directories, directory)

    def _write_atomically(self, path: Path, data: bytes) -> None:
        changed: list[Path] = []
        tmp_name = self._write_temporary(path, data, sync=True, changed=changed)
        try:
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        # the rename, and any folder made for it
        _fsync_directories(list(dict.fromkeys([path.parent, *changed])))

    def _write_temporary(
        self, path: Path, data: bytes, *, sync: bool, changed: list[Path] | None = None
    ) -> str:
        """``data`` in a new temporary file beside ``path`` (mode 0600), fsync'd if ``sync``: its name. Folders whose
        entries changed on the way (``_make_directories``) are added to ``changed``."""
        directory = path.parent
        if directory not in self._made_directories:
            self._make_directories(directory, changed)
        return self._write_new(directory, data, sync=sync, changed=changed)

    def _write_new(
        self, directory: Path, data: bytes, *, sync: bool, changed: list[Path] | None = None
    ) -> str:
        # mkstemp: mode 0600, unique name, same file system (so the rename to its key's path is atomic on POSIX).
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        except FileNotFoundError:  # removed since (by hand): made again
            self._make_directories(directory, changed)
            fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=directory)
        try:
            try:
                if not (self.direct_writes and self._write_direct(tmp_name, data)):
                    with os.fdopen(fd, "wb", closefd=False) as tmp:
                        tmp.write(data)
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return tmp_name

    def _write_direct(self, name: str, data: bytes) -> bool:
        """``data`` into the new empty file ``name`` with direct I/O, when its size is within the bounds and the
        file system supports it (else False: the caller writes it through the page cache).

        A received image is written once and read later, if ever, by a viewer. Written through the page cache, each
        512 KiB slice is first copied into cache pages: on a virtual machine whose memory is handed back to the
        host while unused (balloon, free page reporting), growing the cache into that memory cost about 1 ms of
        the server's CPU per slice, the largest part of a STOW-RS request's work (docs/performance.md). With
        ``O_DIRECT`` the disk reads the bytes from a buffer this thread keeps (one copy into memory already in use,
        padded to 4 KiB blocks, then the file is cut to its length). Durability is unchanged: the caller still
        flushes (``fsync``) before the rename. A first read of the file then comes from the disk
        (the frames fast path reads it in a worker thread, as any file not in the page cache)."""
        size = len(data)
        if not DIRECT_MIN_BYTES <= size <= DIRECT_MAX_BYTES:
            return False
        padded = -(-size // _DIRECT_ALIGN) * _DIRECT_ALIGN
        try:
            fd = os.open(name, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._no_direct_io()
            return False
        try:
            buffer = _aligned_buffer(padded)
            buffer[:size] = data
            buffer[size:padded] = bytes(padded - size)
            with memoryview(buffer) as view:
                written = 0
                while written < padded:
                    written += os.pwrite(fd, view[written:padded], written)
            os.ftruncate(fd, size)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # a device wanting larger blocks: the cache, as for EINVAL at open
                raise
            os.ftruncate(fd, 0)
            self._no_direct_io()
            return False
        finally:
            os.close(fd)
        return True

    def _no_direct_io(self) -> None:
        log.info(
            "direct I/O refused by the file system of %s: blobs written through the page cache", self.root
        )
        self.direct_writes = False


_STAGING = ".staging"  # beside the keys' folders; no key can name it (a segment never starts with a dot)


class Stager:
    """Writes a content under a temporary name in a filesystem store's ``.staging`` folder and returns that name
    (blocking: run it in a worker thread or a helper process). The caller does not wait for its flush:
    ``put_many_if_absent`` flushes the files of a batch side by side before renaming them (one journal commit for
    many, where each flush here waited for its own), and what guarantees durability is that flush. Meanwhile this
    process's early flusher (``_EarlyFlusher``) flushes the newest staged file in the background, so that the disk
    writes the bytes out while the rest of the request arrives instead of all at once when the batch asks.
    Plain fields, so that it crosses to the DICOM
    parsing helper (imaging/parsing.py), which writes each file it has parsed: the server's process then neither
    copies it again nor waits for the disk. A ``StagedFile`` of the name is then given to ``put_many_if_absent``
    (moved under its key: a rename) or to ``discard``."""

    __slots__ = ("root", "direct")

    def __init__(self, root: str, direct: bool):
        self.root, self.direct = root, direct

    def __getstate__(self) -> tuple[str, bool]:
        return self.root, self.direct

    def __setstate__(self, state: tuple[str, bool]) -> None:
        self.root, self.direct = state

    def __call__(self, data: bytes) -> str:
        key = (self.root, self.direct)
        writer = _stage_writers.get(key)
        if (
            writer is None
        ):  # one per process and store: its folders and its direct I/O fallback are remembered
            writer = _stage_writers[key] = FilesystemBlobStore(Path(self.root), direct_writes=self.direct)
        name = writer._stage(data)
        early_flusher().soon(name)
        return name


_stage_writers: dict[tuple[str, bool], FilesystemBlobStore] = {}


class _EarlyFlusher:
    """Flushes staged files in the background, the newest first, so that the batch's own flush finds little left.

    On a virtual machine the disk is usually a file on the host, behind the host's own cache: a write (even with
    ``O_DIRECT``) lands in that cache, and the bytes reach the host's disk when the guest flushes. The flush then
    costs in proportion to what it carries: the 16 slices of a STOW-RS batch (8 MiB), flushed together once they
    were indexed, took 26–38 ms here, while everything else of the request waited (docs/performance.md). Flushed as
    they are staged, the host writes them out while the body is still arriving, and the batch's flush of the same
    files took 1.8–10.8 ms.

    One flush at a time per process, always of the newest file waiting: a flush commits the file system's journal
    and empties the disk's cache, for every file written before it, so the files staged meanwhile ride on the next
    one (the batch flushes each of them anyway: this is only a head start, never the guarantee). A file moved under
    its key or discarded in the meantime is skipped, and a failure here is the batch's to see: ignored."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._newest: str | None = None
        self._waiting = threading.Condition()
        self.flushed = 0  # files flushed (tests, diagnostics)
        threading.Thread(target=self._run, name="blob-early-flush", daemon=True).start()

    def soon(self, name: str) -> None:
        with self._waiting:
            self._newest = name
            self._waiting.notify()

    def _run(self) -> None:
        while True:
            with self._waiting:
                while self._newest is None:
                    self._waiting.wait()
                name, self._newest = self._newest, None
            try:
                _fsync_file(name)
            except OSError:
                # moved under its key, discarded, or a disk error: the batch's own flush will see it
                continue
            self.flushed += 1


_early: _EarlyFlusher | None = None
_early_lock = threading.Lock()


def early_flusher() -> _EarlyFlusher:
    """This process's early flusher (a new one in a forked child: threads do not cross a fork)."""
    global _early
    with _early_lock:
        if _early is None or _early.pid != os.getpid():
            _early = _EarlyFlusher()
        return _early


def _unlink_all(names: list[str]) -> None:
    for name in names:
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        except OSError:  # an orphan temporary file at worst (swept later), never an error for the caller
            log.warning("could not remove %s", name, exc_info=True)


DIRECT_MIN_BYTES = 64 * 1024  # below: a small file, written through the page cache as usual
DIRECT_MAX_BYTES = 16 * 1024 * 1024  # above: not copied into a per-thread buffer of that size
_DIRECT_ALIGN = 4096  # direct I/O wants the buffer's address, the offset and the length in whole blocks
_buffers = threading.local()


def _aligned_buffer(size: int) -> mmap.mmap:
    """This thread's page-aligned buffer of at least ``size`` bytes (anonymous memory, reused: no page faults after
    the first use; at most DIRECT_MAX_BYTES per worker thread)."""
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < size:
        if buffer is not None:
            buffer.close()
        buffer = _buffers.buffer = mmap.mmap(-1, max(size, 1024 * 1024))
    return buffer


_flushers: ThreadPoolExecutor | None = None
_flushers_lock = threading.Lock()


def _fsync_files(names: list[str]) -> None:
    """Files flushed side by side (errors raised: the caller's write failed)."""
    _side_by_side(_fsync_file, names)


def _fsync_file(name: str) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directories(directories: list[Path]) -> None:
    """Each folder flushed, all at once when there are several: a key's folder is one of 65,536 (``sha256/ab/cd``),
    so a batch of slices renames into as many folders."""
    _side_by_side(_fsync_directory, directories)


def _side_by_side(flush: Callable[[Any], None], targets: list[Any]) -> None:
    """``flush`` of each target, all at once in a few threads when there are several. Flushed one after the other,
    each waits for its own journal commit; flushed together, the file system commits them in one or two (ext4's
    jbd2, XFS's log): 16 folders took 11–18 ms one by one while a STOW-RS request was still arriving
    (docs/performance.md)."""
    global _flushers
    if len(targets) < 2:
        for target in targets:
            flush(target)
        return
    with _flushers_lock:
        if _flushers is None:
            _flushers = ThreadPoolExecutor(8, thread_name_prefix="blob-fsync")
    for outcome in [_flushers.submit(flush, target) for target in targets]:
        outcome.result()


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


_REMEMBERED = 100_000  # paths and directories kept in memory per store (a few MB at most)


def _remember(known: set[Path], directory: Path) -> None:
    if len(known) >= _REMEMBERED:
        known.clear()
    known.add(directory)


_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)


def _read_if_cached(path: str, offset: int, buffer: memoryview) -> bool:
    """``preadv2`` with ``RWF_NOWAIT`` (Linux ≥ 4.14): reads only what the page cache holds, never waits for the
    disk. Reading straight into the caller's buffer spares a copy of the frame (large copies are what costs). A miss
    may start the kernel's read-ahead of the range without waiting for it (the caller's own read then finds it
    sooner); if that read-ahead completes before the kernel looks again, the read succeeds from the cache."""
    global _NOWAIT
    if _NOWAIT is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            read = os.preadv(fd, [buffer], offset, _NOWAIT)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # a filesystem without it
                _NOWAIT = None
                return False
            raise
        return read == len(buffer)  # partly cached, or past the end: the caller reads in a thread
    finally:
        os.close(fd)


MAPPED_FILES = 4096  # files kept mapped per store (address space only: the pages are the page cache's)
_PAGE = mmap.PAGESIZE
try:
    _mincore: Any = ctypes.CDLL(None).mincore
    _mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    _mincore.restype = ctypes.c_int
except (OSError, AttributeError):  # pragma: no cover - no C library, or no mincore(2) in it
    _mincore = None
_LOW_BIT = bytes(value & 1 for value in range(256))  # mincore(2) reports a page in the low bit of its byte
_pages = threading.local()


def _address_of(mapping: mmap.mmap) -> int:
    """The address of a writable (``ACCESS_COPY``) mapping, for ``mincore``; holds no reference to it, so only the
    views taken of it keep it mapped."""
    pointer = ctypes.c_char.from_buffer(mapping)
    address = ctypes.addressof(pointer)
    del pointer
    return address


def _resident(address: int, offset: int, length: int) -> bool:
    """Whether every page of ``length`` bytes from ``offset`` in the mapping at ``address`` is in memory
    (``mincore(2)``: asks, reads nothing). False where the kernel cannot tell: the caller reads the usual way."""
    if _mincore is None:
        return False
    first, end = offset // _PAGE, -(-(offset + length) // _PAGE)
    count = end - first
    vector = getattr(_pages, "vector", None)
    if vector is None or len(vector) < count:
        vector = _pages.vector = ctypes.create_string_buffer(max(count, 1024))
    if _mincore(address + first * _PAGE, count * _PAGE, vector) != 0:
        return False
    return b"\0" not in ctypes.string_at(vector, count).translate(_LOW_BIT)


def _read_range(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read(length)


AddressingStyle = Literal["auto", "path", "virtual"]


class S3BlobStore:
    """Blobs as objects of one bucket of an S3-compatible store (boto3 in a worker thread).

    ``addressing_style="path"`` (``https://endpoint/bucket/key``) is what MinIO, Ceph RGW and most self-hosted
    stores expect; ``virtual`` (``https://bucket.endpoint/key``) is AWS's default. ``prefix`` lets several
    installations share a bucket. Checksums are computed only when the operation requires them, which every
    S3-compatible store accepts.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: AddressingStyle = "auto",
        prefix: str = "",
        timeout_seconds: float = 30.0,
    ):
        import boto3
        from botocore.config import Config

        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                s3={"addressing_style": addressing_style},
                connect_timeout=timeout_seconds,
                read_timeout=timeout_seconds,
                retries={"max_attempts": 3, "mode": "standard"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, endpoint={self.client.meta.endpoint_url!r})"

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return self.prefix + key

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        object_key = self._object_key(key)
        await self._call(
            "put_object", key, Bucket=self.bucket, Key=object_key, Body=bytes(data), ContentType=content_type
        )

    async def get(self, key: str) -> bytes:
        object_key = self._object_key(key)

        def read() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=object_key)
            with response["Body"] as body:
                return body.read()

        return await self._run(read, key)

    async def get_range(self, key: str, offset: int, length: int) -> bytes:
        object_key = self._object_key(key)
        if length <= 0:
            return b""

        def read() -> bytes:
            response = self.client.get_object(
                Bucket=self.bucket, Key=object_key, Range=f"bytes={offset}-{offset + length - 1}"
            )
            with response["Body"] as body:
                return body.read()

        return await self._run(read, key)

    async def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        await self._call("delete_object", key, Bucket=self.bucket, Key=object_key)  # idempotent in S3

    async def exists(self, key: str) -> bool:
        object_key = self._object_key(key)
        try:
            await self._call("head_object", key, Bucket=self.bucket, Key=object_key)
        except NotFound:
            return False
        return True

    async def put_if_absent(self, key: str, data: bytes, content_type: str) -> bool:
        if await self.exists(key):
            return False
        await self.put(key, data, content_type)
        return True

    def stager(self) -> Stager | None:
        return None  # an object is sent whole, under its key, at ``put``: nothing to write ahead

    async def discard(self, staged: list[StagedFile | None]) -> None:
        return None

    async def put_many_if_absent(
        self, items: list[tuple[str, bytes, str]], staged: list[StagedFile | None] | None = None
    ) -> list[bool]:
        limit = asyncio.Semaphore(8)  # boto3's default connection pool holds 10

        async def one(key: str, data: bytes, content_type: str) -> bool:
            async with limit:
                return await self.put_if_absent(key, data, content_type)

        unique: dict[str, tuple[bytes, str]] = {}
        for key, data, content_type in items:
            unique.setdefault(key, (data, content_type))  # a key twice: written once, as on the filesystem
        outcomes = await asyncio.gather(*(one(key, *value) for key, value in unique.items()))
        written = dict(zip(unique, outcomes, strict=True))
        result, seen = [], set()
        for key, _data, _type in items:
            result.append(written[key] and key not in seen)
            seen.add(key)
        return result

    async def _call(self, operation: str, key: str, **params: Any) -> Any:
        return await self._run(lambda: getattr(self.client, operation)(**params), key)

    async def _run(self, function: Any, key: str) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(function)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") in ("NoSuchKey", "404", "NotFound") and status == 404:
                raise NotFound(_MISSING) from None
            log.error("S3 request failed for %s: %s %s", key, error.get("Code"), error.get("Message"))
            raise StorageUnavailable() from exc
        except BotoCoreError as exc:
            log.error("S3 request failed for %s: %s", key, exc)
            raise StorageUnavailable() from exc


def make_blob_store(settings: Settings) -> BlobStore:
    """The store the settings describe: S3 when ``TELESANTE_BLOB_BACKEND=s3`` (or implicitly when
    ``TELESANTE_S3_BUCKET`` is set), otherwise ``<TELESANTE_DATA_DIR>/blobs``."""
    if settings.effective_blob_backend == "s3":
        if not settings.s3_bucket:
            raise ValueError("TELESANTE_BLOB_BACKEND=s3 demande TELESANTE_S3_BUCKET (nom du compartiment).")
        secret = settings.s3_secret_access_key
        return S3BlobStore(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            addressing_style=settings.s3_addressing_style,
            prefix=settings.s3_prefix,
        )
    return FilesystemBlobStore(settings.data_dir / "blobs", direct_writes=settings.blob_direct_writes)
