"""The imaging story in a real browser: the CT scanner of a general hospital pushes a head CT with DCMTK's storescu;
the emergency doctor attaches it to the request (the study's identity agrees with the patient's), opens it in the
viewer of the case, scrolls through the slices with the keyboard and the wheel, changes the window and measures."""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest
from bench.notify import _free_port
from playwright.sync_api import expect

from telesante.imaging.phantom import head_ct, write_series
from tests.e2e.test_journey import log_in
from tests.live import start_live_server, stop_live_server
from tests.offers.test_forms import head_trauma_answers

pytestmark = pytest.mark.e2e

SLICES = 40


@pytest.fixture(scope="module")
def live():
    port = _free_port()
    server = start_live_server(dicom_port=port)
    server.info["dicom_port"] = port
    yield server
    stop_live_server(server)


def push_ct(live, tmp_path) -> None:
    """The scanner sends the study over one association (the header is Maïwenn Le Goff's, as registered)."""
    folder = write_series(
        tmp_path / "ct",
        head_ct(
            SLICES,
            patient_id="LAN-778",
            patient_name="LE GOFF^MAIWENN",
            birth_date="19540312",
            sex="F",
        ),
    )
    done = subprocess.run(
        [
            "storescu",
            "-aet",
            "CT_LANNION",
            "-aec",
            "TELESANTE",
            "+sd",
            "127.0.0.1",
            str(live.info["dicom_port"]),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def draft_request(live) -> str:
    response = httpx.post(
        f"{live.url}/api/requests",
        headers={"Authorization": f"Bearer {live.info['token']}"},
        json={
            "offer_id": live.info["offer_id"],
            "patient_id": live.info["patient_id"],
            "answers": head_trauma_answers(),
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def canvas_centre(page) -> list[int]:
    return page.evaluate(
        """() => { const c = document.querySelector('.viewer-canvas');
                   const d = c.getContext('2d').getImageData(c.width / 2 + 40, c.height / 2, 1, 1).data;
                   return [d[0], d[1], d[2]]; }"""
    )


def test_a_ct_from_the_scanner_is_attached_and_read_in_the_viewer(page, live, tmp_path):
    push_ct(live, tmp_path)
    request_id = draft_request(live)
    log_in(page, live)
    page.goto(f"{live.url}/demandes/{request_id}")
    candidates = page.locator("ul.candidates li")
    expect(candidates).to_have_count(1)
    expect(candidates).to_contain_text("TDM CEREBRALE SANS INJECTION")
    candidates.get_by_role("button", name="Joindre à la demande").click()
    study = page.locator("a.study-link")
    expect(study).to_have_text("TDM CEREBRALE SANS INJECTION")
    expect(page.locator("#imagerie")).to_contain_text(f"{SLICES} images")

    study.click()
    viewer = page.locator("#viewer")
    expect(viewer.locator('[data-overlay="slice"]')).to_have_text(f"Coupe 1 / {SLICES}", timeout=15_000)
    expect(viewer).to_contain_text("LE GOFF MAIWENN")
    expect(page.locator(".viewer-thumb img")).to_have_count(1)
    expect(viewer).to_have_attribute("data-window", "40/80")  # the brain window of the header

    viewer.focus()
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    expect(viewer).to_have_attribute("data-slice", "4")
    page.locator(".viewer-canvas").hover()
    page.mouse.wheel(0, 120)
    expect(viewer).to_have_attribute("data-slice", "5")
    page.keyboard.press("End")
    expect(viewer).to_have_attribute("data-slice", str(SLICES))
    expect(viewer.locator('[data-overlay="slice"]')).to_have_text(
        f"Coupe {SLICES} / {SLICES}", timeout=15_000
    )

    brain = canvas_centre(page)
    viewer.get_by_role("button", name="Os").click()
    expect(viewer).to_have_attribute("data-window", "400/1800")
    expect(viewer.locator('[data-overlay="window"]')).to_have_text("Niveau 400 · Largeur 1800")
    bone = canvas_centre(page)
    assert brain[0] > bone[0]  # brain tissue: mid-grey in the brain window, near black in the bone window

    box = page.locator(".viewer-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 60, box["y"] + box["height"] / 2 - 30)
    page.mouse.up()
    assert viewer.get_attribute("data-window") != "400/1800"  # dragged: width and level changed

    page.keyboard.press("m")
    page.mouse.click(box["x"] + box["width"] / 2 - 100, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2 + 100, box["y"] + box["height"] / 2)
    expect(viewer.locator('[data-overlay="measure"]')).to_have_text(re.compile(r"^Distance : \d+\.\d mm$"))
    expect(viewer).to_have_attribute("data-loaded", str(SLICES), timeout=30_000)


def test_the_colleague_elsewhere_cannot_open_the_viewer(page, live, tmp_path):
    push_ct(live, tmp_path)
    request_id = draft_request(live)
    token = {"Authorization": f"Bearer {live.info['token']}"}
    found = httpx.get(f"{live.url}/dicomweb/studies", params={"PatientID": "LAN-778"}, headers=token).json()
    study_uid = found[0]["0020000D"]["Value"][0]
    log_in(page, live, live.info["colleague_email"], live.info["password"])
    response = page.goto(f"{live.url}/demandes/{request_id}/imagerie/{study_uid}")
    assert response.status == 404
    frames = page.request.get(f"{live.url}/dicomweb/studies/{study_uid}/metadata")
    assert frames.status == 404


def test_a_cd_zip_is_uploaded_from_the_browser_with_its_progress(page, live, tmp_path):
    import zipfile

    series = head_ct(
        12, rows=128, patient_id="LAN-990", patient_name="LE GOFF^MAIWENN", birth_date="19540312", sex="F"
    )
    archive = tmp_path / "cd.zip"
    with zipfile.ZipFile(archive, "w") as cd:
        for number, data in enumerate(series, start=1):
            cd.writestr(f"DICOM/IM{number:04d}", data)
        cd.writestr("AUTORUN.INF", b"[autorun]")
    request_id = draft_request(live)
    log_in(page, live)
    page.goto(f"{live.url}/demandes/{request_id}")
    page.set_input_files("#f-dicom-zip", str(archive))
    expect(page.locator("#imagerie-etat")).to_contain_text("12 image(s) reçue(s)", timeout=30_000)
    expect(page.locator("#imagerie-etat")).to_contain_text("1 fichier(s) non DICOM ignoré(s)")
    expect(page.locator("a.study-link")).to_have_count(1, timeout=15_000)
    expect(page.locator("#imagerie")).to_contain_text("12 images")
