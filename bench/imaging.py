"""Imaging throughput against Orthanc, same run, same synthetic study (300 slices of 512×512 16-bit CT).

    python -m bench.imaging [--quick]

Télésanté runs as deployed (uvicorn process, SQLite, filesystem blob store, DICOM listener); Orthanc from Debian
(``orthanc`` + ``orthanc-dicomweb``) runs beside it on loopback with its SQLite index, TCP_NODELAY on, no storage
compression, when it is installed (this benchmark installs nothing). Both run during the whole measurement, and
each measure after C-STORE is taken in turns, one server then the other, the order reversed every round: the
machine's speed varies from minute to minute and both see the same. Measured for both:

1. **C-STORE ingest** — DCMTK ``storescu`` sends the whole study over one association (instances/s);
2. **STOW-RS ingest** — five more copies of the study (new UIDs) in POST requests of 30 instances (median
   instances/s), and the CPU time the server's processes spent per instance (a steadier figure than the rate on
   a shared machine);
3. **series metadata** — ``GET /studies/{s}/series/{se}/metadata``, median of repeated calls (ms);
4. **frames one by one** — ``GET …/instances/{i}/frames/1`` for every slice in turn, one client, keep-alive
   (frames/s, median of passes); then the same with 6 connections at a time, as the viewer fetches them;
5. **series retrieval** — ``GET /studies/{s}/series/{se}`` (WADO-RS multipart), bytes read by the client (MB/s,
   median of passes).

STOW-RS, frames and series retrieval go through curl (C, keep-alive), metadata through httpx, C-STORE with
storescu; the clients share the machine's two cores with the server. Each STOW-RS and frames figure is the median
of several passes, after a warm-up. Right before each timed ingest (C-STORE, each STOW-RS copy) the file system is
synced (``os.sync``, not timed): the request bodies the benchmark has just written (150 MB a copy), and whatever
else waits in the page cache, would otherwise be written out by the kernel during the turn, on that server's time
and in front of its own flushes (both servers flush every file they receive). curl fetching a frame's bytes from a
bare ASGI app (``bench/bare_asgi.py``, no work at all) gives the ceiling any Python server can reach here. Télésanté is called with a bearer token
(every request authenticated, scoped and audited as in production); Orthanc without authentication. Goals (issue 4):
ingest ≥ 2× Orthanc, metadata ≤ 50 ms, frames ≥ 5× Orthanc, series retrieval ≥ Orthanc. The last line is one JSON
object with the figures and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.notify import ROOT, _free_port, migrate, start_instance, stop_instance
from telesante.imaging.phantom import head_ct, write_series

AE_SCU = "BENCH_SCU"
STOW_BATCH = 30
# Each pass of "frames one by one" scrolls through the series this many times in one curl run: curl's own start
# (~7 ms here) then weighs ~2 % of a pass instead of ~6 % (it is the same for both servers, but a fixed cost
# hides the faster one's speed more).
FRAME_SCROLLS = 3
STOW_COPIES = 5  # copies of the study sent by STOW-RS (new UIDs each): the median rate
GOALS = {"ingest_ratio": 2.0, "metadata_ms": 50.0, "frames_ratio": 5.0, "retrieval_ratio": 1.0}
ORTHANC_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- Télésanté ----------------------------------------------------------------------------------------------


async def seed() -> dict[str, str]:
    """A hospital with its scanner declared as a DICOM peer, and a radiologist's API token."""
    import telesante.models  # noqa: F401 - every model registered
    from telesante.auth import service as auth_service
    from telesante.config import Settings
    from telesante.db import Database
    from telesante.directory import service as directory_service
    from telesante.directory.models import OrganisationType, Profession, Role
    from telesante.directory.schemas import MembershipCreate, OrganisationCreate, ProfessionalCreate
    from telesante.imaging import service as imaging_service
    from telesante.kit.identifiers import finess_with_key, rpps_with_key

    database = Database(Settings())
    async with database.sessionmaker() as session:
        hospital = await directory_service.create_organisation(
            session,
            None,
            OrganisationCreate(
                finess=finess_with_key("35000001"),
                name="CH de Fougères",
                type=OrganisationType.CH,
                commune_insee="35115",
                city="Fougères",
                postal_code="35300",
            ),
        )
        professional = await directory_service.create_professional(
            session,
            None,
            ProfessionalCreate(
                rpps=rpps_with_key("1000000001"),
                family_name="Radiologue",
                given_name="Claire",
                profession=Profession.MEDECIN,
                specialty="Radiologie",
            ),
        )
        await directory_service.add_membership(
            session,
            None,
            MembershipCreate(
                professional_id=professional.id, organisation_id=hospital.id, role=Role.REQUESTER
            ),
        )
        email = "radiologue@bench.telesante.fr"
        await auth_service.create_account(
            session, None, professional_id=professional.id, email=email, password="Bench-imaging-2026!"
        )
        token, _ = await auth_service.create_api_token(session, email=email, name="bench")
        await imaging_service.register_peer(session, None, hospital.id, AE_SCU, "Banc d'essai")
        await session.commit()
    await database.dispose()
    return {"token": token}


def seed_in_subprocess(env: dict[str, str]) -> dict[str, str]:
    code = "import asyncio, json; from bench.imaging import seed; print(json.dumps(asyncio.run(seed())))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Target:
    name: str
    dicomweb: str  # base URL of DICOMweb
    dicom_port: int
    called_ae: str
    headers: dict[str, str]
    process: Any


def start_telesante(work: Path) -> Target:
    port = _free_port()
    (work / "telesante").mkdir()
    env = {
        **os.environ,
        "TELESANTE_DATA_DIR": str(work / "telesante"),
        "TELESANTE_SECRET_KEY": "bench-imaging-secret-key-0123456789",
        "TELESANTE_DEMO": "0",
        "TELESANTE_LOG_LEVEL": "WARNING",
        "TELESANTE_DICOM_PORT": str(port),
        "TELESANTE_JOBS_ENABLED": "0",
    }
    env.pop("TELESANTE_DATABASE_URL", None)
    migrate(env)
    info = seed_in_subprocess(env)
    instance = start_instance(env)
    return Target(
        "telesante",
        f"{instance.url}/dicomweb",
        port,
        "TELESANTE",
        {"Authorization": f"Bearer {info['token']}"},
        instance,
    )


def start_orthanc(work: Path) -> Target | None:
    binary = shutil.which("Orthanc")
    if binary is None or not ORTHANC_PLUGIN.exists():
        return None
    http_port, dicom_port = _free_port(), _free_port()
    folder = work / "orthanc"
    folder.mkdir()
    config = {
        "Name": "bench",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "StorageCompression": False,
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "TcpNoDelay": True,
        "HttpsVerifyPeers": False,
        "Plugins": [str(ORTHANC_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        "ConcurrentJobs": 2,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [binary, str(folder / "orthanc.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("Orthanc exited at start-up")
        try:
            if httpx.get(url + "/system", timeout=1).status_code == 200:
                return Target("orthanc", f"{url}/dicom-web", dicom_port, "ORTHANC", {}, process)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("Orthanc did not start within 30 s")


def stop(target: Target) -> None:
    if target.name == "telesante":
        stop_instance(target.process)
    else:
        target.process.terminate()
        try:
            target.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            target.process.kill()


# --- measures -----------------------------------------------------------------------------------------------


def c_store(target: Target, folder: Path) -> float:
    """storescu, one association, the whole folder: instances per second."""
    count = len(list(folder.glob("*.dcm")))
    started = time.perf_counter()
    done = subprocess.run(
        [
            "storescu",
            "-aet",
            AE_SCU,
            "-aec",
            target.called_ae,
            "+sd",
            "127.0.0.1",
            str(target.dicom_port),
            str(folder),
        ],
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"storescu to {target.name} failed: {done.stdout[-500:]}{done.stderr[-500:]}")
    return count / elapsed


def _multipart(files: list[bytes]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    body = bytearray()
    for data in files:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += data
        body += b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow(target: Target, files: list[bytes], work: Path) -> float:
    """POST the instances in requests of ``STOW_BATCH`` with curl (bodies built and written beforehand, one
    keep-alive connection): instances per second."""
    lines: list[str] = []
    for number, start in enumerate(range(0, len(files), STOW_BATCH)):
        body, content_type = _multipart(files[start : start + STOW_BATCH])
        path = work / f"stow-{target.name}-{number}.bin"
        path.write_bytes(body)
        if lines:
            lines.append("next")
        headers = {**target.headers, "Content-Type": content_type, "Accept": "application/dicom+json"}
        headers["Expect"] = ""  # no "100-continue" round trip (Orthanc's server lets curl wait 1 s for it)
        lines += [
            f'header = "{name}: {value.replace(chr(34), chr(92) + chr(34))}"'
            for name, value in headers.items()
        ]
        # streamed from its file as it is sent (``upload-file``); ``data-binary = "@…"`` read every body of the run
        # into memory before the first request, 157 MB in ~150 ms counted in the run's time (until 2026-12-05)
        lines += [
            f'url = "{target.dicomweb}/studies"',
            f'upload-file = "{path}"',
            'request = "POST"',
            'output = "/dev/null"',
        ]
        lines.append('write-out = "%{http_code}\\n"')
    config = work / f"stow-{target.name}.curl"
    config.write_text("\n".join(lines) + "\n")
    command = ["curl", "--silent", "--config", str(config)]
    # not timed: the bodies just written (and anything else waiting) are not written out during this server's turn,
    # on its time and in front of its own flushes
    os.sync()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    codes = done.stdout.split()
    if done.returncode != 0 or codes != ["200"] * len(range(0, len(files), STOW_BATCH)):
        raise RuntimeError(f"STOW to {target.name}: curl {done.returncode} {codes} {done.stderr[-300:]}")
    for leftover in work.glob(f"stow-{target.name}-*"):
        leftover.unlink()
    return len(files) / elapsed


async def uids(client: httpx.AsyncClient, target: Target, study_uid: str) -> tuple[str, list[str]]:
    response = await client.get(f"{target.dicomweb}/studies/{study_uid}/series", headers=target.headers)
    response.raise_for_status()
    series_uid = response.json()[0]["0020000E"]["Value"][0]
    response = await client.get(
        f"{target.dicomweb}/studies/{study_uid}/series/{series_uid}/instances", headers=target.headers
    )
    response.raise_for_status()
    instances = sorted(response.json(), key=lambda item: item.get("00200013", {}).get("Value", [0])[0])
    return series_uid, [item["00080018"]["Value"][0] for item in instances]


async def series_metadata(
    client: httpx.AsyncClient, target: Target, study: str, series: str, repeats: int
) -> float:
    url = f"{target.dicomweb}/studies/{study}/series/{series}/metadata"
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = await client.get(url, headers={**target.headers, "Accept": "application/dicom+json"})
        response.raise_for_status()
        assert len(response.json()) > 0
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def curl(
    urls: list[str], headers: dict[str, str], connections: int = 1
) -> tuple[float, list[tuple[int, int]]]:
    """GET every URL with curl (C, keep-alive; ``connections`` at a time), bodies discarded: elapsed seconds and
    (status, bytes) per URL. A client this light measures the server, not itself (httpx tops out near 550
    frames/s here against an application that does nothing)."""
    lines = [
        f'header = "{name}: {value.replace(chr(34), chr(92) + chr(34))}"' for name, value in headers.items()
    ]
    for url in urls:
        lines += [f'url = "{url}"', 'output = "/dev/null"']
    with tempfile.NamedTemporaryFile("w", suffix=".curl") as config:
        config.write("\n".join(lines) + "\n")
        config.flush()
        command = [
            "curl",
            "--silent",
            "--config",
            config.name,
            "--write-out",
            "%{http_code} %{size_download}\n",
        ]
        if connections > 1:
            command += ["--parallel", "--parallel-immediate", "--parallel-max", str(connections)]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
    outcomes = [(int(code), int(size)) for code, size in (line.split() for line in done.stdout.splitlines())]
    if done.returncode != 0 or len(outcomes) != len(urls):
        raise RuntimeError(f"curl failed ({done.returncode}): {done.stderr[-300:]}")
    return elapsed, outcomes


def frames(target: Target, study: str, series: str, sops: list[str], connections: int, repeats: int) -> float:
    """Every slice's frame, one request each, ``connections`` at a time (the viewer uses 6), the series scrolled
    through FRAME_SCROLLS times in each pass: the median of ``repeats`` passes, in frames per second."""
    headers = {**target.headers, "Accept": 'multipart/related; type="application/octet-stream"'}
    urls = [f"{target.dicomweb}/studies/{study}/series/{series}/instances/{sop}/frames/1" for sop in sops]
    urls *= FRAME_SCROLLS
    rates = []
    for _ in range(repeats):
        elapsed, outcomes = curl(urls, headers, connections)
        if any(status != 200 or size < 512 * 512 * 2 for status, size in outcomes):
            raise RuntimeError(f"frames from {target.name}: {sorted(set(outcomes))[:3]}")
        rates.append(len(urls) / elapsed)
    return statistics.median(rates)


def retrieval(target: Target, study: str, series: str, repeats: int) -> float:
    """The whole series as one WADO-RS multipart: median MB/s of ``repeats`` retrievals."""
    headers = {**target.headers, "Accept": 'multipart/related; type="application/dicom"'}
    rates = []
    for _ in range(repeats):
        elapsed, [(status, size)] = curl([f"{target.dicomweb}/studies/{study}/series/{series}"], headers)
        if status != 200:
            raise RuntimeError(f"series retrieval from {target.name}: {status}")
        rates.append(size / 1e6 / elapsed)
    return statistics.median(rates)


def _pid(target: Target) -> int:
    return target.process.process.pid if target.name == "telesante" else target.process.pid


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and of every process under it (Télésanté's parsing helpers run under
    its fork server), from /proc (Linux). A child belongs to the thread that started it: every thread is asked."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children: list[str] = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                children += (task / "children").read_text().split()
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that has just ended
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return total
    return total + sum(cpu_seconds(int(child)) for child in children)


def _turns(targets: list[Target], number: int) -> list[Target]:
    """The targets in turn, the order reversed every other round: neither always runs first."""
    return targets if number % 2 == 0 else targets[::-1]


async def measure(targets: list[Target], work: Path, slices: int, repeats: int) -> dict[str, dict[str, Any]]:
    """Every measure on every target, side by side: both servers run during the whole measurement and each
    measure is taken on one then the other, in turns (this machine's speed varies from one minute to the next)."""
    results: dict[str, dict[str, Any]] = {target.name: {} for target in targets}
    cstore_files = head_ct(slices)
    folder = write_series(work / "cstore", cstore_files)
    from pydicom import dcmread

    study_uid = dcmread(folder / "IM00001.dcm", stop_before_pixels=True).StudyInstanceUID
    for target in targets:
        _progress(f"[{target.name}] C-STORE of {slices} slices…")
        os.sync()  # nothing left to write from before: each server's turn writes its own files only
        results[target.name]["cstore_instances_per_s"] = c_store(target, folder)
    _progress("STOW-RS…")
    for target in targets:
        stow(target, head_ct(2, patient_id="IPP-0001"), work)  # warm-up (helper processes, caches)
    rates: dict[str, list[float]] = {target.name: [] for target in targets}
    cpu: dict[str, float] = dict.fromkeys(rates, 0.0)
    for number in range(STOW_COPIES):
        copy = head_ct(slices, patient_id=f"IPP-{number + 2:04d}")
        for target in _turns(targets, number):
            before = cpu_seconds(_pid(target))
            rates[target.name].append(stow(target, copy, work))
            cpu[target.name] += cpu_seconds(_pid(target)) - before
    for target in targets:
        results[target.name]["stow_instances_per_s"] = statistics.median(rates[target.name])
        results[target.name]["stow_cpu_ms_per_instance"] = cpu[target.name] * 1000 / (STOW_COPIES * slices)
        # each copy's rate, in the order sent: how much this VM moved during the measure
        results[target.name]["stow_copies_per_s"] = [round(rate, 1) for rate in rates[target.name]]
    sops_of: dict[str, tuple[str, list[str]]] = {}
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_keepalive_connections=6)) as client:
        for target in targets:
            series_uid, sops = await uids(client, target, study_uid)
            if len(sops) != slices:
                raise RuntimeError(f"{target.name} indexed {len(sops)} of {slices} instances")
            sops_of[target.name] = (series_uid, sops)
            _progress(f"[{target.name}] metadata…")
            await series_metadata(client, target, study_uid, series_uid, 1)  # warm-up
            results[target.name]["series_metadata_ms"] = await series_metadata(
                client, target, study_uid, series_uid, repeats
            )
    _progress("frames, retrieval…")
    for (
        target
    ) in targets:  # warm-up: Télésanté wrote the files with direct I/O, the first reading is from disk
        frames(target, study_uid, sops_of[target.name][0], sops_of[target.name][1], 1, 1)
    for key, connections in (("frames_per_s", 1), ("frames_6_connections_per_s", 6)):
        passes: dict[str, list[float]] = {target.name: [] for target in targets}
        for number in range(repeats):
            for target in _turns(targets, number):
                series_uid, sops = sops_of[target.name]
                passes[target.name].append(frames(target, study_uid, series_uid, sops, connections, 1))
        for target in targets:
            results[target.name][key] = statistics.median(passes[target.name])
    passes = {target.name: [] for target in targets}
    for number in range(repeats):
        for target in _turns(targets, number):
            passes[target.name].append(retrieval(target, study_uid, sops_of[target.name][0], 1))
    for target in targets:
        results[target.name]["series_retrieval_mb_per_s"] = statistics.median(passes[target.name])
    return {
        name: {
            key: value if isinstance(value, list) else round(value, 2 if "cpu" in key else 1)
            for key, value in figures.items()
        }
        for name, figures in results.items()
    }


async def client_ceiling(count: int, repeats: int) -> float:
    """Frames per second the same client reaches against a bare ASGI app sending a frame's bytes (no work at all)."""
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *(
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_asgi:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/frame"
        deadline = time.monotonic() + 30
        while True:
            try:
                await asyncio.to_thread(httpx.get, url)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        return round(statistics.median(count / curl([url] * count, {})[0] for _ in range(repeats)), 1)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)


def _ratio(ours: float, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if theirs else None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 slices instead of 300, fewer repeats")
    args = parser.parse_args()
    slices, repeats = (60, 3) if args.quick else (300, 7)
    if shutil.which("storescu") is None:
        raise SystemExit("storescu manquant : apt-get install dcmtk")
    with tempfile.TemporaryDirectory(prefix="bench-imaging-") as tmp:
        work = Path(tmp)
        targets: list[Target] = []
        try:
            for start in (start_telesante, start_orthanc):
                target = start(work)
                if target is None:
                    _progress(
                        "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb): no comparison"
                    )
                    continue
                targets.append(target)
            figures = await measure(targets, work, slices, repeats)
        finally:
            for target in targets:
                stop(target)
        for name, values in figures.items():
            _progress(f"[{name}] {values}")
    ceiling = await client_ceiling(slices * FRAME_SCROLLS, repeats)
    _progress(f"[client ceiling] {ceiling} frames/s against a bare ASGI app")
    ours, theirs = figures["telesante"], figures.get("orthanc")
    ratios = {}
    if theirs:
        ratios = {
            "cstore": _ratio(ours["cstore_instances_per_s"], theirs["cstore_instances_per_s"]),
            "stow": _ratio(ours["stow_instances_per_s"], theirs["stow_instances_per_s"]),
            "stow_cpu_per_instance": _ratio(
                theirs["stow_cpu_ms_per_instance"], ours["stow_cpu_ms_per_instance"]
            ),
            "series_metadata": _ratio(theirs["series_metadata_ms"], ours["series_metadata_ms"]),
            "frames": _ratio(ours["frames_per_s"], theirs["frames_per_s"]),
            "frames_6_connections": _ratio(
                ours["frames_6_connections_per_s"], theirs["frames_6_connections_per_s"]
            ),
            "series_retrieval": _ratio(
                ours["series_retrieval_mb_per_s"], theirs["series_retrieval_mb_per_s"]
            ),
        }
    goals_met = {
        "ingest_2x": bool(ratios) and min(ratios["cstore"], ratios["stow"]) >= GOALS["ingest_ratio"],
        "metadata_50ms": ours["series_metadata_ms"] <= GOALS["metadata_ms"],
        "frames_5x": bool(ratios) and ratios["frames"] >= GOALS["frames_ratio"],
        "retrieval_1x": bool(ratios) and ratios["series_retrieval"] >= GOALS["retrieval_ratio"],
    }
    print(
        json.dumps(
            {
                "benchmark": "imaging",
                "slices": slices,
                "telesante": ours,
                "orthanc": theirs,
                "ratios_telesante_over_orthanc": ratios,
                "client_ceiling_frames_per_s": ceiling,
                "client_ceiling_over_orthanc_frames": _ratio(ceiling, theirs["frames_per_s"])
                if theirs
                else None,
                "goals_met": goals_met,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
