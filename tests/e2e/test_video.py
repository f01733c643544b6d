"""The video call in real Chromium (Debian's), with fake camera and microphone: the EHPAD nurse and the CHU
geriatrician, then the resident's daughter invited by a one-time link; media flows between every pair (getStats),
a reload brings the media back, the link refuses a second browser, a shared photo reaches the chat."""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.conftest import CHROMIUM
from tests.e2e.network import udp_limited
from tests.e2e.test_journey import log_in

pytestmark = pytest.mark.e2e

# A 1×1 PNG (the wound photo stand-in).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)


@pytest.fixture(scope="module")
def media_browser():
    """Chromium with a fake camera and microphone, allowed without a prompt; loopback candidates allowed (a
    machine whose only interface is lo would otherwise gather none)."""
    profile = tempfile.mkdtemp(prefix="telesante-chromium-video-")
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
        yield browser
        browser.close()
    shutil.rmtree(profile, ignore_errors=True)


def _context(browser):
    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    return context, context.new_page()


def flowing(page, peers: int, timeout: float = 20.0) -> dict:
    """Wait until the page receives audio and video from ``peers`` participants, growing between two samples."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        first = page.evaluate("window.telesanteVideo.stats()")
        page.wait_for_timeout(1200)
        second = page.evaluate("window.telesanteVideo.stats()")
        growing = [
            peer
            for peer, stats in second.items()
            if peer in first
            and stats["audioBytes"] > first[peer]["audioBytes"]
            and stats["videoBytes"] > first[peer]["videoBytes"]
            and stats["framesDecoded"] > 0
        ]
        last = second
        if len(growing) >= peers:
            return second
    peers_state = page.evaluate(
        "[...window.telesanteVideo.state.peers].map(([id, p]) => [id, p.pc.signalingState, p.pc.iceConnectionState,"
        " p.pc.getTransceivers().map(t => t.currentDirection + ':' + (t.receiver.track && t.receiver.track.kind))])"
    )
    journal = page.evaluate("window.telesanteVideo.journal")
    raise AssertionError(
        f"media not flowing from {peers} participant(s) on {page.url}: {last} {peers_state}\n"
        + "\n".join(journal)
    )


def _losing_first_offer(route, lost: list) -> None:
    """Relay the page's signalling socket to the platform, losing the first offer the page sends."""
    server = route.connect_to_server()

    def from_page(message) -> None:
        if not lost and isinstance(message, str) and '"offer"' in message and '"description"' in message:
            lost.append(message)
            return
        server.send(message)

    route.on_message(from_page)


def test_assisted_teleconsultation_story(media_browser, live):
    """Issue 5's story: the nurse books, records consent, checks eligibility and starts the call; the doctor admits
    her; the resident's daughter joins by link; the nurse shares a wound photo; her connection drops and returns;
    the doctor writes and signs the report."""
    info = live.info
    nurse_context, nurse = _context(media_browser)
    doctor_context, doctor = _context(media_browser)
    others = []
    try:
        # --- the nurse books a slot for the resident
        log_in(nurse, live, info["nurse_email"])
        nurse.goto(live.url + f"/rendez-vous/nouveau?patient_id={info['resident_id']}")
        nurse.get_by_label("1. Offre de téléconsultation").select_option(label=info["teleconsultation_offer"])
        nurse.get_by_role("button", name="Voir les créneaux libres").click()
        nurse.locator("input[name=slot_id]").first.check()
        nurse.get_by_label("3. Lieu").select_option(label="Salle de soins (salle de téléconsultation)")
        nurse.get_by_label("4. Motif").fill("Chutes répétées depuis trois semaines, plaie du talon")
        nurse.get_by_role("button", name="Réserver ce créneau").click()
        expect(nurse).to_have_url(re.compile(r"/rendez-vous/[0-9a-f-]{36}$"))
        appointment_url = nurse.url

        # --- before the call: consent first (refused without it), then the HAS checklist
        nurse.get_by_label("Numéro où rappeler si la vidéo échoue").fill("02 61 91 50 00")
        nurse.get_by_role("button", name="Valider la préparation").click()
        expect(nurse.locator("#form-error")).to_contain_text("Consentement du patient")
        nurse.get_by_role("link", name="Informer et recueillir le consentement").click()
        nurse.get_by_label("Consentement donné").check()
        nurse.get_by_role("button", name="Enregistrer la décision").click()
        expect(nurse).to_have_url(appointment_url)
        expect(nurse.locator("[data-consent=ok]")).to_be_visible()
        nurse.get_by_label(re.compile("examen physique complet")).check()
        nurse.get_by_label("Numéro où rappeler si la vidéo échoue").fill("02 61 91 50 00")
        nurse.get_by_role("button", name="Valider la préparation").click()
        expect(nurse.locator("#form-error")).to_contain_text("justifiez")
        nurse.get_by_label(re.compile("pourquoi maintenir")).fill(
            "Examen guidé par l'infirmière : talon et marche."
        )
        nurse.get_by_label("Numéro où rappeler si la vidéo échoue").fill("02 61 91 50 00")
        nurse.get_by_role("button", name="Valider la préparation").click()
        expect(nurse.locator("[data-prepared]")).to_be_visible()

        # --- the nurse starts the call and waits; the doctor finds it in the agenda and admits her
        nurse.get_by_role("link", name="Démarrer la téléconsultation").click()
        nurse_call = nurse.locator("[data-video-room]")
        expect(nurse_call).to_have_attribute("data-status", "waiting", timeout=15000)
        log_in(doctor, live, info["geriatrician_email"])
        doctor.goto(live.url + "/rendez-vous")
        doctor.get_by_role("link", name="Ouvrir").first.click()
        doctor.get_by_role("link", name="Démarrer la téléconsultation").click()
        lobby = doctor.locator("[data-lobby-list]")
        expect(lobby).to_contain_text(info["nurse_name"], timeout=15000)
        lobby.get_by_role("button", name="Admettre").click()
        expect(nurse_call).to_have_attribute("data-status", "in-call", timeout=15000)
        flowing(nurse, 1)
        flowing(doctor, 1)

        # --- the resident's daughter joins by a one-time link
        doctor.get_by_label("Nom", exact=True).fill("Anne Kerjean")
        doctor.get_by_label("Qualité").select_option("relative")
        doctor.get_by_role("button", name="Créer le lien").click()
        link = doctor.locator("[data-guest-link]").input_value()
        link = (
            live.url + link[link.index("/video/invitation/") :]
        )  # the link is built on TELESANTE_PUBLIC_URL
        guest_context, guest = _context(media_browser)
        others.append(guest_context)
        guest.goto(link)
        guest.get_by_role("button", name="Rejoindre la téléconsultation").click()
        guest_call = guest.locator("[data-video-room]")
        expect(guest_call).to_have_attribute("data-status", "waiting", timeout=15000)
        expect(guest.locator("body")).not_to_contain_text("Yvonne")  # nothing of the patient before admission
        doctor.locator("[data-lobby-list]").get_by_role("button", name="Admettre").click()
        expect(guest_call).to_have_attribute("data-status", "in-call", timeout=15000)
        for page in (guest, nurse, doctor):
            flowing(page, 2)
        intruder_context, intruder = _context(media_browser)
        others.append(intruder_context)
        intruder.goto(link)
        expect(intruder.locator("[data-invitation-error]")).to_contain_text("déjà été utilisé")

        # --- the nurse shares a photo of the wound, and writes in the chat
        nurse.locator("#share-file").set_input_files(
            {"name": "plaie-talon.png", "mimeType": "image/png", "buffer": PNG}
        )
        nurse.get_by_role("button", name="Partager", exact=True).click()
        expect(doctor.locator("[data-chat-list]")).to_contain_text("plaie-talon.png", timeout=10000)
        nurse.get_by_role("textbox", name="Message").fill("La plaie est propre.")
        nurse.get_by_role("button", name="Envoyer").click()
        expect(guest.locator("[data-chat-list]")).to_contain_text("La plaie est propre.", timeout=10000)

        # --- the nurse's network drops, then returns: she is back in the same call, media flowing; on the way
        # back her first offer is lost (a socket replaced while it travelled): she sends it again
        lost = []
        nurse.route_web_socket(re.compile(r".*/ws$"), lambda route: _losing_first_offer(route, lost))
        nurse_context.set_offline(True)
        expect(nurse_call).to_have_attribute("data-status", "reconnecting", timeout=20000)
        nurse_context.set_offline(False)
        expect(nurse_call).to_have_attribute("data-status", "in-call", timeout=30000)
        for page in (nurse, doctor, guest):
            flowing(page, 2)
        assert len(lost) == 1, lost
        assert any(
            line.split(" ", 1)[1].startswith("offer sent again")
            for line in nurse.evaluate("window.telesanteVideo.journal")
        ), nurse.evaluate("window.telesanteVideo.journal")
        # and a reload of her page brings her back too
        nurse.reload()
        expect(nurse.locator("[data-video-room]")).to_have_attribute("data-status", "in-call", timeout=20000)
        flowing(nurse, 2)

        # --- the doctor shares his screen (a result to show), then stops; a single camera cannot be switched
        doctor.get_by_role("button", name="Partager l'écran").click()
        expect(nurse.locator("[data-peer] figcaption", has_text="partage d'écran")).to_be_visible(
            timeout=10000
        )
        doctor.get_by_role("button", name="Partager l'écran").click()
        expect(nurse.locator("[data-peer] figcaption", has_text="partage d'écran")).to_have_count(
            0, timeout=10000
        )
        nurse.get_by_role("button", name="Changer de caméra").click()
        expect(nurse.locator("[data-call-status]")).to_have_text("Une seule caméra disponible.")

        # --- the doctor's network weakens: audio only (the others see it on his tile; audio keeps flowing)
        doctor.get_by_role("button", name="Audio seul").click()
        expect(nurse.locator("[data-peer] figcaption", has_text="audio seul")).to_be_visible(timeout=10000)
        names = dict(nurse.evaluate("[...window.telesanteVideo.state.peers].map(([id, p]) => [p.name, id])"))
        doctor_peer = names[info["geriatrician_name"]]
        audio_before = nurse.evaluate("window.telesanteVideo.stats()")[doctor_peer]["audioBytes"]
        nurse.wait_for_timeout(1500)
        assert nurse.evaluate("window.telesanteVideo.stats()")[doctor_peer]["audioBytes"] > audio_before

        # --- then the EHPAD's network really weakens (UDP on loopback limited by the kernel): the nurse's page
        # sees its bandwidth estimate stay below 150 kbit/s and drops her video by itself; audio keeps flowing
        with udp_limited("400kbit"):
            expect(nurse.locator("[data-call-status]")).to_contain_text("Réseau faible", timeout=60000)
            expect(nurse.get_by_role("button", name="Audio seul")).to_have_attribute("aria-pressed", "true")
            expect(
                doctor.locator(
                    "[data-peer] figcaption", has_text=re.compile(f"{info['nurse_name']}.*audio seul")
                )
            ).to_be_visible(timeout=10000)
            names = dict(
                doctor.evaluate("[...window.telesanteVideo.state.peers].map(([id, p]) => [p.name, id])")
            )
            nurse_peer = names[info["nurse_name"]]
            audio_before = doctor.evaluate("window.telesanteVideo.stats()")[nurse_peer]["audioBytes"]
            doctor.wait_for_timeout(2000)
            assert doctor.evaluate("window.telesanteVideo.stats()")[nurse_peer]["audioBytes"] > audio_before

        # --- the doctor writes the report, pre-filled from the call, and signs it
        doctor.get_by_role("link", name=re.compile("rédiger et signer le compte rendu")).click()
        expect(doctor.locator("#participant_name_1")).to_have_value(info["nurse_name"])
        expect(doctor.locator("#participant_name_2")).to_have_value("Anne Kerjean")
        expect(doctor.locator("#technical_incident_details")).to_have_value(re.compile("coupure"))
        expect(doctor.locator("#technical_incident_details")).to_have_value(re.compile("audio seul"))
        expect(doctor.locator("#technical_incident_details")).to_have_value(
            re.compile(
                f"réseau faible : passage automatique en audio seul \\(.*{re.escape(info['nurse_name'])}"
            )
        )
        expect(doctor.locator("#duration_minutes")).to_have_value(re.compile(r"^[0-9]+$"))
        doctor.get_by_label("Conclusion").fill("Chutes sur hypotension orthostatique. Plaie du talon propre.")
        doctor.get_by_label(re.compile("Prescriptions et actes")).fill(
            "Arrêt de l'amlodipine ; soins de plaie."
        )
        doctor.get_by_role("button", name=re.compile("Signer le compte rendu")).click()
        expect(doctor).to_have_url(re.compile(r"/demandes/[0-9a-f-]{36}$"))
        expect(doctor.locator("body")).to_contain_text("hypotension orthostatique")
        expect(nurse.locator("[data-video-room]")).to_have_attribute("data-status", "ended", timeout=10000)
        expect(guest_call).to_have_attribute("data-status", "ended", timeout=10000)
    finally:
        for context in [nurse_context, doctor_context, *others]:
            context.close()


def test_device_test_page_needs_no_account(media_browser, live):
    context, page = _context(media_browser)
    try:
        page.goto(live.url + "/video/test")
        page.get_by_role("button", name="Lancer le test").click()
        tester = page.locator("[data-device-test]")
        expect(tester).to_have_attribute("data-status", "done", timeout=20000)
        expect(page.locator("[data-result=camera]")).to_contain_text("OK")
        expect(page.locator("[data-result=bandwidth]")).to_contain_text("Mbit/s")
    finally:
        context.close()
