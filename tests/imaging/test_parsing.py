"""DICOM parsing in a helper process (imaging/parsing.py): the same result and the same refusals as in the server's
process, and a helper that dies does not lose the instance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from telesante.imaging import parsing
from telesante.imaging.dicom import InvalidDicom, parse_instance


@pytest.fixture(autouse=True)
def fresh_pool():
    parsing.shutdown()
    yield
    parsing.shutdown()


async def test_a_helper_process_gives_the_same_instance(ct_series):
    data = ct_series(1)[0]
    parsed = await parsing.parse(data, processes=1)
    assert parsed == parse_instance(data)
    assert parsed.frames == [[(parsed.frames[0][0][0], 512 * 512 * 2)]]
    in_thread = await parsing.parse(data, processes=0)
    assert in_thread == parsed


@pytest.mark.parametrize("processes", [0, 1])
async def test_refusals_keep_their_reason(ct_series, processes):
    truncated = ct_series(1)[0][:-1000]
    with pytest.raises(InvalidDicom) as caught:
        await parsing.parse(truncated, processes=processes)
    assert "tronqué" in caught.value.message
    assert caught.value.field == "PixelData"
    with pytest.raises(InvalidDicom) as caught:
        await parsing.parse(b"\0" * 200, processes=processes)
    assert "DICM" in caught.value.message


async def test_a_helper_that_dies_is_replaced(ct_series):
    first, second = ct_series(2)
    assert (await parsing.parse(first, processes=1)).sop_instance_uid == parse_instance(
        first
    ).sop_instance_uid
    pool = parsing._pool
    killed = [helper.process.pid for helper in pool.helpers]
    assert len(killed) == 1
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    # the instance in flight when the helper died is parsed in a thread; the next one gets a new helper
    assert (await parsing.parse(second, processes=1)).sop_instance_uid == parse_instance(
        second
    ).sop_instance_uid
    assert (await parsing.parse(first, processes=1)).sop_instance_uid == parse_instance(
        first
    ).sop_instance_uid
    assert [helper.process.pid for helper in parsing._pool.helpers] != killed
    assert all(helper.process.is_alive() for helper in parsing._pool.helpers)


def test_helpers_end_with_a_server_killed_without_shutdown(ct_series, tmp_path):
    """A server killed with SIGKILL runs no shutdown: its helper and the fork server must still go."""
    sample = tmp_path / "slice.dcm"
    sample.write_bytes(ct_series(1)[0])
    code = (
        "import asyncio, json, os, signal, multiprocessing.forkserver as fs\n"
        "from telesante.imaging import parsing\n"
        f"data = open({str(sample)!r}, 'rb').read()\n"
        "asyncio.run(parsing.parse(data, 1))\n"
        "pids = [helper.process.pid for helper in parsing._pool.helpers]\n"
        "print(json.dumps([*pids, fs._forkserver._forkserver_pid]), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    helpers = json.loads(server.stdout.readline())
    assert len(helpers) == 2

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # a zombie (ended, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.1)  # the killed server is not reaped yet here: a zombie, which must count as gone
    assert not any(alive(pid) for pid in helpers)
    assert server.wait(timeout=10) == -signal.SIGKILL
    server.stdout.close()


def test_a_parsed_instance_crosses_processes_as_text_and_reads_back_the_same_metadata(ct_series):
    """What the helper sends back carries the DICOM JSON as text only (the nested form is made again, lazily, where
    it is read): cheaper both ways, and the same attributes."""
    import pickle

    parsed = parse_instance(ct_series(1)[0])
    assert "metadata" in parsed.__dict__ and "metadata" not in parsed.__getstate__()
    copy = pickle.loads(pickle.dumps(parsed))  # noqa: S301 - our own bytes, as multiprocessing does
    assert "metadata" not in copy.__dict__
    assert copy == parsed and copy.metadata == parsed.metadata == json.loads(parsed.metadata_text)
    assert copy.metadata["00100010"]["vr"] == "PN"


async def test_the_pipe_to_the_helpers_holds_a_whole_slice(ct_series):
    """A 512 KiB slice crosses to its helper in one write (the pipe is widened from Linux's 64 KiB to 1 MiB)."""
    import fcntl

    await parsing.parse(ct_series(1)[0], processes=1)
    (helper,) = parsing._pool.helpers
    assert fcntl.fcntl(helper.requests.fileno(), fcntl.F_GETPIPE_SZ) == parsing._PIPE_BYTES == 1024 * 1024


async def test_helpers_share_the_work_answer_in_order_and_end_at_shutdown(ct_series):
    """Several instances at once go to the helper with the fewest in hand; each gets its own answer (the pipe's
    answers come back in order), refusals included; ``aclose`` ends the helpers."""
    import asyncio

    series = ct_series(6)
    parts = [series[0], b"\0" * 200, *series[1:]]
    outcomes = await asyncio.gather(
        *(parsing.parse(part, processes=2) for part in parts), return_exceptions=True
    )
    assert isinstance(outcomes[1], InvalidDicom)
    assert [o.sop_instance_uid for o in outcomes if not isinstance(o, Exception)] == [
        parse_instance(data).sop_instance_uid for data in series
    ]
    helpers = list(parsing._pool.helpers)
    assert len(helpers) == 2
    await parsing.aclose()
    assert parsing._pool is None
    assert not any(helper.process.is_alive() for helper in helpers)


async def test_a_bug_in_a_helper_falls_back_to_a_thread(ct_series, tmp_path, caplog):
    """Anything else than a refusal raised in the helper (a bug) is told to the server, which parses the instance in
    a thread: the instance is not lost, and the helper lives on."""
    import functools

    from telesante.storage.blobs import FilesystemBlobStore

    class HelperOnlyBug:
        """Stages through a real stager in the server; in the helper it arrives as ``int("no", data)``."""

        def __init__(self, stager):
            self.stager = stager

        def __reduce__(self):
            return (functools.partial, (int, "no"))

        def __call__(self, data):
            return self.stager(data)

    data = ct_series(1)[0]
    expected = await parsing.parse(data, processes=1)
    (helper,) = parsing._pool.helpers
    stager = HelperOnlyBug(FilesystemBlobStore(tmp_path / "blobs").stager())
    parsed, staged = await parsing.parse_and_stage(data, 1, None, stager)
    assert parsed == expected and (tmp_path / "blobs" / ".staging" / Path(staged).name).read_bytes() == data
    assert "DICOM parsing helper failed" in caplog.text and "TypeError" in caplog.text
    assert parsing._pool.helpers == [helper] and helper.process.is_alive()


async def test_a_helper_that_cannot_start_leaves_the_parsing_to_a_thread(ct_series, monkeypatch, caplog):
    """No process can be started (the machine's limit, a fork server gone): the instance is parsed in a thread and
    the failure is in the log; the next instance tries again."""
    import multiprocessing.context

    def refuse(self):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.context.ForkServerProcess, "start", refuse)
    data = ct_series(1)[0]
    assert await parsing.parse(data, processes=1) == parse_instance(data)
    assert "could not be started" in caplog.text and parsing._pool.helpers == []
    monkeypatch.undo()
    assert await parsing.parse(data, processes=1) == parse_instance(data)
    assert len(parsing._pool.helpers) == 1


async def test_another_number_of_helpers_replaces_the_pool(ct_series):
    """The setting changed (another number of helpers): the old helpers finish and end, the new ones take over."""
    data = ct_series(1)[0]
    await parsing.parse(data, processes=1)
    old = list(parsing._pool.helpers)
    assert await parsing.parse(data, processes=2) == parse_instance(data)
    assert len(parsing._pool.helpers) == 2 and not set(parsing._pool.helpers) & set(old)
    assert not any(helper.process.is_alive() for helper in old)


async def test_a_helper_stages_in_order_while_parsing_and_answers_everything_before_it_ends(
    ct_series, tmp_path, caplog
):
    """A helper hands each parsed instance to its writer thread (staging waits for the disk) and parses the next one
    meanwhile: the answers still come back in order, refusals (never staged) among them, each staged file holding
    its own instance's bytes. Closed with all of them in hand, the helper answers them all before it ends."""
    import asyncio

    from telesante.storage.blobs import FilesystemBlobStore

    stager = FilesystemBlobStore(tmp_path / "blobs").stager()
    series = ct_series(5)
    parts = [series[0], b"\0" * 200, series[1], series[2], series[3][:-1000], series[4]]
    await parsing.parse(series[0], processes=1)  # the helper is up
    (helper,) = parsing._pool.helpers
    pending = [asyncio.ensure_future(parsing.parse_and_stage(part, 1, None, stager)) for part in parts]
    while len(helper.waiting) < len(parts):  # noqa: ASYNC110 - a plain condition, no event to wait on
        await asyncio.sleep(0.001)
    await parsing.aclose()
    outcomes = await asyncio.gather(*pending, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [tuple, InvalidDicom, tuple, tuple, InvalidDicom, tuple]
    for part, outcome in zip(parts, outcomes, strict=True):
        if isinstance(outcome, tuple):
            parsed, staged = outcome
            assert parsed.sop_instance_uid == parse_instance(part).sop_instance_uid
            assert (tmp_path / "blobs" / ".staging" / Path(staged).name).read_bytes() == part
    assert len(list((tmp_path / "blobs" / ".staging").iterdir())) == 4
    assert "helper" not in caplog.text  # no death, no fallback: the helper answered everything itself
    assert not helper.process.is_alive()


async def test_an_empty_part_and_one_larger_than_the_pipe_cross_to_a_helper(ct_series, caplog):
    """The helper reads a request in as many reads as the pipe needs: an empty part is refused with its reason, a
    2 MiB instance (twice the pipe) parses as in the server, and the helper lives on."""
    import io

    import pydicom

    dataset = pydicom.dcmread(io.BytesIO(ct_series(1)[0]))
    dataset.Rows = dataset.Columns = 1024
    dataset.PixelData = os.urandom(1024 * 1024 * 2)
    out = io.BytesIO()
    dataset.save_as(out)
    large = out.getvalue()
    assert len(large) > parsing._PIPE_BYTES
    with pytest.raises(InvalidDicom) as caught:
        await parsing.parse(b"", processes=1)
    assert "DICM" in caught.value.message
    (helper,) = parsing._pool.helpers
    assert await parsing.parse(large, processes=1) == parse_instance(large)
    assert parsing._pool.helpers == [helper] and helper.process.is_alive()
    assert "helper" not in caplog.text


@pytest.mark.parametrize("lending", [True, False], ids=["lent", "copied"])
async def test_slices_lent_to_the_pipe_reach_the_helpers_byte_for_byte(ct_series, monkeypatch, lending):
    """A slice is lent to the pipe (``vmsplice``: the server does not copy it) when the pipe's transport has nothing
    waiting, and copied into it otherwise, or everywhere when lending is refused (a sandbox filtering the call):
    either way each helper reads exactly the bytes sent, several slices in flight at once."""
    import asyncio

    lent = []
    lend = parsing._lend
    monkeypatch.setattr(parsing, "_lend", lambda fd, piece: lent.append(len(piece)) or lend(fd, piece))
    monkeypatch.setattr(parsing, "_vmsplice_works", lending and parsing._vmsplice is not None)
    series = ct_series(8)
    outcomes = await asyncio.gather(*(parsing.parse(bytes(part), processes=2) for part in series))
    assert [o.sha256 for o in outcomes] == [parse_instance(part).sha256 for part in series]
    if lending:
        assert lent and all(size >= parsing._LEND_BYTES for size in lent)
    else:
        assert lent == []


async def test_views_of_received_chunks_are_lent_and_held_until_the_helper_answers(ct_series, monkeypatch):
    """A part read by the HTTP protocol comes as views of its received chunks (``zerocopy.ReceivedChunk``): lent to
    the pipe like ``bytes``, byte for byte, and held with the request until the helper has answered, even when the
    caller stopped waiting (a cancelled request): the pipe still refers to their pages, and a chunk nothing refers to
    is written again (``zerocopy._new_chunk``)."""
    from telesante.web.zerocopy import ReceivedChunk
    from tests.events.conftest import wait_for

    if parsing._vmsplice is None:  # not Linux: nothing is lent, the copy path is tested above
        pytest.fail("vmsplice is expected on the platform's Linux hosts")
    part = ct_series(1)[0]
    chunk = ReceivedChunk(part)
    pieces = [memoryview(chunk)[:300_000], memoryview(chunk)[300_000:]]
    lent = []
    lend = parsing._lend
    monkeypatch.setattr(parsing, "_lend", lambda fd, piece: lent.append(type(piece)) or lend(fd, piece))
    monkeypatch.setattr(parsing, "_vmsplice_works", True)
    assert (await parsing.parse(pieces, processes=1)).sha256 == parse_instance(part).sha256
    assert lent == [memoryview, memoryview]

    pool = await parsing._current_pool(1)
    helper = await pool.helper()
    waiter = helper.send(pool.loop, [memoryview(chunk)[:300_000], memoryview(chunk)[300_000:]], None)
    waiter.cancel()  # the request went away: the pieces stay with the request until the answer
    held = helper.waiting[-1][1]
    assert [piece.obj for piece in held] == [chunk, chunk]
    await wait_for(lambda: not helper.waiting, "the helper answers the cancelled request")
    del pieces, held  # this test's own views
    alone = ReceivedChunk(1)
    assert sys.getrefcount(chunk) == sys.getrefcount(alone)  # the answer let the pieces go
