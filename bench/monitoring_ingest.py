"""Remote-monitoring ingest: readings posted by device gateways in FHIR batch Bundles, rules evaluated on arrival.

    python -m bench.monitoring_ingest [--quick] [--patients N] [--batch N] [--clients N] [--history-days N] [--rounds N]

Issue 7: observations for 10,000 enrolled patients (1,000 with ``--quick``), on SQLite (one instance, the embedded
default) and on PostgreSQL (two instances behind the client, Redis bus, as a region scales out). Goals: ≥ 20,000
observations/s on PostgreSQL, ≥ 5,000 on SQLite, reading-to-alert-on-stream p99 ≤ 100 ms.

The region is seeded through the real services: the CHU's heart-failure telemonitoring team (operator, device
gateway account), a general hospital's cardiologist who registers and enrols every patient (the act's and the
programme's consents, a connected scale each). Then, with real server processes (uvicorn, the application as
deployed) and real clients (httpx over TCP; ``httpx-sse`` reading ``GET /evenements`` as the operator's browser does),
after a warm-up of history (each patient's weight 66 hours before, and with ``--history-days N`` one a day on the N - 1
days before it, not timed; then, on PostgreSQL, ``ANALYZE``,
as autovacuum does in a running region):

1. **throughput** — ``--clients`` concurrent gateways post batch Bundles of ``--batch`` weight Observations (three
   days of stable weights per patient, a device identifier per reading, so every entry is new), each entry checked,
   converted, stored once, and the rules of its patient evaluated in the same request. Observations/s = entries
   answered ``201 Created`` / wall time. The load runs ``--rounds`` times (3), each with new readings: the median
   round's figure is reported, and each round's (the host's speed varies by a third from one run to the next);
2. **alert latency** — meanwhile, and again on a quiet server, a probe gateway posts single-entry Bundles carrying a
   weight 3 kg above that patient's (heart failure: +2 kg in 3 days is red); the clock runs from the post leaving
   the client to the ``monitoring.alert`` event for that patient on the operator's open stream (each round's probes
   go to other patients; the percentiles are those of every round's probes).

The gateways run in a process of their own (as they would on other machines): the operator's stream and the probe
are read in this one, whose event loop is then not busy parsing the gateways' 500-entry answers (it was until
2026-12-05 07:00 UTC). The peer in the same run is the database's own bulk load of the same FHIR JSON rows: PostgreSQL ``COPY`` into a table
of ``jsonb`` (the issue quotes about 26,000/s; here it runs at 122,000–145,000/s), SQLite ``executemany`` into a table of
JSON text. The clients share the machine's two cores with the servers and the database. The last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from bench.notify import (
    REDIS_URL,
    migrate,
    percentile,
    recreate_database,
    server_env,
    start_instance,
    stop_instance,
)
from bench.stroke_alert import machine

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "monitoring_bench"
PASSWORD = "Bench-monitoring-2026!"
GOAL_PG = 20_000
GOAL_SQLITE = 5_000
GOAL_ALERT_P99_MS = 100.0
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
FAMILY_NAMES = ["DUFOUR", "LEROY", "MOREAU", "LEFEBVRE", "DUBOIS", "LAMBERT", "BONNET", "FRANCOIS", "MARTIN"]
GIVEN_NAMES = ["Marcel", "Jeanne", "Louis", "Germaine", "André", "Simone", "Roger", "Odette"]


# --- seed: a telemonitoring team and its patients through the real services ---------------------------------------


async def seed(patients: int) -> dict[str, Any]:
    """Runs in this process against the database of the environment (TELESANTE_*)."""
    import telesante.models  # noqa: F401 - every model registered
    from telesante.auth import service as auth_service
    from telesante.config import Settings
    from telesante.consents.models import ConsentDecision
    from telesante.db import Database
    from telesante.directory import service as directory_service
    from telesante.directory.models import OrganisationType, Profession, Role
    from telesante.directory.schemas import MembershipCreate, OrganisationCreate, ProfessionalCreate
    from telesante.kit.identifiers import finess_with_key, rpps_with_key
    from telesante.monitoring import service as monitoring
    from telesante.monitoring.schemas import DeviceIn, EnrolmentCreate, ProgrammeCreate
    from telesante.patients import service as patient_service
    from telesante.patients.schemas import PatientCreate

    counter = iter(range(1, 1_000_000))

    async def organisation(session, name, kind=OrganisationType.CH):
        n = next(counter)
        return await directory_service.create_organisation(
            session,
            None,
            OrganisationCreate(
                finess=finess_with_key(f"59{n:06d}"),
                name=name,
                type=kind,
                commune_insee="59350",
                city="Lille",
                postal_code="59000",
            ),
        )

    async def person(session, org, role, family, profession=Profession.MEDECIN):
        n = next(counter)
        professional = await directory_service.create_professional(
            session,
            None,
            ProfessionalCreate(
                rpps=rpps_with_key(f"2{n:09d}"),
                family_name=family,
                given_name="Claire",
                profession=profession,
                specialty="",
            ),
        )
        await directory_service.add_membership(
            session,
            None,
            MembershipCreate(professional_id=professional.id, organisation_id=org.id, role=role),
        )
        email = f"bench{n}@tls.telesante.fr"
        account = await auth_service.create_account(
            session, None, professional_id=professional.id, email=email, password=PASSWORD
        )
        token, _ = await auth_service.create_api_token(session, email=email, name="bench")
        account = await auth_service.AccountRepository(session).get_with_professional(account.id)
        return token, await auth_service.build_principal(session, account, "token")

    database = Database(Settings())
    async with database.sessionmaker() as session:
        chu = await organisation(session, "CHU de Lille — télésurveillance cardiaque", OrganisationType.CHU)
        ch = await organisation(session, "CH d'Arras")
        _, admin = await person(session, chu, Role.ORG_ADMIN, "Administratrice")
        operator_token, _ = await person(
            session, chu, Role.MONITORING_OPERATOR, "Infirmière", Profession.INFIRMIER
        )
        gateway_token, _ = await person(
            session, chu, Role.MONITORING_OPERATOR, "Passerelle", Profession.ADMINISTRATIF
        )
        _, cardiologist = await person(session, ch, Role.REQUESTER, "Cardiologue")
        programme = await monitoring.create_programme(
            session,
            admin,
            ProgrammeCreate(
                organisation_id=chu.id,
                code="insuffisance_cardiaque",
                team_name="Équipe IC",
                days=[1, 2, 3, 4, 5, 6, 7],
                opens="00:00",
                closes="23:59",
            ),
        )
        await session.commit()
        patient_ids, enrolment_ids = [], []
        for i in range(patients):
            patient, _ = await patient_service.register_patient(
                session,
                cardiologist,
                PatientCreate(
                    birth_family_name=FAMILY_NAMES[i % len(FAMILY_NAMES)],
                    birth_given_names=GIVEN_NAMES[i % len(GIVEN_NAMES)],
                    birth_date=date(1930, 1, 1) + timedelta(days=(7 * i) % 20000),
                    sex="F" if i % 2 else "M",
                    birth_place_insee="59350",
                    confirm_duplicate=True,
                ),
            )
            enrolment = await monitoring.enrol_patient(
                session,
                cardiologist,
                patient.id,
                EnrolmentCreate(
                    programme_id=programme.id,
                    indication="Insuffisance cardiaque, NYHA III",
                    prescriber_name="Dr Cardiologue",
                    decision=ConsentDecision.GIVEN,
                    devices=[DeviceIn(serial=f"SCALE-{i:06d}", kind="Balance connectée")],
                ),
            )
            patient_ids.append(str(patient.id))
            enrolment_ids.append(str(enrolment.id))
            if i % 200 == 199:
                await session.commit()
        await session.commit()
    await database.dispose()
    return {
        "operator_token": operator_token,
        "gateway_token": gateway_token,
        "patient_ids": patient_ids,
        "enrolment_ids": enrolment_ids,
    }


def seed_in_subprocess(env: dict[str, str], patients: int) -> dict[str, Any]:
    code = (
        "import asyncio, json; from bench.monitoring_ingest import seed; "
        f"print(json.dumps(asyncio.run(seed({patients}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the readings ------------------------------------------------------------------------------------------------


def observation(patient_id: str, index: int, kilograms: float, at: datetime, tag: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "identifier": [{"system": "urn:bench:scale", "value": f"{tag}-{patient_id}-{at.timestamp():.0f}"}],
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "device": {"identifier": {"value": f"SCALE-{index:06d}"}},
        "effectiveDateTime": at.isoformat(),
        "valueQuantity": {"value": kilograms, "unit": "kg", "system": UCUM, "code": "kg"},
    }


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in resources],
    }


def base_weight(index: int) -> float:
    return 60.0 + (index * 7) % 40


def stable_readings(patient_ids: list[str], now: datetime, round_: int = 0) -> list[dict[str, Any]]:
    """Three days of stable weights per patient, the last one 12 hours ago (no alert: neither a rise nor missing
    data): the throughput load. Each round's readings are new ones (taken a minute later than the round before's)."""
    readings = []
    for hours in (60, 36, 12):
        at = (now - timedelta(hours=hours, minutes=-round_)).replace(second=0, microsecond=0)
        for index, patient_id in enumerate(patient_ids):
            kilograms = base_weight(index) + (0.1 if hours == 36 else 0.0)
            readings.append(observation(patient_id, index, kilograms, at, f"stable{round_}"))
    return readings


# --- the operator's stream -----------------------------------------------------------------------------------------


@dataclass
class Inbox:
    alerts: dict[str, list[tuple[float, str]]] = field(
        default_factory=dict
    )  # enrolment -> (arrival, severity)
    received: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def _red_since(self, enrolment_id: str, since: float) -> float | None:
        return next(
            (at for at, severity in self.alerts.get(enrolment_id, []) if severity == "red" and at >= since),
            None,
        )

    async def wait_for(self, enrolment_id: str, since: float, seconds: float = 10.0) -> float:
        """When the first red alert of this enrolment arrived after ``since``."""
        async with asyncio.timeout(seconds):
            while self._red_since(enrolment_id, since) is None:
                self.arrived.clear()
                if self._red_since(enrolment_id, since) is None:
                    await self.arrived.wait()
        return self._red_since(enrolment_id, since)


async def listen(client: httpx.AsyncClient, url: str, token: str, inbox: Inbox, ready: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aconnect_sse(client, "GET", f"{url}/evenements", headers=headers) as source:
        if source.response.status_code != 200:
            raise RuntimeError(f"stream refused: {source.response.status_code}")
        ready.set()
        async for message in source.aiter_sse():
            at = time.perf_counter()
            if message.event != "monitoring.alert" or not message.data:
                continue
            data = json.loads(message.data).get("data", {})
            inbox.alerts.setdefault(str(data.get("enrolment_id")), []).append((at, str(data.get("severity"))))
            inbox.received += 1
            inbox.arrived.set()


# --- measure -----------------------------------------------------------------------------------------------------


def _summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:  # JSON has no NaN: no measure is null
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 1),
        "p95_ms": round(percentile(ordered, 95), 1),
        "p99_ms": round(percentile(ordered, 99), 1),
        "max_ms": round(ordered[-1], 1) if ordered else 0.0,
    }


async def _post(client: httpx.AsyncClient, url: str, token: str, body: bytes) -> dict[str, Any]:
    response = await client.post(
        f"{url}/fhir",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )
    if response.status_code != 200:
        raise RuntimeError(f"batch refused: {response.status_code} {response.text[:500]}")
    return response.json()


async def gateways(folder: str) -> None:
    """The load, in its own process: ``clients`` gateways post the batches in turn (the instances alternately);
    prints one JSON line when the first day of readings is in, one with the counts and the elapsed time at the end."""
    work = Path(folder)
    bodies = [body.encode() for body in json.loads((work / "bodies.json").read_text())]
    config = json.loads((work / "load.json").read_text())
    urls, token = config["urls"], config["token"]
    queue = list(enumerate(bodies))
    counts = {"created": 0, "refused": 0}
    announced = False

    async def gateway(client: httpx.AsyncClient) -> None:
        nonlocal announced
        while queue:
            number, body = queue.pop(0)
            answer = await _post(client, urls[number % len(urls)], token, body)
            for entry in answer["entry"]:
                counts["created" if entry["response"]["status"].startswith("201") else "refused"] += 1
            if not announced and counts["created"] >= config["first_day"]:
                announced = True
                print(json.dumps({"first_day_in": True}), flush=True)

    limits = httpx.Limits(max_connections=config["clients"] + 2)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        print(json.dumps({"starting": True}), flush=True)
        started = time.perf_counter()
        await asyncio.gather(*(gateway(client) for _ in range(config["clients"])))
        elapsed = time.perf_counter() - started
    print(json.dumps({**counts, "seconds": elapsed}), flush=True)


async def _probe(
    client: httpx.AsyncClient, url: str, info: dict[str, Any], inbox: Inbox, index: int, now: datetime
) -> float:
    """One reading 3 kg above the patient's: time from the post leaving to its red alert on the stream (ms)."""
    patient_id, enrolment_id = info["patient_ids"][index], info["enrolment_ids"][index]
    body = json.dumps(
        bundle([observation(patient_id, index, base_weight(index) + 3.0, now, "probe")])
    ).encode()
    started = time.perf_counter()
    answer = await _post(client, url, info["gateway_token"], body)
    status = answer["entry"][0]["response"]["status"]
    if not status.startswith("201"):
        raise RuntimeError(f"probe refused: {answer['entry'][0]['response']}")
    arrived = await inbox.wait_for(enrolment_id, started)
    return (arrived - started) * 1000


def _stat_cpu(path: Path) -> tuple[str, float] | None:
    """A process's (or thread's) name and CPU time (user + system, seconds) from its /proc stat file."""
    try:
        text = path.read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None  # a process that has just ended
    rest = text[text.rindex(")") + 2 :].split()
    return text[text.index("(") + 1 : text.rindex(")")], (int(rest[11]) + int(rest[12])) / os.sysconf(
        "SC_CLK_TCK"
    )


def processes_cpu(main_threads: tuple[int, ...] = ()) -> dict[int, tuple[str, float]]:
    """Every process's name and CPU time from /proc (Linux; empty elsewhere); for each pid of ``main_threads``, its
    main thread's alone under the key ``-pid`` (a server's event loop, apart from its SQLite and checkpoint threads)."""
    found: dict[int, tuple[str, float]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if entry.name.isdigit() and (stat := _stat_cpu(entry / "stat")) is not None:
            found[int(entry.name)] = stat
    for pid in main_threads:
        if (stat := _stat_cpu(proc / str(pid) / "task" / str(pid) / "stat")) is not None:
            found[-pid] = stat
    return found


def _cpu_delta(previous: tuple[str, float] | None, name: str, total: float) -> float:
    """CPU seconds a process spent since ``previous`` (its name and CPU time then), or all of it if it is a new
    process (its pid reused by another program). A kernel worker's name ends with the queue it serves last
    (``kworker/0:2-events``): only the part before it names the process."""
    if previous is None or previous[0].partition("-")[0] != name.partition("-")[0]:
        return total
    return total - previous[1]


def cpu_split(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    roles: dict[int, str],
    observations: int,
    seconds: float,
) -> dict[str, Any]:
    """Where the machine's CPU went during the load: seconds per role and microseconds per observation. A role is a
    known process (a server instance, the gateways, this process) or the program's name (``postgres`` for every
    backend, ``redis-server``…); a process that ended during the load is not counted."""
    spent: dict[str, float] = {}
    main_thread: dict[str, float] = {}
    for pid, (name, total) in after.items():
        delta = _cpu_delta(before.get(pid), name, total)
        if pid < 0:  # a known process's main thread, also counted in its process
            main_thread[roles.get(-pid, name)] = delta
        elif delta > 0:
            # the kernel's workers are one role: a worker's name changes with the queue it serves
            role = roles.get(pid) or ("kernel workers" if name.startswith("kworker/") else name)
            spent[role] = spent.get(role, 0.0) + delta
    cores = os.cpu_count() or 1
    busy = sum(spent.values())
    return {
        "cores": cores,
        "busy_share": round(busy / (cores * seconds), 3) if seconds else None,
        "per_role_s": {
            role: round(value, 2)
            for role, value in sorted(spent.items(), key=lambda kv: -kv[1])
            if value >= 0.01
        },
        "per_observation_us": {
            role: round(value / observations * 1e6, 1)
            for role, value in sorted(spent.items(), key=lambda kv: -kv[1])
            if value >= 0.01 and observations
        },
        "total_per_observation_us": round(busy / observations * 1e6, 1) if observations else None,
        "main_thread_per_observation_us": {
            role: round(value / observations * 1e6, 1) for role, value in main_thread.items() if observations
        },
    }


async def measure(
    urls: list[str],
    stream_url: str,
    info: dict[str, Any],
    batch_size: int,
    clients: int,
    settle: Callable[[], Awaitable[None]] | None = None,
    roles: dict[int, str] | None = None,
    history_days: int = 1,
    rounds: int = 3,
) -> dict[str, Any]:
    """``roles`` names the server instances' processes in the CPU split. ``rounds``: the load is run this many times,
    each with new readings (the table grows by as much) and probes of other patients; the throughput reported is
    the median round's, the alert latencies those of every round's probes, the CPU split the sum of the rounds'."""
    now = datetime.now(UTC)
    patient_ids = info["patient_ids"]
    step = max(1, len(patient_ids) // (60 * rounds))
    probes_loaded = list(range(0, len(patient_ids), step))[: 50 * rounds]
    loaded_set = set(probes_loaded)
    probes_quiet = [i for i in range(len(patient_ids)) if i not in loaded_set][:100]
    inbox = Inbox()
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        ready = asyncio.Event()
        stream = asyncio.create_task(listen(client, stream_url, info["operator_token"], inbox, ready))
        await asyncio.wait_for(ready.wait(), 30)
        # Warm-up, not timed: history, each patient's weight 66 hours ago (before the load's first day, recent enough not
        # to raise a missing-data alert), posted to the instances in turn
        # (connections, caches, statements prepared), then the database's statistics gathered (``settle``). A region's
        # readings table is not empty and has statistics: PostgreSQL's autovacuum keeps them, its first pass a minute
        # after the first readings, longer than this whole run. Without them, PostgreSQL guesses that each patient has
        # 0.5 % of the readings and reads the readings window of a group of patients by scanning the whole table
        # (measured: a third of its CPU time; docs/performance.md, remote monitoring, ninth session).
        # ``history_days`` > 1: one weight a day further back for each patient (a region's table after weeks of
        # readings: its indexes deeper, a patient's readings many), the oldest first
        history = [
            observation(
                patient_id,
                i,
                base_weight(i),
                (now - timedelta(hours=66 + 24 * day)).replace(second=0, microsecond=0),
                "history",
            )
            for day in reversed(range(history_days))
            for i, patient_id in enumerate(patient_ids)
        ]
        for number, start in enumerate(range(0, len(history), batch_size)):
            part = json.dumps(bundle(history[start : start + batch_size])).encode()
            await _post(client, urls[number % len(urls)], info["gateway_token"], part)
        if settle is not None:
            await settle()

        servers = tuple(roles or ())
        runs: list[dict[str, Any]] = []
        loaded_latencies: list[float] = []
        spent: dict[int, tuple[str, float]] = {}  # CPU seconds during the rounds' loads, by process
        for round_ in range(rounds):
            readings = stable_readings(patient_ids, now, round_)
            bodies = [
                json.dumps(bundle(readings[start : start + batch_size])).encode()
                for start in range(0, len(readings), batch_size)
            ]
            report, before, after, latencies = await _load_round(
                client,
                urls,
                info,
                inbox,
                bodies,
                clients,
                probes_loaded[round_::rounds],
                now,
                servers,
            )
            loaded_latencies.extend(latencies)
            runs.append(report)
            for pid, (name, total) in after.items():
                spent[pid] = (name, spent.get(pid, (name, 0.0))[1] + _cpu_delta(before.get(pid), name, total))
        quiet_latencies = []
        for index in probes_quiet:
            quiet_latencies.append(await _probe(client, urls[index % len(urls)], info, inbox, index, now))
        stream.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await stream
    per_round = [round(run["created"] / run["seconds"]) for run in runs]
    median = sorted(range(len(runs)), key=lambda i: per_round[i])[len(runs) // 2]
    created = sum(run["created"] for run in runs)
    elapsed = sum(run["seconds"] for run in runs)
    all_roles = {**(roles or {}), **{pid: "gateways" for run in runs for pid in run["gateways_pids"]}}
    all_roles[os.getpid()] = "bench (stream, probes)"
    return {
        "patients": len(patient_ids),
        "observations": runs[median]["created"] + runs[median]["refused"],
        "created": runs[median]["created"],
        "refused": runs[median]["refused"],
        "batch": batch_size,
        "clients": clients,
        "seconds": round(runs[median]["seconds"], 2),
        "observations_per_s": per_round[median],
        "rounds": rounds,
        "observations_per_s_by_round": per_round,
        "alert_under_load": _summary(loaded_latencies),
        "alert_quiet": _summary(quiet_latencies),
        "alerts_received": inbox.received,
        "history_days": history_days,
        "cpu_during_load": cpu_split(
            {pid: (name, 0.0) for pid, (name, _) in spent.items()}, spent, all_roles, created, elapsed
        ),
    }


async def _load_round(
    client: httpx.AsyncClient,
    urls: list[str],
    info: dict[str, Any],
    inbox: Inbox,
    bodies: list[bytes],
    clients: int,
    probes: list[int],
    now: datetime,
    servers: tuple[int, ...],
) -> tuple[dict[str, Any], dict[int, tuple[str, float]], dict[int, tuple[str, float]], list[float]]:
    """One round of the load: the gateways' process posts ``bodies`` while the probe posts to ``probes``' patients.
    Returns the gateways' report, every process's CPU at the load's start and end, and the probes' latencies (ms)."""
    # The gateways run in a process of their own, as they would on other machines: the operator's stream and
    # the probe, here, are not slowed by the parsing of the gateways' 500-entry answers in the same event loop.
    work = Path(tempfile.mkdtemp(prefix="telesante-bench-gateways-"))
    (work / "bodies.json").write_text(json.dumps([body.decode() for body in bodies]))
    (work / "load.json").write_text(
        json.dumps(
            {
                "urls": urls,
                "token": info["gateway_token"],
                "clients": clients,
                "first_day": len(info["patient_ids"]),
            }
        )
    )
    load = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"import asyncio; from bench.monitoring_ingest import gateways; asyncio.run(gateways({str(work)!r}))",
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    assert load.stdout is not None
    first_day_in, load_done = asyncio.Event(), asyncio.Event()
    report: dict[str, Any] = {"gateways_pids": [load.pid]}
    snapshots: dict[str, dict[int, tuple[str, float]]] = {}

    async def follow_load() -> None:
        async for line in load.stdout:
            message = json.loads(line)
            if message.get("starting"):
                snapshots["before"] = processes_cpu(servers)
            if message.get("first_day_in"):
                first_day_in.set()
            if "created" in message:
                snapshots["after"] = processes_cpu(servers)
                report.update(message)
        load_done.set()
        first_day_in.set()

    latencies: list[float] = []

    async def prober() -> None:
        # the probes start once the first day of stable weights is in (a rise needs an earlier reading)
        await first_day_in.wait()
        for index in probes:
            if load_done.is_set():
                break
            latencies.append(await _probe(client, urls[index % len(urls)], info, inbox, index, now))
            await asyncio.sleep(0.05)

    following = asyncio.create_task(follow_load())
    await prober()
    await following
    if await load.wait() != 0 or "created" not in report:
        raise RuntimeError(f"the gateways' process failed ({load.returncode})")
    shutil.rmtree(work, ignore_errors=True)
    return report, snapshots.get("before", {}), snapshots.get("after", {}), latencies


# --- the peers: the database's own bulk load of the same JSON rows -------------------------------------------------


def _peer_rows(patients: int) -> list[str]:
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(patients)]
    return [json.dumps(r) for r in stable_readings(ids, now)]


async def analyze(database_url: str) -> None:
    """What autovacuum does in a running region: the tables' statistics gathered (``measure``'s warm-up)."""
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def postgres_copy(rows: list[str], database_url: str) -> float:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("DROP TABLE IF EXISTS bench_fhir_rows")
        await connection.execute(
            "CREATE TABLE bench_fhir_rows (id bigserial PRIMARY KEY, resource jsonb NOT NULL)"
        )
        started = time.perf_counter()
        await connection.copy_records_to_table(
            "bench_fhir_rows", records=[(r,) for r in rows], columns=["resource"]
        )
        elapsed = time.perf_counter() - started
        await connection.execute("DROP TABLE bench_fhir_rows")
    finally:
        await connection.close()
    return len(rows) / elapsed


def sqlite_executemany(rows: list[str], directory: Path) -> float:
    import sqlite3

    connection = sqlite3.connect(directory / "peer.sqlite3")
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, resource TEXT NOT NULL)")
        started = time.perf_counter()
        with connection:
            connection.executemany("INSERT INTO rows (resource) VALUES (json(?))", [(r,) for r in rows])
        return len(rows) / (time.perf_counter() - started)
    finally:
        connection.close()


# --- set-ups -----------------------------------------------------------------------------------------------------


async def on_sqlite(
    patients: int, batch_size: int, clients: int, history_days: int, rounds: int
) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="telesante-bench-tls-"))
    env = server_env(directory, None, None, "unused")
    migrate(env)
    info = seed_in_subprocess(env, patients)
    instance = start_instance(env)
    try:
        result = await measure(
            [instance.url],
            instance.url,
            info,
            batch_size,
            clients,
            roles={instance.process.pid: "server"},
            history_days=history_days,
            rounds=rounds,
        )
    finally:
        stop_instance(instance)
    try:
        peer = sqlite_executemany(_peer_rows(patients), directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # the region's database: 120 MB for 10,000 patients
    return {
        "engine": "SQLite, one instance, in-process bus",
        **result,
        "peer": "SQLite executemany of the same FHIR JSON rows",
        "peer_rows_per_s": round(peer),
        "ratio_to_peer": round(result["observations_per_s"] / peer, 3),
        "goal_observations_per_s": GOAL_SQLITE,
        "meets_goal": result["observations_per_s"] >= GOAL_SQLITE,
    }


async def on_postgres(
    patients: int, batch_size: int, clients: int, history_days: int, rounds: int
) -> dict[str, Any]:
    database_url = await recreate_database(BENCH_DATABASE)
    channel = f"telesante:bench:tls:{uuid.uuid4().hex[:8]}"
    env_a = server_env(
        Path(tempfile.mkdtemp(prefix="telesante-bench-tls-a-")), database_url, REDIS_URL, channel
    )
    env_b = {**env_a, "TELESANTE_DATA_DIR": tempfile.mkdtemp(prefix="telesante-bench-tls-b-")}
    migrate(env_a)
    info = seed_in_subprocess(env_a, patients)
    a, b = start_instance(env_a), start_instance(env_b)
    try:
        result = await measure(
            [a.url, b.url],
            b.url,
            info,
            batch_size,
            clients,
            settle=lambda: analyze(database_url),
            roles={a.process.pid: "server A", b.process.pid: "server B (stream)"},
            history_days=history_days,
            rounds=rounds,
        )
    finally:
        stop_instance(a)
        stop_instance(b)
        for data_dir in (env_a["TELESANTE_DATA_DIR"], env_b["TELESANTE_DATA_DIR"]):
            shutil.rmtree(data_dir, ignore_errors=True)
    peer = await postgres_copy(_peer_rows(patients), database_url)
    return {
        "engine": "PostgreSQL, two instances, Redis bus (operator's stream on B)",
        **result,
        "peer": "PostgreSQL COPY of the same FHIR JSON rows into jsonb",
        "peer_rows_per_s": round(peer),
        "ratio_to_peer": round(result["observations_per_s"] / peer, 3),
        "goal_observations_per_s": GOAL_PG,
        "meets_goal": result["observations_per_s"] >= GOAL_PG,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 patients instead of 10,000")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--batch", type=int, default=500, help="Observations per batch Bundle")
    parser.add_argument("--clients", type=int, default=4, help="concurrent gateways")
    parser.add_argument("--only", choices=("sqlite", "postgres"), default=None)
    parser.add_argument(
        "--history-days",
        type=int,
        default=1,
        help="days of history posted before the load, one weight a day per patient (not timed)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="times the load is run, with new readings each time (the median round's throughput is reported)",
    )
    args = parser.parse_args()
    patients = args.patients or (1_000 if args.quick else 10_000)
    started, load_at_start = datetime.now(UTC), __import__("os").getloadavg()[0]
    results = []
    for name, scenario in (("sqlite", on_sqlite), ("postgres", on_postgres)):
        if args.only and args.only != name:
            continue
        result = await scenario(patients, args.batch, args.clients, args.history_days, max(1, args.rounds))
        results.append(result)
        print(
            f"{result['engine']}: {result['created']} observations en {result['seconds']} s = "
            f"{result['observations_per_s']} obs/s (médiane de {result['rounds']} tours : "
            f"{' / '.join(str(v) for v in result['observations_per_s_by_round'])}) (objectif ≥ {result['goal_observations_per_s']} : "
            f"{'atteint' if result['meets_goal'] else 'MANQUÉ'} ; pair {result['peer_rows_per_s']} lignes/s, "
            f"rapport {result['ratio_to_peer']}) ; mesure → alerte sous charge p50 "
            f"{result['alert_under_load']['p50_ms']} ms p99 {result['alert_under_load']['p99_ms']} ms, au calme p50 "
            f"{result['alert_quiet']['p50_ms']} ms p99 {result['alert_quiet']['p99_ms']} ms "
            f"(objectif p99 ≤ {GOAL_ALERT_P99_MS:g} ms)",
            flush=True,
        )
        split = result["cpu_during_load"]
        print(
            f"  CPU pendant la charge ({split['busy_share']} des {split['cores']} cœurs), µs par observation : "
            + ", ".join(f"{role} {value}" for role, value in split["per_observation_us"].items())
            + f" ; total {split['total_per_observation_us']} ; dont fil principal : "
            + ", ".join(f"{role} {value}" for role, value in split["main_thread_per_observation_us"].items()),
            flush=True,
        )
    print(
        json.dumps(
            {
                "benchmark": "monitoring_ingest",
                "quick": args.quick,
                "goals": {
                    "postgres_obs_per_s": GOAL_PG,
                    "sqlite_obs_per_s": GOAL_SQLITE,
                    "alert_p99_ms": GOAL_ALERT_P99_MS,
                },
                "machine": machine(started, load_at_start),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
