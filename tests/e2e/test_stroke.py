"""Issue 6's night case in real Chromium (Debian's), with fake camera and microphone, DCMTK's storescu as the CT
scanner and the live server's own clock:

the emergency doctor of CH de Lannion alerts for a stroke that began 40 minutes ago (the story's 02:10 alert for a
01:30 onset: the live server runs on the real clock, so the times are relative to now); the on-call neurologist's
page rings without a reload; she takes the alert and opens the video, the emergency doctor joins and is admitted,
media flows both ways; the scanner sends the head CT with the case's exam number and it appears in the viewer
beside the video; the emergency doctor scores NIHSS 14 and the measures, the neurologist confirms NIHSS 14,
answers the checklist and decides thrombolysis with the computed dose and a thrombectomy transfer; the needle time
is stamped; the thrombectomy centre sees the case; the neurologist signs the compte rendu; the month's dashboard
counts the case with its door-to-needle time."""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta

import pytest
from bench.notify import _free_port
from playwright.sync_api import expect

from telesante.imaging.phantom import head_ct, write_series
from telesante.kit import clock
from tests.e2e.test_journey import log_in
from tests.e2e.test_video import _context, flowing, media_browser  # noqa: F401 - the fixture is used below
from tests.live import start_live_server, stop_live_server

pytestmark = pytest.mark.e2e

NIHSS_14 = {
    "1a": 0, "1b": 1, "1c": 0, "2": 1, "3": 2, "4": 2, "5a": 0, "5b": 3,
    "6a": 0, "6b": 2, "7": 0, "8": 1, "9": 2, "10": 0, "11": 0,
}  # fmt: skip
ACCESSION = "AVC-2026-0001"
SLICES = 24


@pytest.fixture(scope="module")
def live():
    port = _free_port()
    server = start_live_server(dicom_port=port)
    server.info["dicom_port"] = port
    yield server
    stop_live_server(server)


def _paris(delta_minutes: int) -> str:
    return (clock.now() + timedelta(minutes=delta_minutes)).astimezone(clock.PARIS).strftime("%Y-%m-%dT%H:%M")


def _send_ct(live, tmp_path) -> None:
    """The scanner of CH de Lannion sends the head CT of the provisional identity, with the exam number the
    emergency doctor gave in the alert, over one association."""
    folder = write_series(
        tmp_path / "ct",
        head_ct(
            SLICES,
            patient_id="URG-20261204-7",
            patient_name="KERVELLA^JEANNE",
            birth_date="19480601",
            sex="F",
            accession_number=ACCESSION,
        ),
    )
    done = subprocess.run(
        ["storescu", "-aet", "CT_LANNION", "-aec", "TELESANTE", "+sd", "127.0.0.1", str(live.info["dicom_port"]),
         str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def _score_nihss(page) -> None:
    page.locator("#nihss summary").click()
    for code, value in NIHSS_14.items():
        page.locator(f"#nihss-{code}").select_option(str(value))
    page.get_by_role("button", name="Enregistrer le NIHSS").click()


def test_the_night_case(media_browser, live, tmp_path):  # noqa: F811 - the fixture imported above
    info = live.info
    neuro_context, neuro = _context(media_browser)
    ed_context, ed = _context(media_browser)
    centre_context, centre = _context(media_browser)
    try:
        # --- the neurologist on duty has the TéléAVC list open (its event stream)
        log_in(neuro, live, info["neurologist_email"])
        neuro.goto(live.url + "/avc")
        expect(neuro.locator("#dossiers-avc")).to_contain_text("Aucun dossier AVC")

        # --- the emergency doctor alerts: provisional identity, onset 40 min ago, arrival 15 min ago
        log_in(ed, live)
        ed.goto(live.url + "/avc/alerte")
        expect(ed.locator("main")).not_to_contain_text("Aucune filière TéléAVC")
        ed.get_by_label(re.compile(r"^Nom")).fill("Kervella")
        ed.get_by_label("Prénom(s)").fill("Jeanne")
        ed.get_by_label("Date de naissance").fill("1948-06-01")
        ed.get_by_label("Sexe").select_option("F")
        ed.get_by_label(re.compile("^Début des symptômes")).fill(_paris(-40))
        ed.get_by_label(re.compile("^Arrivée aux urgences")).fill(_paris(-15))
        ed.get_by_label(re.compile("^Numéro où rappeler")).fill("02 96 05 71 11")
        ed.get_by_label(re.compile("^N° d'examen du scanner")).fill(ACCESSION)
        ed.get_by_role("button", name="Envoyer l'alerte").click()
        expect(ed).to_have_url(re.compile(r"/avc/[0-9a-f-]{36}$"))
        case_url = ed.url
        case_path = case_url[len(live.url) :]
        expect(ed.locator('[data-window="iv"]')).to_have_attribute("data-state", "ok")

        # --- the neurologist's page rings: the case appears and is announced, without a reload
        expect(neuro.locator(f'a[href="{case_path}"]')).to_be_visible(timeout=15_000)
        expect(neuro.locator("#live-annonces")).not_to_be_empty(timeout=15_000)
        neuro.locator(f'a[href="{case_path}"]').click()
        neuro.locator("[data-acknowledge]").click()
        expect(neuro.locator("[data-case-status]")).to_have_attribute("data-case-status", "in_progress")

        # --- she opens the video; the emergency doctor joins and is admitted; media flows both ways
        neuro.locator("[data-open-video]").click()
        expect(neuro).to_have_url(f"{case_url}/salle")
        neuro_call = neuro.locator("[data-video-room]")
        expect(neuro_call).to_have_attribute("data-status", "in-call", timeout=15_000)
        expect(ed.locator("[data-open-video]")).to_have_text(
            re.compile("Rejoindre la vidéo"), timeout=15_000
        )  # the case page refreshed itself
        ed.locator("[data-open-video]").click()
        ed_call = ed.locator("[data-video-room]")
        expect(ed_call).to_have_attribute("data-status", "waiting", timeout=15_000)
        neuro.locator("[data-lobby-list]").get_by_role("button", name="Admettre").click()
        expect(ed_call).to_have_attribute("data-status", "in-call", timeout=15_000)
        flowing(ed, 1)
        flowing(neuro, 1)

        # --- the scanner sends the CT; it joins the case by itself and opens beside the video
        expect(neuro.locator("[data-no-images]")).to_be_visible()
        _send_ct(live, tmp_path)
        neuro.reload()
        viewer = neuro.locator("#viewer")
        expect(viewer.locator('[data-overlay="slice"]')).to_have_text(f"Coupe 1 / {SLICES}", timeout=20_000)
        expect(viewer).to_contain_text("KERVELLA")
        expect(neuro_call).to_have_attribute("data-status", "in-call", timeout=20_000)  # back in the call
        viewer.focus()
        neuro.keyboard.press("ArrowDown")
        expect(viewer).to_have_attribute("data-slice", "2")
        flowing(neuro, 1)

        # --- the emergency side: NIHSS and measures on the case page (the call goes on in the other tab)
        ed_case = ed_context.new_page()
        ed_case.goto(case_url)
        expect(ed_case.locator('[data-milestone="imaging_available"] time')).to_be_visible()
        _score_nihss(ed_case)
        expect(ed_case.locator('[data-nihss-total="14"]')).to_have_count(1)
        ed_case.locator("#m-sys").fill("172")
        ed_case.locator("#m-dia").fill("94")
        ed_case.locator("#m-glu").fill("6,8")
        ed_case.locator("#m-pla").fill("245000")
        ed_case.locator("#m-inr").fill("1,0")
        ed_case.locator("#m-poids").fill("62")
        ed_case.locator("#m-aco").select_option("aucun")
        ed_case.get_by_role("button", name="Enregistrer les mesures").click()
        expect(ed_case.locator('[data-dose="alteplase"]')).to_contain_text("55,8 mg")  # 0.9 mg/kg × 62 kg

        # --- the neurologist confirms NIHSS 14, answers the checklist, decides with the computed dose
        neuro_case = neuro_context.new_page()
        neuro_case.goto(case_url)
        _score_nihss(neuro_case)
        expect(neuro_case.locator('[data-nihss-total="14"]')).to_have_count(2)
        for row in neuro_case.locator("tr[data-ci]").all():
            choice = row.locator('input[value="non"]:not([disabled])')
            if choice.count():
                choice.check()
        neuro_case.get_by_role("button", name="Enregistrer la check-list").click()
        expect(neuro_case.locator("[data-unanswered]")).to_have_count(0)
        neuro_case.get_by_label("Thrombolyse intraveineuse").check()
        neuro_case.locator("#d-agent").select_option("alteplase")
        neuro_case.get_by_label("Thrombectomie indiquée").check()
        neuro_case.locator("#d-centre").select_option(label=info["thrombectomy_centre"])
        neuro_case.locator("#d-transport").select_option("smur")
        neuro_case.locator("#d-reasons").fill("Occlusion proximale probable, NIHSS 14.")
        neuro_case.get_by_role("button", name="Enregistrer la décision").click()
        expect(neuro_case.locator('[data-disposition="thrombolysis"]')).to_be_visible()
        expect(neuro_case.locator("[data-dose-given]")).to_contain_text("55,8 mg")

        # --- the emergency doctor stamps the needle
        ed_case.reload()
        ed_case.get_by_role("button", name="Horodater : Début de la thrombolyse (aiguille)").click()
        expect(ed_case.locator('[data-milestone="needle"] time')).to_be_visible()
        expect(ed_case.locator('[data-counter="door_to_needle"]')).to_have_attribute(
            "data-state", re.compile("ok|near")
        )

        # --- the thrombectomy centre sees the case, its decision and its images
        log_in(centre, live, info["neuroradiologist_email"])
        centre.goto(live.url + "/avc")
        centre.locator(f'a[href="{case_path}"]').click()
        expect(centre.locator("[data-thrombectomy]")).to_contain_text(info["thrombectomy_centre"])
        centre.get_by_role("link", name="Visionneuse").click()
        expect(centre.locator('#viewer [data-overlay="slice"]')).to_have_text(
            f"Coupe 1 / {SLICES}", timeout=20_000
        )

        # --- the neurologist signs the compte rendu written from the case; the call ends
        neuro_case.reload()
        neuro_case.get_by_role("link", name="Relire et signer le compte rendu").click()
        expect(neuro_case.locator("#r-conclusion")).to_contain_text("NIHSS (neurologue")
        expect(neuro_case.locator("#r-prescriptions")).to_contain_text("Altéplase 55,8 mg")
        neuro_case.get_by_role("button", name="Signer le compte rendu").click()
        expect(neuro_case.locator("[data-report-signed]")).to_be_visible()
        expect(ed_call).to_have_attribute("data-status", "ended", timeout=15_000)

        # --- the month's dashboard of CH de Lannion counts it with its door-to-needle time
        ed_case.goto(live.url + "/avc/qualite")
        expect(ed_case.locator('[data-kpi="alerts"]')).to_have_text("1")
        expect(ed_case.locator('[data-kpi="thrombolyses"]')).to_contain_text("1 (100 %)")
        door_to_needle = ed_case.locator('[data-delay="door_to_needle"] [data-within]')
        expect(door_to_needle).to_contain_text("1/1 ≤ 60 min")
        expect(ed_case.locator("[data-door-to-needle]")).to_have_text(re.compile(r"^1\d min$|^[2-5]\d min$"))
    finally:
        for context in (neuro_context, ed_context, centre_context):
            context.close()
