"""TéléAVC alert paging latency: from the emergency doctor's stroke alert to the page on the on-call neurologist's stream.

    python -m bench.stroke_alert [--quick] [--alerts N] [--others N]

Issue 6: with the neurologist on duty (and 200 other users) holding open event streams, create alerts and measure
alert submitted → page received on the on-call neurologist's stream, on one instance and across two (Redis); goal
p99 ≤ 50 ms.

Same machinery as ``bench.notify`` (whose server helpers are imported): real uvicorn server processes running the
application as deployed, real clients (httpx over TCP, ``httpx-sse`` reading ``GET /evenements`` as a browser's
EventSource does). Two set-ups:

1. **in-process bus** — one instance on SQLite (the embedded default);
2. **Redis across two instances** — instances A and B on the same PostgreSQL database (``stroke_alert_bench``,
   dropped and re-created) and a Redis channel of its own: the emergency doctor alerts on A, the neurologist's
   stream is open on B (so every page crosses Redis); the 200 other streams are spread over A and B.

The network is seeded through the real services: an emergency department (general hospital) with its emergency
doctor, the CHU's "Astreinte TéléAVC" rota (the neurologist on duty as primary, a backup, a head of service,
3-minute escalation) and the stroke offer (form ``alerte_avc``, routed on call), registered patients, and 200
professionals of a third hospital, one account each, whose open streams must receive nothing.

Each alert is one ``POST /api/stroke/cases`` (the whole alert form: onset 40 min ago, arrival 20 min ago by the
machine's clock, callback phone, summary), alternately for a registered patient and for a provisional identity
(registered on the fly). In one transaction the server creates and sends the request (consent check, emergency
exemption, deadline timer), pages the rota (page, escalation timer) and opens the stroke case; after the commit it
publishes, in this order, ``oncall.page`` (to the paged neurologist's accounts: the event that rings, on every page
of the application), ``request.sent`` (the CHU's experts) and ``stroke.alert`` (the clinicians of both
organisations; it rings on the stroke pages). The measure is the first of these events, carrying the new request's
or case's id, to reach the neurologist's stream: from the alert response (an event that arrives before the response
counts as 0 ms, as in ``bench.notify``; how often is reported), and from the alert request leaving the client (the
whole alert: validation, writes, commit, publication, delivery). ``oncall.page`` and ``stroke.alert`` are also
reported on their own. After each measured alert the neurologist acknowledges it (``POST …/acknowledge`` on B),
as on a real night, so no page escalates to the backup during the run; the backup's and the head's streams are open
and must receive no page. The first alerts of each set-up warm the server up and are reported apart.

The limit compared against, in the same run, is the issue's goal: p99 ≤ 50 ms. The client shares the machine's
cores with the servers, PostgreSQL and Redis. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from bench.notify import (
    GOAL_P99_MS,
    REDIS_URL,
    migrate,
    percentile,
    recreate_database,
    server_env,
    start_instance,
    stop_instance,
)

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "stroke_alert_bench"
PASSWORD = "Bench-stroke-2026!"
PAGE = "oncall.page"
SENT = "request.sent"
ALERT = "stroke.alert"
UPDATED = "stroke.updated"
FAMILY_NAMES = ["LE BIHAN", "KERMARREC", "LE GOFF", "MORVAN", "TANGUY", "GUILLOU", "RIOU", "CARIOU"]
GIVEN_NAMES = ["Anne", "Yann", "Maïwenn", "Loïc", "Soizic", "Erwan", "Gwenaëlle", "Corentin"]


# --- seed: a stroke network through the real services ----------------------------------------------------------


async def seed(others: int, patients: int) -> dict[str, Any]:
    """An emergency department without a neurologist (general hospital), the CHU's TéléAVC rota (neurologist on duty,
    backup, head of service; 3-minute escalation) and its stroke offer, ``patients`` patients registered by the
    emergency doctor, and ``others`` professionals of a third hospital; a token each. Runs in this process against
    the database of the environment (TELESANTE_*)."""
    import telesante.models  # noqa: F401 - every model registered (foreign keys across domains)
    from telesante.auth import service as auth_service
    from telesante.config import Settings
    from telesante.db import Database
    from telesante.directory import service as directory_service
    from telesante.directory.models import OrganisationType, Profession, Role
    from telesante.directory.schemas import MembershipCreate, OrganisationCreate, ProfessionalCreate
    from telesante.kit import clock
    from telesante.kit.identifiers import finess_with_key, rpps_with_key
    from telesante.offers import service as offer_service
    from telesante.offers.models import ActType, Routing
    from telesante.offers.schemas import OfferCreate
    from telesante.oncall import service as oncall_service
    from telesante.oncall.schemas import RotaCreate, ShiftCreate
    from telesante.patients import service as patient_service
    from telesante.patients.schemas import PatientCreate
    from telesante.stroke import service as stroke_service

    counter = iter(range(1, 1_000_000))

    async def organisation(session, name, kind=OrganisationType.CH):
        n = next(counter)
        return await directory_service.create_organisation(
            session,
            None,
            OrganisationCreate(
                finess=finess_with_key(f"22{n:06d}"),
                name=name,
                type=kind,
                commune_insee="22070",
                city="Guingamp",
                postal_code="22200",
            ),
        )

    async def person(session, org, role, family):
        n = next(counter)
        professional = await directory_service.create_professional(
            session,
            None,
            ProfessionalCreate(
                rpps=rpps_with_key(f"1{n:09d}"),
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
        email = f"bench{n}@avc.telesante.fr"
        account = await auth_service.create_account(
            session, None, professional_id=professional.id, email=email, password=PASSWORD
        )
        token, _ = await auth_service.create_api_token(session, email=email, name="bench")
        account = await auth_service.AccountRepository(session).get_with_professional(account.id)
        return token, await auth_service.build_principal(session, account, "token")

    database = Database(Settings())
    async with database.sessionmaker() as session:
        ed = await organisation(session, "CH de Guingamp")
        chu = await organisation(session, "CHU de Brest", OrganisationType.CHU)
        third = await organisation(session, "CH de Morlaix")
        _, admin = await person(session, chu, Role.ORG_ADMIN, "Administratrice")
        head_token, head = await person(session, chu, Role.EXPERT, "Cheffe")
        neurologist_token, neurologist = await person(session, chu, Role.EXPERT, "Neurologue")
        backup_token, backup = await person(session, chu, Role.EXPERT, "Recours")
        emergency_token, emergency = await person(session, ed, Role.REQUESTER, "Urgentiste")
        other_tokens = [(await person(session, third, Role.EXPERT, "Auditeur"))[0] for _ in range(others)]
        rota = await oncall_service.create_rota(
            session,
            admin,
            RotaCreate(
                name="Astreinte TéléAVC",
                organisation_id=chu.id,
                head_professional_id=head.professional_id,
                ack_minutes=3,
            ),
        )
        start = clock.now().replace(second=0, microsecond=0) - timedelta(hours=8)
        for who, role in ((neurologist, "primary"), (backup, "backup")):
            await oncall_service.add_shift(
                session,
                admin,
                rota.id,
                ShiftCreate(
                    professional_id=who.professional_id,
                    role=role,
                    starts_at=start,
                    ends_at=start + timedelta(hours=20),
                ),
            )
        offer = await offer_service.create_offer(
            session,
            admin,
            OfferCreate(
                organisation_id=chu.id,
                title="TéléAVC — alerte thrombolyse 24/7",
                act_type=ActType.TELEEXPERTISE,
                specialty="Neurologie",
                form_code="alerte_avc",
                routing=Routing.ON_CALL,
                rota_id=rota.id,
                response_minutes=15,
                urgent=True,
                ack_minutes=3,
            ),
        )
        assert [o.id for o in await stroke_service.stroke_offers(session, emergency)] == [offer.id]
        patient_ids = []
        for i in range(patients):
            patient, _ = await patient_service.register_patient(
                session,
                emergency,
                PatientCreate(
                    birth_family_name=FAMILY_NAMES[i % len(FAMILY_NAMES)],
                    birth_given_names=GIVEN_NAMES[i % len(GIVEN_NAMES)],
                    birth_date=date(1940, 1, 1) + timedelta(days=97 * i),
                    sex="F" if i % 2 else "M",
                    birth_place_insee="22070",
                    confirm_duplicate=True,
                ),
            )
            patient_ids.append(str(patient.id))
        info = {
            "emergency_token": emergency_token,
            "neurologist_token": neurologist_token,
            "backup_token": backup_token,
            "head_token": head_token,
            "other_tokens": other_tokens,
            "patient_ids": patient_ids,
            "offer_id": str(offer.id),
        }
        await session.commit()
    await database.dispose()
    return info


def seed_in_subprocess(env: dict[str, str], others: int, patients: int) -> dict[str, Any]:
    """Seeding reads its settings from the environment: run it with the servers' environment."""
    code = (
        "import asyncio, json; from bench.stroke_alert import seed; "
        f"print(json.dumps(asyncio.run(seed({others}, {patients}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- streams ----------------------------------------------------------------------------------------------------


@dataclass
class Inbox:
    """What one open stream received: the first arrival of each (event type, subject id), and counts."""

    arrivals: dict[tuple[str, str], float] = field(default_factory=dict)  # -> perf_counter() at arrival
    pages: list[dict[str, Any]] = field(default_factory=list)  # the oncall.page payloads' data
    types: Counter = field(default_factory=Counter)
    received: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, keys: set[tuple[str, str]], seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while not keys <= self.arrivals.keys():
                self.arrived.clear()
                if not keys <= self.arrivals.keys():
                    await self.arrived.wait()


def _subject(kind: str, data: dict[str, Any]) -> str:
    if kind == PAGE:
        return str(data.get("subject_id", ""))
    return str(data.get("case_id") or data.get("request_id") or "")


async def _listen(
    client: httpx.AsyncClient, url: str, token: str, inbox: Inbox, ready: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aconnect_sse(client, "GET", f"{url}/evenements", headers=headers) as source:
        if source.response.status_code != 200:
            raise RuntimeError(f"stream refused: {source.response.status_code}")
        ready.set()
        async for message in source.aiter_sse():
            at = time.perf_counter()
            if not message.data:
                continue
            payload = json.loads(message.data)
            data = payload.get("data", {})
            inbox.arrivals.setdefault((message.event, _subject(message.event, data)), at)
            if message.event == PAGE:
                inbox.pages.append(data)
            inbox.types[message.event] += 1
            inbox.received += 1
            inbox.arrived.set()


# --- measure ----------------------------------------------------------------------------------------------------


def _alert_body(info: dict[str, Any], index: int) -> tuple[dict[str, Any], str]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "offer_id": info["offer_id"],
        "onset_known": True,
        "last_known_well_at": (now - timedelta(minutes=40)).isoformat(),
        "arrival_at": (now - timedelta(minutes=20)).isoformat(),
        "callback_phone": "02 96 44 56 00",
        "summary": "Hémiplégie droite et aphasie depuis 40 minutes, sous antiagrégant.",
    }
    if index % 2 == 0 and index // 2 < len(info["patient_ids"]):
        body["patient_id"] = info["patient_ids"][index // 2]
        return body, "registered"
    body["provisional_identity"] = {
        "birth_family_name": FAMILY_NAMES[index % len(FAMILY_NAMES)],
        "birth_given_names": GIVEN_NAMES[(index + 3) % len(GIVEN_NAMES)],
        "birth_date": (date(1938, 6, 1) + timedelta(days=131 * index)).isoformat(),
        "sex": "M" if index % 4 == 1 else "F",
    }
    return body, "provisional"


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(percentile(ordered, 50), 2),
        "p95_ms": round(percentile(ordered, 95), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2) if ordered else float("nan"),
    }


async def measure(
    alert_url: str,
    stream_url: str,
    other_urls: tuple[str, str],
    backup_url: str,
    head_url: str,
    info: dict[str, Any],
    alerts: int,
    warmup: int,
) -> dict[str, Any]:
    others = [Inbox() for _ in info["other_tokens"]]
    neurologist, backup, head = Inbox(), Inbox(), Inbox()
    listeners = [
        (stream_url, info["neurologist_token"], neurologist),
        (backup_url, info["backup_token"], backup),
        (head_url, info["head_token"], head),
        *(
            (other_urls[i % 2], token, inbox)
            for i, (token, inbox) in enumerate(zip(info["other_tokens"], others, strict=True))
        ),
    ]
    limits = httpx.Limits(max_connections=len(listeners) + 20, max_keepalive_connections=len(listeners) + 20)
    timeout = httpx.Timeout(30.0, read=None)
    emergency_headers = {"Authorization": f"Bearer {info['emergency_token']}"}
    neurologist_headers = {"Authorization": f"Bearer {info['neurologist_token']}"}
    first: list[float] = []  # first event after the alert response (ms, 0 when before it)
    first_end_to_end: list[float] = []  # from the alert request leaving the client
    by_type: dict[str, list[float]] = {PAGE: [], ALERT: [], SENT: []}
    by_type_end_to_end: dict[str, list[float]] = {PAGE: [], ALERT: [], SENT: []}
    by_patient: dict[str, list[float]] = {"registered": [], "provisional": []}
    responses: list[float] = []
    acknowledgements: list[float] = []
    first_kinds: Counter = Counter()
    warmup_end_to_end: list[float] = []
    early = 0
    async with (
        httpx.AsyncClient(limits=limits, timeout=timeout) as stream_client,
        httpx.AsyncClient(base_url=alert_url, timeout=30.0) as doctor,
        httpx.AsyncClient(base_url=stream_url, timeout=30.0) as neurologist_client,
    ):
        readies = [asyncio.Event() for _ in listeners]
        tasks = [
            asyncio.create_task(_listen(stream_client, url, token, inbox, ready))
            for (url, token, inbox), ready in zip(listeners, readies, strict=True)
        ]
        try:
            async with asyncio.timeout(180):
                await asyncio.gather(*(ready.wait() for ready in readies))
            await asyncio.sleep(1.0)  # every subscription registered on the bus (and on Redis)
            for index in range(warmup + alerts):
                body, patient_kind = _alert_body(info, index)
                started = time.perf_counter()
                created = await doctor.post("/api/stroke/cases", json=body, headers=emergency_headers)
                answered = time.perf_counter()
                if created.status_code != 201:
                    raise RuntimeError(f"alert refused: {created.status_code} {created.text[:1000]}")
                case = created.json()
                case_id, request_id = case["id"], case["request_id"]
                keys = {(PAGE, request_id), (SENT, request_id), (ALERT, case_id)}
                await neurologist.wait_for(keys)
                arrivals = {kind: neurologist.arrivals[(kind, subject)] for kind, subject in keys}
                kind, at = min(arrivals.items(), key=lambda item: item[1])
                if index < warmup:
                    warmup_end_to_end.append(round((at - started) * 1000, 2))
                else:
                    first_kinds[kind] += 1
                    early += int(at < answered)
                    first.append(max(0.0, at - answered) * 1000)
                    first_end_to_end.append((at - started) * 1000)
                    by_patient[patient_kind].append((at - started) * 1000)
                    for name, arrived in arrivals.items():
                        by_type[name].append(max(0.0, arrived - answered) * 1000)
                        by_type_end_to_end[name].append((arrived - started) * 1000)
                    responses.append((answered - started) * 1000)
                # the neurologist takes the alert (paging and escalation stop), as on a real night
                acknowledging = time.perf_counter()
                taken = await neurologist_client.post(
                    f"/api/stroke/cases/{case_id}/acknowledge", json={}, headers=neurologist_headers
                )
                if taken.status_code != 200:
                    raise RuntimeError(f"acknowledgement refused: {taken.status_code} {taken.text[:1000]}")
                if index >= warmup:
                    acknowledgements.append((time.perf_counter() - acknowledging) * 1000)
                await neurologist.wait_for({(UPDATED, case_id)})
            await asyncio.sleep(0.5)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    primary_pages = sum(1 for page in neurologist.pages if page.get("target") == "primary")
    p99 = percentile(sorted(first), 99)
    return {
        "streams": len(listeners),
        "other_streams": len(others),
        "alerts": alerts,
        "warmup_alerts": warmup,
        **_summary(first),
        "mean_ms": round(statistics.fmean(first), 2),
        "before_response": early,
        "first_event": dict(first_kinds),
        "alert_to_event": _summary(first_end_to_end),
        "alert_response": _summary(responses),
        "page_after_response": _summary(by_type[PAGE]),
        "page_alert_to_event": _summary(by_type_end_to_end[PAGE]),
        "stroke_alert_after_response": _summary(by_type[ALERT]),
        "stroke_alert_alert_to_event": _summary(by_type_end_to_end[ALERT]),
        "alert_to_event_by_patient": {
            kind: _summary(values) for kind, values in by_patient.items() if values
        },
        "acknowledge_response": _summary(acknowledgements),
        "warmup_alert_to_event_ms": warmup_end_to_end,
        "pages_to_neurologist": primary_pages,
        "pages_to_backup": backup.types[PAGE],
        "pages_to_head": head.types[PAGE],
        "backup_events": dict(
            backup.types
        ),  # request.sent / stroke.alert / updates: a CHU clinician, by design
        "leaked_to_others": sum(inbox.received for inbox in others),  # must be 0
        "meets_goal": p99 <= GOAL_P99_MS,
        "goal_ratio": round(p99 / GOAL_P99_MS, 3),
        "alert_to_event_goal_ratio": round(percentile(sorted(first_end_to_end), 99) / GOAL_P99_MS, 3),
    }


# --- scenarios --------------------------------------------------------------------------------------------------


def _patients(alerts: int, warmup: int) -> int:
    return (alerts + warmup + 1) // 2


async def in_process(others: int, alerts: int, warmup: int) -> dict[str, Any]:
    env = server_env(Path(tempfile.mkdtemp(prefix="telesante-bench-avc-")), None, None, "unused")
    migrate(env)
    info = seed_in_subprocess(env, others, _patients(alerts, warmup))
    instance = start_instance(env)
    try:
        url = instance.url
        result = await measure(url, url, (url, url), url, url, info, alerts, warmup)
        return {"engine": "SQLite, one instance, in-process bus", **result}
    finally:
        stop_instance(instance)


async def across_redis(others: int, alerts: int, warmup: int) -> dict[str, Any]:
    database_url = await recreate_database(BENCH_DATABASE)
    channel = f"telesante:bench:avc:{uuid.uuid4().hex[:8]}"
    env_a = server_env(
        Path(tempfile.mkdtemp(prefix="telesante-bench-avc-a-")), database_url, REDIS_URL, channel
    )
    env_b = {**env_a, "TELESANTE_DATA_DIR": tempfile.mkdtemp(prefix="telesante-bench-avc-b-")}
    migrate(env_a)
    info = seed_in_subprocess(env_a, others, _patients(alerts, warmup))
    a, b = start_instance(env_a), start_instance(env_b)
    try:
        result = await measure(a.url, b.url, (a.url, b.url), a.url, b.url, info, alerts, warmup)
        return {
            "engine": "PostgreSQL, two instances, Redis bus (alert on A, neurologist's stream on B)",
            **result,
        }
    finally:
        stop_instance(a)
        stop_instance(b)


def machine(started: datetime, load_at_start: float) -> dict[str, Any]:
    """The load averages tell whether something else ran on the machine meanwhile (the figures are then noisy)."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_1m_at_start": round(load_at_start, 2),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 alerts per set-up (200 other streams still)")
    parser.add_argument("--alerts", type=int, default=None, help="measured alerts per set-up (default 200)")
    parser.add_argument("--others", type=int, default=200, help="other professionals' open streams")
    parser.add_argument("--warmup", type=int, default=3, help="first alerts of each set-up, reported apart")
    args = parser.parse_args()
    alerts = args.alerts or (30 if args.quick else 200)
    started, load_at_start = datetime.now(UTC), os.getloadavg()[0]
    results = []
    for scenario in (in_process, across_redis):
        result = await scenario(args.others, alerts, args.warmup)
        results.append(result)
        print(
            f"{result['engine']}: {result['streams']} flux ({result['other_streams']} autres), "
            f"{result['alerts']} alertes — premier évènement après la réponse p50 {result['p50_ms']} ms, "
            f"p95 {result['p95_ms']} ms, p99 {result['p99_ms']} ms (objectif ≤ {GOAL_P99_MS:g} ms : "
            f"{'atteint' if result['meets_goal'] else 'MANQUÉ'}), max {result['max_ms']} ms, "
            f"arrivés avant la réponse : {result['before_response']} ; de l'alerte à l'évènement "
            f"p50 {result['alert_to_event']['p50_ms']} ms, p99 {result['alert_to_event']['p99_ms']} ms, "
            f"max {result['alert_to_event']['max_ms']} ms ; premier : {result['first_event']} ; "
            f"appels au second recours : {result['pages_to_backup']}, évènements reçus par d'autres : "
            f"{result['leaked_to_others']}",
            flush=True,
        )
    print(
        json.dumps(
            {
                "benchmark": "stroke_alert",
                "quick": args.quick,
                "goal_p99_ms": GOAL_P99_MS,
                "machine": machine(started, load_at_start),
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
