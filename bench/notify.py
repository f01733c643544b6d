"""Live notification latency: from the response to "send this request" to the event on the expert's open stream.

    python -m bench.notify [--quick] [--submits N]

Two set-ups, each with real server processes (uvicorn, the application as deployed) and real clients (httpx over
TCP, ``httpx-sse`` reading ``GET /evenements`` as a browser's EventSource does):

1. **in-process bus** — one instance on SQLite (the embedded default);
2. **Redis across two instances** — instances A and B on the same PostgreSQL database (``notify_bench``, dropped
   and re-created) and the same Redis channel: the emergency doctor submits on A, the neurosurgeon's stream is open
   on B, so every event crosses Redis.

500 streams are open during the measure (100 with ``--quick``): the expert's and those of other signed-in
professionals (one account each) who must not receive anything. For each submit the emergency doctor creates a
draft then sends it (``POST /api/requests``, ``POST /api/requests/{id}/send``: complete form, consent, deadline timer,
event after commit, e-mail queue) and the clock runs from the send response to the arrival of the ``request.sent``
event carrying that request's id. An event that arrives before the response (it is published right after the
commit, the response follows) counts as 0 ms; how often that happens is reported, and so is the time from the send
request leaving the client to the event (the whole submit: validation, commit, publication, delivery). The limit compared against, in the same run, is the issue's goal:
p99 ≤ 50 ms. The client shares the machine's cores with the servers, PostgreSQL and Redis.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from httpx_sse import aconnect_sse

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
BENCH_DATABASE = "notify_bench"
REDIS_URL = "redis://127.0.0.1:6379/0"
GOAL_P99_MS = 50.0
PASSWORD = "Bench-notify-2026!"


# --- servers ------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(
    data_dir: Path, database_url: str | None, redis_url: str | None, channel: str
) -> dict[str, str]:
    env = {
        **os.environ,
        "TELESANTE_DATA_DIR": str(data_dir),
        "TELESANTE_SECRET_KEY": "bench-notify-secret-key-0123456789",
        "TELESANTE_DEMO": "0",
        "TELESANTE_LOG_LEVEL": "WARNING",
        "TELESANTE_EVENTS_REDIS_CHANNEL": channel,
        "TELESANTE_EVENTS_HEARTBEAT_SECONDS": "15",
        "TELESANTE_DICOM_PORT": "0",  # two instances on one host: no DICOM listener needed here
    }
    for key, value in (("TELESANTE_DATABASE_URL", database_url), ("TELESANTE_REDIS_URL", redis_url)):
        if value:
            env[key] = value
        else:
            env.pop(key, None)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


@dataclass
class Instance:
    url: str
    process: subprocess.Popen
    log: IO[bytes] | None = None  # the server's standard error, shown when it fails to start


def start_instance(env: dict[str, str]) -> Instance:
    """A server process on a free port, once it answers ``/healthz``. Its standard error goes to a temporary file,
    not to a pipe nobody reads (a server writing more than the pipe holds would stop at its next write)."""
    port = _free_port()
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "telesante.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--no-proxy-headers",  # as `telesante serve` (proxy_headers=False)
            "--http",  # as `telesante serve` runs it (cli.py)
            "telesante.web.zerocopy:ZeroCopyHttpToolsProtocol",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            message = log.read().decode(errors="replace")[-2000:]
            log.close()
            raise RuntimeError(f"server exited: {message}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Instance(url, process, log)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    log.close()
    raise RuntimeError("server did not start within 60 s")


def stop_instance(instance: Instance) -> None:
    """Stop a server started by ``start_instance`` (anything with its ``process``)."""
    instance.process.terminate()
    try:
        instance.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        instance.process.kill()
    if (log := getattr(instance, "log", None)) is not None:
        log.close()


async def recreate_database(name: str) -> str:
    import asyncpg

    connection = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"{PG_SERVER}/{name}"


# --- seed: a region through the real services -----------------------------------------------------------------


async def seed(listeners: int) -> dict[str, Any]:
    """An emergency doctor at a general hospital, a neurosurgeon at a CHU answering urgent questions, a patient
    with consent to tele-expertise, and ``listeners`` professionals of a third hospital; a token each. Runs in this
    process against the database of the environment (TELESANTE_*)."""
    import telesante.models  # noqa: F401 - every model registered (foreign keys across domains)
    from telesante.auth import service as auth_service
    from telesante.config import Settings
    from telesante.consents import service as consent_service
    from telesante.consents.models import ConsentScopeType
    from telesante.consents.schemas import ConsentCreate
    from telesante.db import Database
    from telesante.directory import service as directory_service
    from telesante.directory.models import OrganisationType, Profession, Role
    from telesante.directory.schemas import MembershipCreate, OrganisationCreate, ProfessionalCreate
    from telesante.kit.identifiers import finess_with_key, rpps_with_key
    from telesante.offers import service as offer_service
    from telesante.offers.models import ActType, Routing
    from telesante.offers.schemas import OfferCreate
    from telesante.patients import service as patient_service
    from telesante.patients.schemas import PatientCreate

    counter = iter(range(1, 1_000_000))

    async def organisation(session, name, kind=OrganisationType.CH):
        n = next(counter)
        base = f"35{n:06d}"
        return await directory_service.create_organisation(
            session,
            None,
            OrganisationCreate(
                finess=finess_with_key(base),
                name=name,
                type=kind,
                commune_insee="35238",
                city="Rennes",
                postal_code="35000",
            ),
        )

    async def person(session, org, role, family):
        n = next(counter)
        base = f"1{n:09d}"
        professional = await directory_service.create_professional(
            session,
            None,
            ProfessionalCreate(
                rpps=rpps_with_key(base),
                family_name=family,
                given_name="Claire",
                profession=Profession.MEDECIN,
                specialty="",
            ),
        )
        await directory_service.add_membership(
            session,
            None,
            MembershipCreate(professional_id=professional.id, organisation_id=org.id, role=role),
        )
        email = f"bench{n}@notify.telesante.fr"
        account = await auth_service.create_account(
            session, None, professional_id=professional.id, email=email, password=PASSWORD
        )
        token, _ = await auth_service.create_api_token(session, email=email, name="bench")
        account = await auth_service.AccountRepository(session).get_with_professional(account.id)
        return token, await auth_service.build_principal(session, account, "token")

    database = Database(Settings())
    async with database.sessionmaker() as session:
        ch = await organisation(session, "CH de Fougères")
        chu = await organisation(session, "CHU de Rennes", OrganisationType.CHU)
        third = await organisation(session, "CH de Vitré")
        requester_token, requester = await person(session, ch, Role.REQUESTER, "Urgentiste")
        expert_token, _ = await person(session, chu, Role.EXPERT, "Neurochirurgien")
        _, admin = await person(session, chu, Role.ORG_ADMIN, "Administratrice")
        listener_tokens = [
            (await person(session, third, Role.EXPERT, f"Auditeur{i}"))[0] for i in range(listeners)
        ]
        patient, _ = await patient_service.register_patient(
            session,
            requester,
            PatientCreate(
                birth_family_name="Le Goff",
                birth_given_names="Yann",
                birth_date="1950-05-04",
                sex="M",
                birth_place_insee="35238",
            ),
        )
        notice = (
            await consent_service.list_information_texts(session, ConsentScopeType.ACT, "teleexpertise")
        )[0]
        await consent_service.record_consent(
            session,
            requester,
            patient.id,
            ConsentCreate(
                scope_type="act", scope_code="teleexpertise", decision="given", information_text_id=notice.id
            ),
        )
        offer = await offer_service.create_offer(
            session,
            admin,
            OfferCreate(
                organisation_id=chu.id,
                title="Avis neurochirurgical urgent",
                act_type=ActType.TELEEXPERTISE,
                specialty="Neurochirurgie",
                form_code="question_generique",
                routing=Routing.POOL,
                response_minutes=30,
                urgent=True,
            ),
        )
        info = {
            "requester_token": requester_token,
            "expert_token": expert_token,
            "listener_tokens": listener_tokens,
            "patient_id": str(patient.id),
            "offer_id": str(offer.id),
        }
        await session.commit()
    await database.dispose()
    return info


def seed_in_subprocess(env: dict[str, str], listeners: int) -> dict[str, Any]:
    """Seeding reads its settings from the environment: run it with the servers' environment."""
    code = f"import asyncio, json; from bench.notify import seed; print(json.dumps(asyncio.run(seed({listeners}))))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- measure ------------------------------------------------------------------------------------------------


@dataclass
class Stream:
    arrivals: dict[str, float]  # request id -> perf_counter() when its request.sent arrived
    received: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


async def _listen(
    client: httpx.AsyncClient, url: str, token: str, stream: Stream, ready: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aconnect_sse(client, "GET", f"{url}/evenements", headers=headers) as source:
        if source.response.status_code != 200:
            raise RuntimeError(f"stream refused: {source.response.status_code}")
        ready.set()
        async for message in source.aiter_sse():
            if message.event == "request.sent":
                stream.arrivals[json.loads(message.data)["data"]["request_id"]] = time.perf_counter()
                stream.received += 1
                stream.arrived.set()


async def measure(
    submit_url: str, stream_url: str, info: dict[str, Any], streams: int, submits: int
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=streams + 20, max_keepalive_connections=streams + 20)
    timeout = httpx.Timeout(30.0, read=None)
    expert = Stream({})
    others = [Stream({}) for _ in range(streams - 1)]
    tokens = [info["expert_token"], *info["listener_tokens"][: streams - 1]]
    async with (
        httpx.AsyncClient(limits=limits, timeout=timeout) as stream_client,
        httpx.AsyncClient(base_url=submit_url, timeout=30.0) as doctor,
    ):
        readies = [asyncio.Event() for _ in tokens]
        tasks = [
            asyncio.create_task(_listen(stream_client, stream_url, token, stream, ready))
            for token, stream, ready in zip(tokens, [expert, *others], readies, strict=True)
        ]
        try:
            async with asyncio.timeout(120):
                await asyncio.gather(*(ready.wait() for ready in readies))
            await asyncio.sleep(1.0)  # every subscription registered on the bus (and on Redis)
            headers = {"Authorization": f"Bearer {info['requester_token']}"}
            answers = {"question": "Conduite à tenir devant ce scanner ?", "context": "Chute, AVK, INR 2,8."}
            latencies: list[float] = []
            end_to_end: list[
                float
            ] = []  # from the send request leaving the client: the whole submit included
            early = 0
            for _ in range(submits):
                created = await doctor.post(
                    "/api/requests",
                    json={"offer_id": info["offer_id"], "patient_id": info["patient_id"], "answers": answers},
                    headers=headers,
                )
                created.raise_for_status()
                request_id = created.json()["id"]
                submitted_at = time.perf_counter()
                sent = await doctor.post(f"/api/requests/{request_id}/send", json={}, headers=headers)
                answered_at = time.perf_counter()
                sent.raise_for_status()
                async with asyncio.timeout(10):
                    while request_id not in expert.arrivals:
                        expert.arrived.clear()
                        if request_id not in expert.arrivals:
                            await expert.arrived.wait()
                delta = expert.arrivals[request_id] - answered_at
                early += int(delta < 0)
                latencies.append(max(0.0, delta) * 1000)
                end_to_end.append((expert.arrivals[request_id] - submitted_at) * 1000)
            await asyncio.sleep(0.5)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    ordered = sorted(latencies)
    return {
        "streams": streams,
        "submits": submits,
        "p50_ms": round(percentile(ordered, 50), 2),
        "p95_ms": round(percentile(ordered, 95), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "before_response": early,
        "submit_to_event_p50_ms": round(percentile(sorted(end_to_end), 50), 2),
        "submit_to_event_p99_ms": round(percentile(sorted(end_to_end), 99), 2),
        "leaked_to_others": sum(s.received for s in others),  # must be 0: events go to their recipients only
        "meets_goal": percentile(ordered, 99) <= GOAL_P99_MS,
        "goal_ratio": round(percentile(ordered, 99) / GOAL_P99_MS, 3),
    }


def percentile(ordered: list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# --- scenarios ----------------------------------------------------------------------------------------------


async def in_process(streams: int, submits: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="telesante-bench-notify-"))
    env = server_env(data_dir, None, None, "unused")
    migrate(env)
    info = seed_in_subprocess(env, streams - 1)
    instance = start_instance(env)
    try:
        return {
            "engine": "SQLite, one instance, in-process bus",
            **await measure(instance.url, instance.url, info, streams, submits),
        }
    finally:
        stop_instance(instance)
        shutil.rmtree(data_dir, ignore_errors=True)


async def across_redis(streams: int, submits: int) -> dict[str, Any]:
    database_url = await recreate_database(BENCH_DATABASE)
    channel = f"telesante:bench:{uuid.uuid4().hex[:8]}"
    env_a = server_env(Path(tempfile.mkdtemp(prefix="telesante-bench-a-")), database_url, REDIS_URL, channel)
    env_b = {**env_a, "TELESANTE_DATA_DIR": tempfile.mkdtemp(prefix="telesante-bench-b-")}
    migrate(env_a)
    info = seed_in_subprocess(env_a, streams - 1)
    a, b = start_instance(env_a), start_instance(env_b)
    try:
        result = await measure(a.url, b.url, info, streams, submits)
        return {"engine": "PostgreSQL, two instances, Redis bus (submit on A, stream on B)", **result}
    finally:
        stop_instance(a)
        stop_instance(b)
        for data_dir in (env_a["TELESANTE_DATA_DIR"], env_b["TELESANTE_DATA_DIR"]):
            shutil.rmtree(data_dir, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 streams, 50 submits")
    parser.add_argument("--streams", type=int, default=None)
    parser.add_argument("--submits", type=int, default=None)
    args = parser.parse_args()
    streams = args.streams or (100 if args.quick else 500)
    submits = args.submits or (50 if args.quick else 200)
    results = []
    for scenario in (in_process, across_redis):
        result = await scenario(streams, submits)
        results.append(result)
        print(
            f"{result['engine']}: {result['streams']} flux, {result['submits']} envois — p50 {result['p50_ms']} ms, "
            f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms (objectif ≤ {GOAL_P99_MS:g} ms : "
            f"{'atteint' if result['meets_goal'] else 'MANQUÉ'}), max {result['max_ms']} ms, "
            f"arrivés avant la réponse : {result['before_response']} ; de l'envoi à l'évènement p50 "
            f"{result['submit_to_event_p50_ms']} ms, p99 {result['submit_to_event_p99_ms']} ms ; "
            f"évènements reçus par d'autres : {result['leaked_to_others']}",
            flush=True,
        )
    print(
        json.dumps(
            {
                "benchmark": "notify",
                "quick": args.quick,
                "goal_p99_ms": GOAL_P99_MS,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
