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
    raise AssertionError(f"media not flowing from {peers} participant(s): {last}")


def test_assisted_teleconsultation_with_a_guest(media_browser, live):
    info = live.info
    nurse_context, nurse = _context(media_browser)
    doctor_context, doctor = _context(media_browser)
    guests = []
    try:
        log_in(nurse, live, info["nurse_email"])
        nurse.goto(live.url + f"/video/rendez-vous/{info['appointment_id']}")
        expect(nurse).to_have_url(re.compile(r"/video/salles/"))
        room_url = nurse.url
        nurse_call = nurse.locator("[data-video-room]")
        expect(nurse_call).to_have_attribute("data-status", "waiting", timeout=15000)

        log_in(doctor, live, info["geriatrician_email"])
        doctor.goto(room_url)
        lobby = doctor.locator("[data-lobby-list]")
        expect(lobby).to_contain_text(info["nurse_name"], timeout=15000)
        lobby.get_by_role("button", name="Admettre").click()
        expect(nurse_call).to_have_attribute("data-status", "in-call", timeout=15000)
        flowing(nurse, 1)
        flowing(doctor, 1)

        # the doctor invites the resident's daughter
        doctor.get_by_label("Nom").fill("Anne Kerjean")
        doctor.get_by_label("Qualité").select_option("relative")
        doctor.get_by_role("button", name="Créer le lien").click()
        link = doctor.locator("[data-guest-link]").input_value()
        assert "/video/invitation/" in link
        link = live.url + link[link.index("/video/invitation/") :]  # the link is built on TELESANTE_PUBLIC_URL
        flowing(doctor, 1)  # the page came back with the call

        guest_context, guest = _context(media_browser)
        guests.append(guest_context)
        guest.goto(link)
        expect(guest.locator("body")).not_to_contain_text("Kerjean Yvonne")
        guest.get_by_role("button", name="Rejoindre la téléconsultation").click()
        guest_call = guest.locator("[data-video-room]")
        expect(guest_call).to_have_attribute("data-status", "waiting", timeout=15000)
        expect(guest.locator("body")).not_to_contain_text("Yvonne")  # nothing of the patient before admission
        doctor.locator("[data-lobby-list]").get_by_role("button", name="Admettre").click()
        expect(guest_call).to_have_attribute("data-status", "in-call", timeout=15000)
        flowing(guest, 2)
        flowing(nurse, 2)
        flowing(doctor, 2)

        # the link works once: another browser is refused
        intruder_context, intruder = _context(media_browser)
        guests.append(intruder_context)
        intruder.goto(link)
        expect(intruder.locator("[data-invitation-error]")).to_contain_text("déjà été utilisé")

        # the nurse shares a photo of the wound: it reaches the doctor's chat
        nurse.locator("#share-file").set_input_files(
            {"name": "plaie-talon.png", "mimeType": "image/png", "buffer": PNG}
        )
        nurse.get_by_role("button", name="Partager", exact=True).click()
        expect(doctor.locator("[data-chat-list]")).to_contain_text("plaie-talon.png", timeout=10000)
        nurse.get_by_role("textbox", name="Message").fill("La plaie est propre.")
        nurse.get_by_role("button", name="Envoyer").click()
        expect(guest.locator("[data-chat-list]")).to_contain_text("La plaie est propre.", timeout=10000)

        # the nurse's connection drops (reload): she comes back to the same call, no new admission needed
        nurse.reload()
        expect(nurse.locator("[data-video-room]")).to_have_attribute("data-status", "in-call", timeout=20000)
        flowing(nurse, 2)
        flowing(doctor, 2)
        flowing(guest, 2)
    finally:
        for context in [nurse_context, doctor_context, *guests]:
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
