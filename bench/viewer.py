"""The viewer in a real browser: how long until the first image of a 300-slice CT is on screen, over loopback.

    python -m bench.viewer [--quick]

A real server process (SQLite, filesystem, DICOM listener) receives the CT from DCMTK's ``storescu``. The emergency
doctor attaches it to a request, then Debian's Chromium (headless, driven by Playwright) opens the viewer of the case
``--runs`` times, each in a fresh browser context (no cache). The viewer records, with ``performance.now()`` since
the navigation started, when the first image was drawn and when every slice of the series was in memory (from then
on scrolling never waits). It also times the drawing of 100 slices in a row from memory. The limit compared
against, in the same run, is the issue's: **first image ≤ 1000 ms**. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench.notify import _free_port
from telesante.imaging.phantom import head_ct, write_series

LIMIT_FIRST_IMAGE_MS = 1000
CHROMIUM = os.environ.get("TELESANTE_CHROMIUM", "/usr/bin/chromium")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 slices, 2 runs")
    args = parser.parse_args()
    slices, runs = (100, 2) if args.quick else (300, 5)

    from playwright.sync_api import sync_playwright
    from tests.e2e.test_journey import log_in
    from tests.live import start_live_server, stop_live_server
    from tests.offers.test_forms import head_trauma_answers

    port = _free_port()
    server = start_live_server(dicom_port=port)
    try:
        info = server.info
        with tempfile.TemporaryDirectory(prefix="bench-viewer-") as tmp:
            folder = write_series(
                Path(tmp) / "ct",
                head_ct(
                    slices, patient_id="LAN-1", patient_name="LE GOFF^MAIWENN", birth_date="19540312", sex="F"
                ),
            )
            print(f"storescu: {slices} slices…", file=sys.stderr, flush=True)
            subprocess.run(
                [
                    "storescu",
                    "-aet",
                    "CT_LANNION",
                    "-aec",
                    "TELESANTE",
                    "+sd",
                    "127.0.0.1",
                    str(port),
                    str(folder),
                ],
                check=True,
                capture_output=True,
            )
        created = httpx.post(
            f"{server.url}/api/requests",
            headers={"Authorization": f"Bearer {info['token']}"},
            json={
                "offer_id": info["offer_id"],
                "patient_id": info["patient_id"],
                "answers": head_trauma_answers(),
            },
            timeout=30,
        )
        created.raise_for_status()
        request_id = created.json()["id"]
        first, complete, scroll = [], [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            setup = browser.new_context(locale="fr-FR")
            page = setup.new_page()
            log_in(page, server)
            page.wait_for_url(f"{server.url}/")
            page.goto(f"{server.url}/demandes/{request_id}")
            page.locator("ul.candidates").get_by_role("button", name="Joindre à la demande").first.click()
            viewer_url = server.url + page.locator("a.study-link").get_attribute("href")
            cookies = setup.cookies()
            setup.close()
            for run in range(runs):
                context = browser.new_context(locale="fr-FR")
                context.add_cookies(cookies)
                page = context.new_page()
                page.goto(viewer_url)
                page.locator("#viewer[data-first-image-ms]").wait_for(state="attached", timeout=30_000)
                page.locator("#viewer[data-all-loaded-ms]").wait_for(state="attached", timeout=120_000)
                data = page.evaluate("Object.assign({}, document.querySelector('#viewer').dataset)")
                first.append(int(data["firstImageMs"]))
                complete.append(int(data["allLoadedMs"]))
                page.locator("#viewer").focus()
                elapsed = page.evaluate(
                    """() => { const v = document.querySelector('#viewer');
                               const t = performance.now();
                               for (let i = 0; i < 100; i++) v.dispatchEvent(new KeyboardEvent('keydown', {key: i % 2 ? 'ArrowUp' : 'ArrowDown', bubbles: true}));
                               return performance.now() - t; }"""
                )
                scroll.append(elapsed / 100)
                print(
                    f"run {run + 1}: first image {first[-1]} ms, all {complete[-1]} ms",
                    file=sys.stderr,
                    flush=True,
                )
                context.close()
            browser.close()
    finally:
        stop_live_server(server)
    result = {
        "benchmark": "viewer",
        "slices": slices,
        "runs": runs,
        "first_image_ms_median": statistics.median(first),
        "first_image_ms_max": max(first),
        "all_slices_in_memory_ms_median": statistics.median(complete),
        "draw_from_memory_ms_per_slice": round(statistics.median(scroll), 2),
        "limit_first_image_ms": LIMIT_FIRST_IMAGE_MS,
        "first_image_within_limit": max(first) <= LIMIT_FIRST_IMAGE_MS,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
