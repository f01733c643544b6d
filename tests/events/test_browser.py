"""The client side in a real browser (Debian's Chromium through Playwright): under the strict CSP, htmx's SSE
extension connects to /evenements with the session cookie, a region declared with hx-trigger="sse:<type>" reloads
itself when its event arrives, and live.js raises a notification for an urgent event only."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from fastapi.responses import HTMLResponse
from playwright.async_api import async_playwright, expect

from telesante.events.bus import Event
from tests.events.conftest import serving, wait_for
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e

CHROMIUM = os.environ.get("TELESANTE_CHROMIUM", "/usr/bin/chromium")

# The documented pattern (docs/domains/events.md), with the scripts a page needs.
PAGE = """<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Essai</title>
<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false}'>
<script src="/static/vendor/htmx.min.js" defer></script>
<script src="/static/vendor/htmx-ext-sse.min.js" defer></script>
<script src="/static/live.js" defer></script></head>
<body><div hx-ext="sse" sse-connect="/evenements" data-live-notify="oncall.page">
<div id="zone" hx-get="/essai-evenements/zone" hx-trigger="sse:request.updated">zone 0</div>
</div><p id="live-annonces" aria-live="polite"></p></body></html>"""

# Records the notifications live.js creates (injected by the browser driver, not by the page: the CSP stays strict).
RECORD_NOTIFICATIONS = """
window.__notifications = [];
window.Notification = function (title, options) { window.__notifications.push({title: title, body: options.body}); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
"""


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} manquant : apt-get install chromium (.ci/run le fait)")
    return CHROMIUM


async def test_a_region_reloads_on_its_event_and_urgent_events_notify(app, people, chromium):
    alice, _ = people
    reloads = {"n": 0}

    async def demo_page():
        return HTMLResponse(PAGE)

    async def zone():
        reloads["n"] += 1
        return HTMLResponse(f"zone {reloads['n']}")

    app.add_api_route("/essai-evenements", demo_page, methods=["GET"])
    app.add_api_route("/essai-evenements/zone", zone, methods=["GET"])
    bus = app.state.event_bus
    recipients = frozenset({alice.account.id})

    async with serving(app) as served, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(locale="fr-FR")
            await context.add_init_script(RECORD_NOTIFICATIONS)
            page = await context.new_page()
            console_errors: list[str] = []
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

            await page.goto(served.url + "/connexion")
            await page.get_by_label(re.compile(r"^Adresse électronique")).fill(alice.email)
            await page.get_by_label(re.compile(r"^Mot de passe")).fill(PASSWORD)
            await page.get_by_role("button", name=re.compile("connecter", re.I)).click()
            await page.wait_for_url(re.compile(r"/$|/\?"))

            await page.goto(served.url + "/essai-evenements")
            await wait_for(
                lambda: bus.subscriber_count(alice.account.id) == 1, "le navigateur est abonné", 10
            )

            await bus.publish(Event(type="request.updated", recipients=recipients, data={"request_id": "r1"}))
            await expect(page.locator("#zone")).to_have_text("zone 1")
            assert await page.evaluate("window.__notifications.length") == 0  # not urgent: no notification

            await bus.publish(Event(type="request.updated", recipients=recipients, data={}, urgent=True))
            await expect(page.locator("#zone")).to_have_text("zone 2")
            await expect(page.locator("#live-annonces")).to_have_text("Demande urgente mise à jour")
            # a type no region listens to, declared with data-live-notify, still notifies
            await bus.publish(
                Event(type="oncall.page", recipients=recipients, data={"label": "Astreinte AVC"}, urgent=True)
            )
            await expect(page.locator("#live-annonces")).to_have_text("Astreinte AVC")
            notifications = await page.evaluate("window.__notifications")
            assert [n["body"] for n in notifications] == ["Demande urgente mise à jour", "Astreinte AVC"]
            assert reloads["n"] == 2
            assert not [e for e in console_errors if "Content Security Policy" in e or "Refused" in e], (
                console_errors
            )
            await context.close()
        finally:
            await browser.close()
