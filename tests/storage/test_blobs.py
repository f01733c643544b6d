"""Both blob stores honour one contract; the filesystem store writes atomically and stays inside its root."""

from __future__ import annotations

import mmap
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from telesante.config import Settings
from telesante.kit.errors import NotFound
from telesante.storage import blobs
from telesante.storage.blobs import (
    FilesystemBlobStore,
    InvalidBlobKey,
    S3BlobStore,
    StorageUnavailable,
    make_blob_store,
)

from .conftest import ACCESS_KEY, REGION, SECRET_KEY, make_s3_store, s3_admin

KEY = "sha256/ab/cd/abcdef0123456789"
BAD_KEYS = [
    "",
    "../escape",
    "a/../../escape",
    "/etc/passwd",
    "a//b",
    "a/./b",
    "a\\..\\b",
    ".hidden",
    "a/.tmp-123",
    "nul\x00byte",
    "é",
    "x" * 600,
]


# --- the contract, on both backends --------------------------------------------------------------------------


async def test_put_get_exists_delete(store):
    assert await store.exists(KEY) is False
    await store.put(KEY, b"%PDF-1.7 contenu", "application/pdf")
    assert await store.exists(KEY) is True
    assert await store.get(KEY) == b"%PDF-1.7 contenu"

    await store.put(KEY, b"nouveau contenu", "application/pdf")  # replacing is allowed
    assert await store.get(KEY) == b"nouveau contenu"

    await store.delete(KEY)
    assert await store.exists(KEY) is False
    await store.delete(KEY)  # idempotent
    await store.delete("jamais/ecrit")


async def test_get_missing_is_not_found_in_french(store):
    with pytest.raises(NotFound) as caught:
        await store.get("sha256/00/00/absent")
    assert caught.value.message == "Fichier introuvable dans le stockage."
    assert caught.value.status_code == 404


async def test_keys_are_independent_and_binary_safe(store):
    data = bytes(range(256)) * 1000
    await store.put("a/b/one", data, "application/octet-stream")
    await store.put("a/b/two", b"", "application/octet-stream")
    assert await store.get("a/b/one") == data
    assert await store.get("a/b/two") == b""
    assert await store.exists("a/b") is False  # a "directory" is not a blob


async def test_ranged_reads_serve_a_part_of_a_blob(store):
    """How a DICOM frame is served: a range of the stored file, on both backends."""
    data = bytes(range(256)) * 4096
    await store.put("a/b/frames", data, "application/dicom")
    assert await store.get_range("a/b/frames", 1000, 5000) == data[1000:6000]
    assert await store.get_range("a/b/frames", len(data) - 10, 10) == data[-10:]
    assert await store.get_range("a/b/frames", 0, 0) == b""
    with pytest.raises(NotFound):
        await store.get_range("a/b/absent", 0, 10)


async def test_several_blobs_are_written_together_and_existing_ones_kept(store):
    """How a STOW-RS batch is saved: each absent key written (True), a present one left as it is (False), a key
    twice in one call written once."""
    await store.put("batch/a/existing", b"before", "application/dicom")
    items = [
        ("batch/a/one", os.urandom(70_000), "application/dicom"),
        ("batch/a/existing", b"after", "application/dicom"),
        ("batch/b/two", b"", "application/dicom"),
        ("batch/a/one", b"same key again", "application/dicom"),
    ]
    assert await store.put_many_if_absent(items) == [True, False, True, False]
    assert await store.get("batch/a/one") == items[0][1]
    assert await store.get("batch/a/existing") == b"before"
    assert await store.get("batch/b/two") == b""
    assert await store.put_many_if_absent([]) == []
    assert await store.put_if_absent("batch/b/two", b"x", "text/plain") is False
    assert await store.put_if_absent("batch/b/three", b"x", "text/plain") is True
    assert await store.get("batch/b/three") == b"x"


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_keys_that_could_escape_are_refused(store, key):
    for call in (
        lambda: store.put(key, b"x", "text/plain"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
    ):
        with pytest.raises(InvalidBlobKey):
            await call()


# --- filesystem ------------------------------------------------------------------------------------------------


async def test_filesystem_layout_and_permissions(tmp_path):
    store = FilesystemBlobStore(tmp_path / "blobs")
    await store.put(KEY, b"data", "application/pdf")
    path = tmp_path / "blobs" / "sha256" / "ab" / "cd" / "abcdef0123456789"
    assert path.read_bytes() == b"data"
    assert path.stat().st_mode & 0o777 == 0o600  # health data: owner only
    assert (tmp_path / "blobs" / "sha256").stat().st_mode & 0o777 == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["abcdef0123456789"]  # no temporary file left


async def test_filesystem_escape_attempts_write_nothing_outside(tmp_path):
    store = FilesystemBlobStore(tmp_path / "blobs")
    for key in BAD_KEYS:
        with pytest.raises(InvalidBlobKey):
            await store.put(key, b"x", "text/plain")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


async def test_filesystem_refuses_a_symlink_leading_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "blobs"
    root.mkdir()
    (root / "sha256").symlink_to(outside)
    store = FilesystemBlobStore(root)
    with pytest.raises(InvalidBlobKey):
        await store.put("sha256/ab/secret", b"x", "text/plain")
    assert list(outside.iterdir()) == []
    # deeper: a level under directories the store has checked and remembered already
    await store.put("safe/ab/cd/one", b"x", "text/plain")
    (root / "safe" / "ab" / "ef").symlink_to(outside)
    with pytest.raises(InvalidBlobKey):
        await store.put("safe/ab/ef/secret", b"x", "text/plain")
    (root / "safe" / "ab" / "cd" / "two").symlink_to(outside / "file")
    with pytest.raises(InvalidBlobKey):
        await store.put("safe/ab/cd/two", b"x", "text/plain")
    assert list(outside.iterdir()) == []
    assert await store.get("safe/ab/cd/one") == b"x"


async def test_filesystem_reads_a_cached_range_straight_into_a_buffer(tmp_path):
    """The frames fast path: a range the page cache holds is read into the response buffer without a thread; what
    cannot be read that way (past the end, absent, a bad key) says False and the caller uses get_range."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    data = os.urandom(600_000)
    await store.put("a/b/frames", data, "application/dicom")
    assert await store.get("a/b/frames") == data  # read once: now in the page cache (written with direct I/O)
    buffer = bytearray(b"H" * 4 + bytes(524_288) + b"T" * 4)
    assert store.read_cached_into("a/b/frames", 1000, memoryview(buffer)[4:-4]) is True
    assert buffer[4:-4] == data[1000 : 1000 + 524_288]
    assert buffer[:4] == b"HHHH" and buffer[-4:] == b"TTTT"  # only the slice asked for is written
    assert (
        store.read_cached_into("a/b/frames", 500_000, memoryview(bytearray(200_000))) is False
    )  # past the end
    assert store.read_cached_into("a/b/absent", 0, memoryview(bytearray(10))) is False
    assert store.read_cached_into("../etc/passwd", 0, memoryview(bytearray(10))) is False


async def test_filesystem_maps_a_range_only_when_the_page_cache_holds_it(tmp_path):
    """``mapped_if_cached`` (frames sent from the page cache): a read-only view of the range when every page of it
    is cached (``mincore``), None when one is not — the file written with direct I/O — and for a range past the
    end, an absent file or a bad key. ``delete`` forgets the mapping; the oldest of too many is let go."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    data = os.urandom(600_000)
    await store.put("a/b/frames", data, "application/dicom")
    assert store.mapped_if_cached("a/b/frames", 1000, 524_288) is None  # written with direct I/O: not cached
    assert await store.get("a/b/frames") == data  # read once: now in the page cache
    view = store.mapped_if_cached("a/b/frames", 1000, 524_288)
    assert view is not None and view.readonly and bytes(view) == data[1000 : 1000 + 524_288]
    assert store.mapped_if_cached("a/b/frames", 599_000, 2000) is None  # past the end
    assert store.mapped_if_cached("a/b/frames", -1, 10) is None
    assert store.mapped_if_cached("a/b/absent", 0, 10) is None
    assert store.mapped_if_cached("../etc/passwd", 0, 10) is None
    replaced = os.urandom(600_000)
    await store.put("a/b/frames", replaced, "application/dicom")  # a new file under the key: mapped anew
    await store.get("a/b/frames")
    assert bytes(store.mapped_if_cached("a/b/frames", 0, 100)) == replaced[:100]
    await store.delete("a/b/frames")
    assert store.mapped_if_cached("a/b/frames", 0, 10) is None
    assert bytes(view[:10]) == data[1000:1010]  # a view given out stays valid (the mapping outlives the file)

    await store.put("a/b/other", data, "application/dicom")
    await store.get("a/b/other")
    blobs.MAPPED_FILES, limit = 1, blobs.MAPPED_FILES
    try:
        await store.put("a/b/third", data, "application/dicom")
        await store.get("a/b/third")
        assert store.mapped_if_cached("a/b/other", 0, 10) is not None
        assert store.mapped_if_cached("a/b/third", 0, 10) is not None
        assert list(store._mapped) == ["a/b/third"]
    finally:
        blobs.MAPPED_FILES = limit


def test_residency_counts_every_page_of_the_range(tmp_path):
    """``_resident`` (mincore): true only when every page the range touches is in memory."""
    path = tmp_path / "f"
    path.write_bytes(os.urandom(3 * 4096))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no read-ahead: a read brings in its own page only
        mapping = mmap.mmap(fd, 0, access=mmap.ACCESS_COPY)
        mapping.madvise(mmap.MADV_RANDOM)
        address = blobs._address_of(mapping)
        assert not blobs._resident(address, 0, 10)
        os.pread(fd, 10, 4096)  # the middle page only
        assert blobs._resident(address, 4096, 4096)
        assert blobs._resident(address, 4100, 10)
        assert not blobs._resident(address, 4000, 200)  # starts in the first page, not cached
        assert not blobs._resident(address, 8000, 200)  # ends in the last page, not cached
        mapping.close()
    finally:
        os.close(fd)


async def test_filesystem_symlink_check_is_not_bypassed_by_a_checked_key(tmp_path):
    """Keys are remembered once their directory is checked; a key under a directory that leads out never is."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "blobs"
    store = FilesystemBlobStore(root)
    await store.put("inside/x/blob", b"ok", "text/plain")
    assert await store.get("inside/x/blob") == b"ok"
    (root / "leak").symlink_to(outside)
    for _ in range(2):
        with pytest.raises(InvalidBlobKey):
            await store.get("leak/secret")
    assert store.read_cached_into("leak/secret", 0, memoryview(bytearray(6))) is False


async def test_filesystem_batch_write_flushes_its_own_files_and_leaves_no_temporary_file(
    tmp_path, monkeypatch
):
    """Each file is flushed before its rename and each folder once after the renames (never the whole file system,
    which would also write out other programs' data); the files are complete under their names, mode 0600, and no
    temporary file stays, even when one fails."""
    flushed: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    renamed: list[str] = []

    def fsync(fd):
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(source, target):
        assert str(source) in flushed  # its bytes are on disk before it appears under its name
        renamed.append(str(target))
        real_replace(source, target)

    monkeypatch.setattr(blobs.os, "fsync", fsync)
    monkeypatch.setattr(blobs.os, "replace", replace)
    store = FilesystemBlobStore(tmp_path / "blobs")
    data = [os.urandom(100_000) for _ in range(5)]
    assert (
        await store.put_many_if_absent([(f"k/{n % 2}/b{n}", d, "x") for n, d in enumerate(data)])
        == [True] * 5
    )
    for n, d in enumerate(data):
        path = tmp_path / "blobs" / "k" / str(n % 2) / f"b{n}"
        assert path.read_bytes() == d and path.stat().st_mode & 0o777 == 0o600
    root = (tmp_path / "blobs").resolve()
    folders = sorted(str(folder) for folder in (root, root / "k", root / "k" / "0", root / "k" / "1"))
    # each folder once, after the last rename: the two renamed into, and the two holding a folder made for the batch
    assert sorted(flushed[-4:]) == folders
    assert len(renamed) == 5 and len(flushed) == 5 + 4

    def fail_on_the_second(source, target):
        if str(target).endswith("c1"):
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(blobs.os, "replace", fail_on_the_second)
    with pytest.raises(StorageUnavailable):
        await store.put_many_if_absent([("k/0/c0", b"zero", "x"), ("k/0/c1", b"one", "x")])
    leftovers = [p.name for p in (tmp_path / "blobs").rglob(".tmp-*")]
    assert leftovers == []
    assert not (tmp_path / "blobs" / "k" / "0" / "c1").exists()


async def test_filesystem_write_is_atomic(tmp_path, monkeypatch):
    """At the moment the file appears under its name it is complete and synced; before, nothing is visible."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    final = tmp_path / "blobs" / "k" / "blob"
    data = os.urandom(300_000)
    seen = {}
    synced = []
    real_replace, real_fsync = os.replace, os.fsync

    def spy_fsync(fd):
        synced.append(fd)
        return real_fsync(fd)

    def spy_replace(src, dst):
        seen["final_visible_before_rename"] = Path(dst).exists()
        seen["temp_content"] = Path(src).read_bytes()
        seen["temp_name"] = Path(src).name
        seen["synced_before_rename"] = bool(synced)
        return real_replace(src, dst)

    monkeypatch.setattr(blobs.os, "fsync", spy_fsync)
    monkeypatch.setattr(blobs.os, "replace", spy_replace)
    await store.put("k/blob", data, "application/octet-stream")

    assert seen["final_visible_before_rename"] is False
    assert seen["temp_content"] == data
    assert seen["temp_name"].startswith(".tmp-")
    assert seen["synced_before_rename"] is True
    assert final.read_bytes() == data


async def test_filesystem_failed_write_leaves_nothing_and_keeps_the_old_content(tmp_path, monkeypatch):
    store = FilesystemBlobStore(tmp_path / "blobs")
    await store.put("k/blob", b"ancien contenu complet", "text/plain")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blobs.os, "fsync", disk_full)
    with pytest.raises(StorageUnavailable) as caught:
        await store.put("k/blob", b"nouveau contenu", "text/plain")
    assert caught.value.status_code == 503
    with pytest.raises(StorageUnavailable):
        await store.put("k/other", b"jamais visible", "text/plain")
    monkeypatch.undo()

    assert await store.get("k/blob") == b"ancien contenu complet"
    assert await store.exists("k/other") is False
    assert sorted(p.name for p in (tmp_path / "blobs" / "k").iterdir()) == ["blob"]  # no temporary file


def _cached(store: FilesystemBlobStore, key: str, length: int = 4096) -> bool:
    """Whether the page cache holds the first ``length`` bytes of the file, asked with ``mincore(2)`` on a mapping
    that is never touched. Not with a read: a ``RWF_NOWAIT`` read that misses starts the read-ahead itself, and when
    the disk answers before the read looks again (a fast virtual disk, a busy CPU), it returns the page. Under two
    test workers, a file just written with direct I/O was once seen as cached that way."""
    with store.path_for(key).open("rb") as file:
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)  # writable, for ctypes; never written
    try:
        return blobs._resident(blobs._address_of(mapping), 0, min(length, len(mapping)))
    finally:
        mapping.close()


@pytest.mark.parametrize(
    "size",
    [
        blobs.DIRECT_MIN_BYTES - 1,  # small: through the page cache
        blobs.DIRECT_MIN_BYTES,  # whole blocks
        512 * 512 * 2 + 1234,  # a CT slice with its header: the last block padded, then the file cut
        blobs.DIRECT_MAX_BYTES + 1,  # large: through the page cache
    ],
)
async def test_filesystem_direct_writes_store_the_same_bytes_outside_the_page_cache(tmp_path, size):
    store = FilesystemBlobStore(tmp_path / "blobs")
    data = os.urandom(size)
    await store.put("k/one", data, "application/dicom")
    assert await store.put_many_if_absent([("k/two", data, "x"), ("k/three", data[::-1], "x")]) == [
        True,
        True,
    ]
    if not store.direct_writes:
        pytest.fail("the tests' file system must accept O_DIRECT (ext4, xfs, btrfs, tmpfs on Linux ≥ 6.6)")
    direct = blobs.DIRECT_MIN_BYTES <= size <= blobs.DIRECT_MAX_BYTES
    for key, content in (("k/one", data), ("k/two", data), ("k/three", data[::-1])):
        path = tmp_path / "blobs" / key
        assert path.stat().st_size == size and path.stat().st_mode & 0o777 == 0o600
        # written with O_DIRECT, the file's first block is not in the page cache until someone reads it
        assert _cached(store, key) is not direct
        assert await store.get(key) == content
        assert _cached(store, key)
    assert [p.name for p in (tmp_path / "blobs").rglob(".tmp-*")] == []


async def test_filesystem_without_direct_io_writes_through_the_page_cache(tmp_path, monkeypatch):
    """A file system that refuses O_DIRECT (EINVAL at open): the file is written as usual, and the store stops
    trying."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    real_open, attempts = os.open, []

    def no_direct(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            attempts.append(path)
            raise OSError(22, "Invalid argument")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(blobs.os, "open", no_direct)
    data = os.urandom(300_000)
    await store.put("k/a", data, "x")
    await store.put("k/b", data, "x")
    monkeypatch.undo()
    assert len(attempts) == 1 and store.direct_writes is False
    assert (
        (tmp_path / "blobs" / "k" / "a").read_bytes() == data == (tmp_path / "blobs" / "k" / "b").read_bytes()
    )
    assert _cached(store, "k/b")


async def test_filesystem_direct_write_refused_by_the_device_writes_through_the_page_cache(
    tmp_path, monkeypatch
):
    """EINVAL from the write itself (a device wanting larger blocks than 4 KiB): the file is written again through
    the cache, complete, and the store stops trying."""
    store = FilesystemBlobStore(tmp_path / "blobs")
    real_pwrite, calls = os.pwrite, []

    def refuse_after_a_block(fd, data, offset):
        calls.append(offset)
        if offset > 0:
            raise OSError(22, "Invalid argument")
        return real_pwrite(fd, data[:4096], offset)

    monkeypatch.setattr(blobs.os, "pwrite", refuse_after_a_block)
    data = os.urandom(300_000)
    await store.put("k/a", data, "x")
    await store.put("k/b", data[::-1], "x")
    assert calls == [0, 4096] and store.direct_writes is False
    assert (tmp_path / "blobs" / "k" / "a").read_bytes() == data
    assert (tmp_path / "blobs" / "k" / "b").read_bytes() == data[::-1]


async def test_filesystem_direct_write_failure_leaves_nothing(tmp_path, monkeypatch):
    store = FilesystemBlobStore(tmp_path / "blobs")

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blobs.os, "pwrite", disk_full)
    with pytest.raises(StorageUnavailable):
        await store.put("k/a", os.urandom(200_000), "x")
    with pytest.raises(StorageUnavailable):
        await store.put_many_if_absent([("k/b", os.urandom(200_000), "x"), ("k/c", os.urandom(200_000), "x")])
    assert [p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


def test_direct_writes_can_be_turned_off(tmp_path):
    assert make_blob_store(Settings(data_dir=tmp_path)).direct_writes is True
    store = make_blob_store(Settings(data_dir=tmp_path, blob_direct_writes=False))
    assert store.direct_writes is False


# --- S3 against a real S3-protocol server -----------------------------------------------------------------------


async def test_s3_stores_objects_with_content_type_under_prefix(s3_endpoint, s3_bucket):
    store = make_s3_store(s3_endpoint, s3_bucket, prefix="region-bretagne")
    await store.put(KEY, b"%PDF-1.7", "application/pdf")
    head = s3_admin(s3_endpoint).head_object(Bucket=s3_bucket, Key=f"region-bretagne/{KEY}")
    assert head["ContentType"] == "application/pdf"
    assert head["ContentLength"] == 8
    assert await store.exists(KEY) is True
    other = make_s3_store(s3_endpoint, s3_bucket)  # another prefix sees nothing
    assert await other.exists(KEY) is False


async def test_s3_unreachable_bucket_is_storage_unavailable(s3_endpoint):
    store = make_s3_store(s3_endpoint, "no-such-bucket")
    with pytest.raises(StorageUnavailable):
        await store.put(KEY, b"x", "text/plain")
    with pytest.raises(StorageUnavailable):
        await store.get(KEY)


async def test_s3_unreachable_endpoint_is_storage_unavailable_not_not_found(s3_endpoint, s3_bucket):
    store = S3BlobStore(
        s3_bucket,
        endpoint_url="http://127.0.0.1:9",  # nothing listens on the discard port
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        addressing_style="path",
        timeout_seconds=2,
    )
    with pytest.raises(StorageUnavailable):
        await store.exists(KEY)


# --- settings --------------------------------------------------------------------------------------------------


def test_default_store_is_the_filesystem_under_the_data_dir(tmp_path):
    store = make_blob_store(Settings(data_dir=tmp_path))
    assert isinstance(store, FilesystemBlobStore)
    assert store.root == tmp_path / "blobs"
    assert not (tmp_path / "blobs").exists()  # created on first write, not at start-up


async def test_a_bucket_setting_selects_s3(tmp_path, s3_endpoint, s3_bucket, monkeypatch):
    monkeypatch.setenv("TELESANTE_S3_BUCKET", s3_bucket)
    monkeypatch.setenv("TELESANTE_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("TELESANTE_S3_REGION", REGION)
    monkeypatch.setenv("TELESANTE_S3_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("TELESANTE_S3_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("TELESANTE_S3_ADDRESSING_STYLE", "path")
    settings = Settings(data_dir=tmp_path)
    assert SECRET_KEY not in repr(settings)
    store = make_blob_store(settings)
    assert isinstance(store, S3BlobStore)
    await store.put(KEY, b"via settings", "text/plain")
    got = s3_admin(s3_endpoint).get_object(Bucket=s3_bucket, Key=KEY)["Body"].read()
    assert got == b"via settings"

    monkeypatch.setenv("TELESANTE_BLOB_BACKEND", "filesystem")  # an explicit backend wins
    assert isinstance(make_blob_store(Settings(data_dir=tmp_path)), FilesystemBlobStore)


def test_s3_backend_without_bucket_is_a_clear_start_up_error(tmp_path):
    with pytest.raises(ValueError, match="TELESANTE_S3_BUCKET"):
        make_blob_store(Settings(data_dir=tmp_path, blob_backend="s3"))


def test_app_exposes_its_store(app, settings):
    assert isinstance(app.state.blob_store, FilesystemBlobStore)
    assert app.state.blob_store.root == settings.data_dir / "blobs"


# --- staging: files written before their key is known (STOW-RS) -------------------------------------------------


def _content_and_mode(name: str) -> tuple[bytes, int] | None:
    path = Path(name)
    return (path.read_bytes(), path.stat().st_mode & 0o777) if path.exists() else None


def _staged_names(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".staging").iterdir()) if (root / ".staging").exists() else []


async def test_a_staged_file_is_moved_under_its_key_and_never_removed_after(tmp_path, monkeypatch):
    """The stager writes the bytes, private, in ``.staging``; the batch flushes it, then renames it under its key
    (the bytes are not written again), and the staged file is then no longer anyone's to discard."""
    flushed: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        if threading.current_thread().name != "blob-early-flush":  # the batch's own flushes: the guarantee
            flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(source, target):
        assert str(source) in flushed  # its bytes are on disk before it appears under its key
        real_replace(source, target)

    monkeypatch.setattr(blobs.os, "fsync", fsync)
    monkeypatch.setattr(blobs.os, "replace", replace)
    store = FilesystemBlobStore(tmp_path / "blobs")
    data = os.urandom(300_000)
    stager = store.stager()
    name = stager(data)
    assert Path(name).parent == (tmp_path / "blobs" / ".staging").resolve()
    assert _content_and_mode(name) == (data, 0o600)
    staged = blobs.StagedFile(name)
    assert await store.put_many_if_absent([("k/a/one", b"", "x")], [staged]) == [
        True
    ]  # bytes ignored: staged
    assert (tmp_path / "blobs" / "k" / "a" / "one").read_bytes() == data
    assert staged.name is None and _content_and_mode(name) is None
    await store.discard([staged])  # nothing left to remove, nothing removed
    assert await store.get("k/a/one") == data


async def test_a_staged_file_for_a_key_already_stored_is_removed_and_the_old_content_kept(tmp_path):
    store = FilesystemBlobStore(tmp_path / "blobs")
    await store.put("k/a/one", b"first", "x")
    stager = store.stager()
    twice = [blobs.StagedFile(stager(b"second")), blobs.StagedFile(stager(b"third"))]
    assert await store.put_many_if_absent(
        [("k/a/one", b"second", "x"), ("k/a/two", b"third", "x"), ("k/a/two", b"third", "x")],
        [twice[0], twice[1], None],
    ) == [False, True, False]
    assert await store.get("k/a/one") == b"first" and await store.get("k/a/two") == b"third"
    assert _staged_names(tmp_path / "blobs") == []


async def test_unused_staged_files_are_discarded_and_old_leftovers_swept(tmp_path):
    """What nothing used is removed by ``discard``; what a stopped server left behind (over an hour old) is swept
    at the first staging, what is recent (another server's request in progress) is left alone."""
    root = tmp_path / "blobs"
    (root / ".staging").mkdir(parents=True)
    old, recent = root / ".staging" / ".tmp-old", root / ".staging" / ".tmp-recent"
    old.write_bytes(b"left behind")
    recent.write_bytes(b"in progress")
    hours_ago = old.stat().st_mtime - 7200
    os.utime(old, (hours_ago, hours_ago))
    store = FilesystemBlobStore(root)
    staged = [blobs.StagedFile(store.stager()(b"unused")), None]
    assert _staged_names(root) == sorted([".tmp-recent", Path(staged[0].name).name])
    await store.discard(staged)
    assert _staged_names(root) == [".tmp-recent"] and staged[0].name is None


def test_a_stager_crosses_to_another_process_as_plain_fields(tmp_path):
    """The DICOM parsing helper receives the stager pickled: the same folder, the same direct-I/O choice."""
    import pickle

    stager = FilesystemBlobStore(tmp_path / "blobs", direct_writes=False).stager()
    copy = pickle.loads(pickle.dumps(stager))  # noqa: S301 - our own bytes, as multiprocessing does
    assert (copy.root, copy.direct) == (str(tmp_path / "blobs"), False)
    assert Path(copy(b"bytes")).read_bytes() == b"bytes"


async def test_a_staged_file_whose_folder_was_removed_still_lands_under_its_key(tmp_path):
    store = FilesystemBlobStore(tmp_path / "blobs")
    await store.put("k/a/first", b"1", "x")
    import shutil

    shutil.rmtree(tmp_path / "blobs" / "k")  # by hand, behind the store's back
    staged = blobs.StagedFile(store.stager()(b"2"))
    assert await store.put_many_if_absent([("k/a/second", b"2", "x")], [staged]) == [True]
    assert await store.get("k/a/second") == b"2"


async def test_a_failed_batch_removes_its_staged_files(tmp_path, monkeypatch):
    store = FilesystemBlobStore(tmp_path / "blobs")
    staged = [blobs.StagedFile(store.stager()(b"a")), blobs.StagedFile(store.stager()(b"b"))]

    def full(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blobs.os, "replace", full)
    with pytest.raises(StorageUnavailable):
        await store.put_many_if_absent([("k/a/a", b"a", "x"), ("k/a/b", b"b", "x")], staged)
    assert _staged_names(tmp_path / "blobs") == [] and all(file.name is None for file in staged)


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_a_staged_file_is_flushed_early_in_the_background(tmp_path, monkeypatch):
    """Staging returns at once; the process's early flusher then flushes the file, in its own thread, before any
    batch asks."""
    threads: list[str] = []
    early = _recording(monkeypatch, "_fsync_file", lambda: threads.append(threading.current_thread().name))
    name = FilesystemBlobStore(tmp_path / "blobs").stager()(os.urandom(200_000))
    assert _wait_for(lambda: name in early)
    assert threads[early.index(name)] == "blob-early-flush"


def test_the_early_flusher_flushes_the_newest_file_and_survives_files_gone(tmp_path, monkeypatch):
    """One flush at a time, always of the newest file waiting: files staged while a flush runs ride on the next
    one. A file moved or removed meanwhile is skipped, and the flusher goes on."""
    started, release = threading.Event(), threading.Event()
    flushed: list[str] = []
    real = blobs._fsync_file

    def slow(name):
        if not name.startswith(str(tmp_path)):  # the process's own flusher, for another test's file
            return real(name)
        started.set()
        release.wait(10)
        real(name)
        flushed.append(name)

    monkeypatch.setattr(blobs, "_fsync_file", slow)
    files = []
    for n in range(4):
        files.append(tmp_path / f"f{n}")
        files[-1].write_bytes(b"x")
    flusher = blobs._EarlyFlusher()
    flusher.soon(str(files[0]))
    assert started.wait(10)
    for path in files[1:]:
        flusher.soon(str(path))
    release.set()
    assert _wait_for(lambda: flusher.flushed == 2)
    assert flushed == [str(files[0]), str(files[3])]
    flusher.soon(str(tmp_path / "gone"))  # moved under its key or discarded: skipped
    flusher.soon(str(files[1]))
    assert _wait_for(lambda: flusher.flushed == 3)
    assert flushed[-1] == str(files[1])


def test_a_forked_process_gets_its_own_early_flusher(monkeypatch):
    """A thread does not cross a fork: in a child (the parsing helpers are forked), the parent's flusher is not
    used, a new one is started. Seen from here by giving the current one another process's id."""
    current = blobs.early_flusher()
    assert blobs.early_flusher() is current and current.pid == os.getpid()
    monkeypatch.setattr(current, "pid", os.getpid() + 1)
    fresh = blobs.early_flusher()
    assert fresh is not current and fresh.pid == os.getpid() and blobs.early_flusher() is fresh


def _recording(monkeypatch, function: str, also: Callable[[], Any] | None = None) -> list[Any]:
    """What ``blobs.<function>`` is called with, in order (each call made for real first)."""
    calls: list[Any] = []
    real = getattr(blobs, function)

    def record(target):
        real(target)
        if also is not None:
            also()
        calls.append(target)

    monkeypatch.setattr(blobs, function, record)
    return calls


def _recording_folder_flushes(monkeypatch) -> list[Path]:
    return _recording(monkeypatch, "_fsync_directory")


async def test_the_folders_of_a_batch_are_each_flushed_once(tmp_path, monkeypatch):
    """Several folders are flushed side by side (one journal commit for all where the file system allows), each
    exactly once, before the batch returns: the folders renamed into, and those holding a folder made for the
    batch (a new folder is an entry of its parent, durable once that parent is flushed). A later batch into
    folders that exist flushes only the folders it renames into."""
    flushed = _recording_folder_flushes(monkeypatch)
    store = FilesystemBlobStore(tmp_path / "blobs")
    root = store.path_for("k/0/b0").parent.parent.parent
    items = [(f"k/{n}/b{n}", os.urandom(1000), "x") for n in range(6)] + [("k/0/again", b"z", "x")]
    assert await store.put_many_if_absent(items) == [True] * 7
    leaves = {store.path_for(key).parent for key, _d, _t in items}
    assert len(flushed) == len(set(flushed)) == len(leaves) + 2
    assert set(flushed) == leaves | {root, root / "k"}  # root holds k/, k/ holds 0/ to 5/
    flushed.clear()
    assert await store.put_many_if_absent([("k/1/later", b"l", "x"), ("k/2/later", b"m", "x")]) == [
        True,
        True,
    ]
    assert sorted(flushed) == [root / "k" / "1", root / "k" / "2"]


async def test_a_single_write_flushes_the_parents_of_the_folders_it_made(tmp_path, monkeypatch):
    flushed = _recording_folder_flushes(monkeypatch)
    store = FilesystemBlobStore(tmp_path / "blobs")
    await store.put("sha256/ab/cd/" + "e" * 64, b"contenu", "application/octet-stream")
    root = store.path_for("sha256/ab/cd/" + "e" * 64).parents[3]
    assert sorted(flushed) == sorted(
        [root, root / "sha256", root / "sha256" / "ab", root / "sha256" / "ab" / "cd"]
    )
    flushed.clear()
    await store.put("sha256/ab/ef/" + "f" * 64, b"autre", "application/octet-stream")
    assert sorted(flushed) == [root / "sha256" / "ab", root / "sha256" / "ab" / "ef"]  # ab/ holds the new ef/


async def test_s3_has_nothing_to_stage(s3_endpoint, s3_bucket):
    store = make_s3_store(s3_endpoint, s3_bucket)
    assert store.stager() is None
    await store.discard([None])
    assert await store.put_many_if_absent([("k/s3", b"data", "x")], [None]) == [True]


async def test_a_mapping_is_not_served_once_its_file_is_gone_or_replaced_behind_the_store(tmp_path):
    """A file removed by hand is not served from the mapping kept in memory; one replaced by hand is mapped again."""
    store = FilesystemBlobStore(tmp_path / "blobs", direct_writes=False)
    views = {}
    for key in ("k/a/gone", "k/a/replaced"):
        await store.put(key, b"first content", "x")
        store.path_for(key).read_bytes()  # in the page cache
        views[key] = store.mapped_if_cached(key, 0, 5)
        assert views[key] is not None and bytes(views[key]) == b"first"
    store.path_for("k/a/gone").unlink()
    assert store.mapped_if_cached("k/a/gone", 0, 5) is None
    path = store.path_for("k/a/replaced")
    path.with_name("new").write_bytes(b"other content")
    path.with_name("new").rename(path)
    again = store.mapped_if_cached("k/a/replaced", 0, 5)
    assert again is not None and bytes(again) == b"other"
    assert bytes(views["k/a/replaced"]) == b"first"  # a view handed out earlier keeps what it showed
