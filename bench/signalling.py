"""Video call signalling: idle connections held by one instance, and how fast a call shows the other participant.

    python -m bench.signalling [--quick]

1. **Idle connections** — one Télésanté instance (uvicorn, SQLite) and N signalling WebSockets (1,000; 200 with
   ``--quick``), each a doctor in the call of one of N prepared appointments (authenticated by session cookie, Origin
   checked, the hub's welcome received). The server's resident memory is read before and after: memory per
   connection. The peer, in the same run: a bare ASGI WebSocket app under the same uvicorn (``bench/bare_ws.py``),
   which accepts, sends one message and waits — the floor of any Python server here. Both answer every connection's
   ping at the end (they are alive, not just open).
2. **Join to first remote frame** — two headless Chromium pages (Debian's, fake camera and microphone): the doctor in
   the call, then the nurse's page opened in a fresh browser context 10 times (median; 5 with ``--quick``); the time
   from the start of her page's navigation to the first video frame of the doctor drawn on it
   (``requestVideoFrameCallback``). Limit: 1,000 ms (the viewer's first-image limit of issue 4, kept for calls).

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.notify import ROOT, _free_port, migrate, start_instance, stop_instance

CHROMIUM = os.environ.get("TELESANTE_CHROMIUM", "/usr/bin/chromium")
FIRST_FRAME_LIMIT_MS = 1000.0
PASSWORD = "Bench-signalling-2026!"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def seed(rooms: int) -> dict[str, Any]:
    """A CHU geriatrician with ``rooms`` prepared teleconsultations (and their calls), an EHPAD nurse, sessions."""
    from datetime import time as clock_time
    from datetime import timedelta

    import telesante.models  # noqa: F401 - every model registered
    from telesante.auth import service as auth_service
    from telesante.config import Settings
    from telesante.consents import service as consent_service
    from telesante.consents.models import ConsentScopeType
    from telesante.consents.schemas import ConsentCreate
    from telesante.db import Database
    from telesante.directory import service as directory_service
    from telesante.directory.models import OrganisationType, Profession, Role
    from telesante.directory.schemas import MembershipCreate, OrganisationCreate, ProfessionalCreate
    from telesante.kit import clock
    from telesante.kit.identifiers import finess_with_key, rpps_with_key
    from telesante.offers import service as offer_service
    from telesante.offers.models import ActType, Routing
    from telesante.offers.schemas import OfferCreate
    from telesante.patients import service as patient_service
    from telesante.patients.schemas import PatientCreate
    from telesante.scheduling import service as scheduling
    from telesante.scheduling.schemas import AppointmentCreate, CallPreparation, PatternCreate
    from telesante.video import service as video

    settings = Settings()
    database = Database(settings)
    async with database.sessionmaker() as session:

        async def organisation(n: int, name: str, kind: OrganisationType):
            return await directory_service.create_organisation(
                session,
                None,
                OrganisationCreate(
                    finess=finess_with_key(f"3500000{n}"),
                    name=name,
                    type=kind,
                    commune_insee="35238",
                    city="Rennes",
                    postal_code="35000",
                ),
            )

        async def person(
            n: int, family: str, organisation_id, role: Role, profession: Profession, email: str
        ):
            professional = await directory_service.create_professional(
                session,
                None,
                ProfessionalCreate(
                    rpps=rpps_with_key(f"100000000{n}"),
                    family_name=family,
                    given_name="Claire",
                    profession=profession,
                ),
            )
            await directory_service.add_membership(
                session,
                None,
                MembershipCreate(professional_id=professional.id, organisation_id=organisation_id, role=role),
            )
            account = await auth_service.create_account(
                session, None, professional_id=professional.id, email=email, password=PASSWORD
            )
            account = await auth_service.AccountRepository(session).get_with_professional(account.id)
            return await auth_service.build_principal(session, account, "session")

        chu = await organisation(1, "CHU de Rennes", OrganisationType.CHU)
        ehpad = await organisation(2, "EHPAD Les Hortensias", OrganisationType.EHPAD)
        doctor = await person(1, "Geriatre", chu.id, Role.EXPERT, Profession.MEDECIN, "geriatre@bench.fr")
        nurse = await person(2, "Infirmiere", ehpad.id, Role.ASSISTANT, Profession.INFIRMIER, "ide@bench.fr")
        admin = await person(3, "Admin", chu.id, Role.ORG_ADMIN, Profession.ADMINISTRATIF, "admin@bench.fr")
        offer = await offer_service.create_offer(
            session,
            admin,
            OfferCreate(
                organisation_id=chu.id,
                title="Téléconsultation de gériatrie",
                act_type=ActType.TELECONSULTATION,
                form_code="question_generique",
                routing=Routing.POOL,
                response_minutes=60 * 24,
            ),
        )
        today = clock.to_paris(clock.now()).date()
        await scheduling.add_pattern(
            session,
            doctor,
            PatternCreate(
                professional_id=doctor.professional_id,
                offer_id=offer.id,
                weekdays=[1, 2, 3, 4, 5, 6, 7],
                start_time=clock_time(0, 0),
                end_time=clock_time(23, 55),
                slot_minutes=5,
                valid_from=today,
                valid_until=today + timedelta(days=rooms // 200 + 2),
                skip_public_holidays=False,
            ),
            settings,
        )
        patient, _ = await patient_service.register_patient(
            session,
            nurse,
            PatientCreate(
                birth_family_name="Kerjean",
                birth_given_names="Yvonne",
                birth_date="1938-02-11",
                sex="F",
                birth_place_insee="35238",
            ),
        )
        notice = (
            await consent_service.list_information_texts(session, ConsentScopeType.ACT, "teleconsultation")
        )[0]
        await consent_service.record_consent(
            session,
            nurse,
            patient.id,
            ConsentCreate(
                scope_type="act",
                scope_code="teleconsultation",
                decision="given",
                information_text_id=notice.id,
            ),
        )
        slots = []
        while len(slots) < rooms:  # the listing gives 200 at a time
            start = slots[-1][0].starts_at + timedelta(seconds=1) if slots else None
            batch = await scheduling.list_free_slots(
                session, nurse, offer.id, settings, starts_at=start, days=rooms // 200 + 2
            )
            if not batch:
                break
            slots += batch
        preparation = CallPreparation(
            physical_exam_needed=False,
            bad_news=False,
            data_unavailable=False,
            communication_impossible=False,
            callback_phone="02 61 91 50 00",
        )
        room_ids = []
        for slot, _name in slots[:rooms]:
            appointment = await scheduling.book_appointment(
                session, nurse, AppointmentCreate(slot_id=slot.id, patient_id=patient.id, reason="Suivi")
            )
            await scheduling.prepare_call(session, nurse, appointment.id, preparation)
            room_ids.append(str((await video.open_room(session, nurse, appointment.id)).id))
        if len(room_ids) < rooms:
            raise RuntimeError(f"only {len(room_ids)} slots for {rooms} rooms")
        sessions = {}
        for email in ("geriatre@bench.fr", "ide@bench.fr"):
            outcome = await auth_service.login(
                session, settings, email=email, password=PASSWORD, ip="127.0.0.1", user_agent="bench"
            )
            sessions[email] = outcome.session_token
        await session.commit()
    await database.dispose()
    return {"rooms": room_ids, "doctor": sessions["geriatre@bench.fr"], "nurse": sessions["ide@bench.fr"]}


def seed_in_subprocess(env: dict[str, str], rooms: int) -> dict[str, Any]:
    code = (
        "import asyncio, json; from bench.signalling import seed; "
        f"print(json.dumps(asyncio.run(seed({rooms}))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("VmRSS missing")


async def hold(urls: list[str], headers: dict[str, str], pid: int, settle: float = 2.0) -> dict[str, float]:
    """Open every URL as a WebSocket (50 at a time), wait for each one's first message, read the server's memory,
    ping every connection, close them."""
    before = rss_kib(pid)
    sockets = []
    started = time.perf_counter()
    gate = asyncio.Semaphore(50)

    async def open_one(url: str):
        async with gate:
            socket = await websockets.connect(
                url, additional_headers=headers, max_size=2**20, ping_interval=None
            )
            first = json.loads(await asyncio.wait_for(socket.recv(), 30))
            while first.get("type") == "config":  # Télésanté sends the ICE servers, then the hub's answer
                first = json.loads(await asyncio.wait_for(socket.recv(), 30))
            if first.get("type") not in ("welcome", "waiting"):
                raise RuntimeError(f"unexpected first message: {first}")
            return socket

    sockets = await asyncio.gather(*(open_one(url) for url in urls))
    opened = time.perf_counter() - started
    await asyncio.sleep(settle)
    after = rss_kib(pid)
    alive = 0
    for socket in sockets:
        pong = await socket.ping()
        await asyncio.wait_for(pong, 10)
        alive += 1
    await asyncio.gather(*(socket.close() for socket in sockets))
    return {
        "connections": len(sockets),
        "alive": alive,
        "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "kib_per_connection": round((after - before) / len(sockets), 1),
        "open_seconds": round(opened, 2),
    }


def _start_bare(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.bare_ws:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return process
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                process.terminate()
                raise
            time.sleep(0.2)


async def bare_peer(count: int) -> dict[str, float]:
    port = _free_port()
    process = await asyncio.to_thread(_start_bare, port)
    try:
        return await hold([f"ws://127.0.0.1:{port}/ws"] * count, {}, process.pid)
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 15)


def first_frames(url: str, info: dict[str, Any], runs: int) -> list[float]:
    """Milliseconds from the nurse's navigation start to the doctor's first frame on her page, ``runs`` times."""
    from playwright.sync_api import sync_playwright

    room = f"{url}/video/salles/{info['rooms'][0]}"
    host = url.removeprefix("http://").split(":")[0]

    def context_for(browser, token: str):
        context = browser.new_context(locale="fr-FR")
        context.add_cookies([{"name": "ts_session", "value": token, "domain": host, "path": "/"}])
        return context

    def wait_for(page, expression: str, timeout: float = 20.0):
        """Poll ``expression`` until truthy (``wait_for_function`` would need eval, which the CSP forbids)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = page.evaluate(expression)
            if value:
                return value
            time.sleep(0.02)
        raise TimeoutError(f"{expression} still false after {timeout} s")

    timings = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                "--allow-loopback-in-peer-connection",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        doctor_context = context_for(browser, info["doctor"])
        doctor = doctor_context.new_page()
        doctor.goto(room)
        wait_for(doctor, "document.querySelector('[data-video-room]').dataset.status === 'in-call'")
        warm_context = context_for(browser, info["nurse"])  # first visit: the doctor admits her once
        warm = warm_context.new_page()
        warm.goto(room)
        doctor.locator("[data-lobby-list] button", has_text="Admettre").click(timeout=15000)
        wait_for(warm, "window.telesanteVideo && window.telesanteVideo.firstRemoteFrameAt != null")
        warm_context.close()
        for _ in range(runs):
            context = context_for(browser, info["nurse"])
            page = context.new_page()
            page.goto(room)
            wait_for(page, "window.telesanteVideo && window.telesanteVideo.firstRemoteFrameAt != null")
            timings.append(page.evaluate("window.telesanteVideo.firstRemoteFrameAt"))
            context.close()
            time.sleep(0.5)  # the doctor's page sees her leave before the next run
        browser.close()
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="200 connections and 5 calls instead of 1,000 and 10"
    )
    args = parser.parse_args()
    count, runs = (200, 5) if args.quick else (1000, 10)
    with tempfile.TemporaryDirectory(prefix="bench-signalling-") as tmp:
        env = {
            **os.environ,
            "TELESANTE_DATA_DIR": tmp,
            "TELESANTE_SECRET_KEY": "bench-signalling-secret-key-0123456789",
            "TELESANTE_DEMO": "0",
            "TELESANTE_LOG_LEVEL": "WARNING",
            "TELESANTE_DICOM_PORT": "0",
            "TELESANTE_JOBS_ENABLED": "0",
            "TELESANTE_COOKIE_SECURE": "0",
        }
        env.pop("TELESANTE_DATABASE_URL", None)
        migrate(env)
        _progress(f"seeding {count} prepared teleconsultations…")
        info = seed_in_subprocess(env, count)
        instance = start_instance(env)
        try:
            ws_base = instance.url.replace("http://", "ws://")
            headers = {"Origin": instance.url, "Cookie": f"ts_session={info['doctor']}"}
            _progress(f"[telesante] {count} idle signalling connections…")
            ours = await hold(
                [f"{ws_base}/video/salles/{room}/ws" for room in info["rooms"]], headers, instance.process.pid
            )
            _progress(f"[telesante] {ours}")
            _progress(f"[telesante] join to first remote frame, {runs} calls…")
            frames = await asyncio.to_thread(first_frames, instance.url, info, runs)
            _progress(f"[telesante] {[round(f) for f in frames]} ms")
        finally:
            stop_instance(instance)
    _progress(f"[bare ASGI WebSocket app] {count} idle connections…")
    bare = await bare_peer(count)
    _progress(f"[bare] {bare}")
    median = statistics.median(frames)
    print(
        json.dumps(
            {
                "benchmark": "signalling",
                "connections": count,
                "telesante": ours,
                "bare_asgi_websocket": bare,
                "memory_ratio_over_bare": round(ours["kib_per_connection"] / bare["kib_per_connection"], 2)
                if bare["kib_per_connection"] > 0
                else None,
                "first_remote_frame_ms": {
                    "runs": [round(f, 1) for f in frames],
                    "median": round(median, 1),
                    "max": round(max(frames), 1),
                    "limit": FIRST_FRAME_LIMIT_MS,
                },
                "goals_met": {"first_frame_within_limit": median <= FIRST_FRAME_LIMIT_MS},
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
