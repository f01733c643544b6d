"""The TELURGE-like story in two real browsers: an emergency doctor of a general hospital sends a head-trauma request
with its CT report to the neurosurgery on call; the on-call neurosurgeon's open worklist shows it without reload;
they accept, ask a question, get the answer, reply with a coded decision and a signed report; the requester sees
the PDF."""

from __future__ import annotations

import re

import pytest
from fpdf import FPDF
from playwright.sync_api import expect

from tests.e2e.test_journey import log_in

pytestmark = pytest.mark.e2e

LIVE_WAIT_MS = 15_000  # the event must arrive on the open page; generous for a loaded CI machine


def ct_report(tmp_path) -> str:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="Scanner cerebral sans injection : pas de lesion hemorragique.")
    path = tmp_path / "scanner.pdf"
    pdf.output(str(path))
    return str(path)


def test_head_trauma_request_to_the_neurosurgeon_on_call(browser, live, tmp_path):
    requester = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris").new_page()
    surgeon = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris").new_page()
    log_in(surgeon, live, live.info["neurosurgeon_email"], live.info["password"])
    surgeon.goto(live.url + "/demandes?vue=expert")
    expect(surgeon.locator("#liste")).to_contain_text("Aucune demande")

    log_in(requester, live)
    requester.goto(live.url + f"/patients/{live.info['patient_id']}")
    requester.get_by_role("link", name=re.compile("Demander un avis")).click()
    requester.get_by_role("link", name="Avis neurochirurgical 24/7").click()
    requester.get_by_label(re.compile(r"^Date et heure du traumatisme")).fill("2026-11-23T02:40")
    requester.get_by_label("Chute de sa hauteur").check()
    requester.get_by_role("group", name=re.compile("^Perte de connaissance initiale")).get_by_label(
        "Non"
    ).check()
    requester.get_by_role("group", name=re.compile("^Amnésie des faits")).get_by_label("Oui").check()
    requester.get_by_label("4 — spontanée").check()
    requester.get_by_label("4 — confuse").check()
    requester.get_by_label("6 — obéit aux ordres").check()
    requester.get_by_role("group", name=re.compile("^Signes neurologiques")).get_by_label("Aucun").check()
    requester.get_by_label("Antivitamine K (AVK)").check()
    requester.get_by_label(re.compile(r"^Molécule et posologie")).fill("Fluindione 20 mg")
    requester.get_by_label(re.compile(r"^Date et heure de la dernière prise")).fill("2026-11-22T20:00")
    requester.get_by_label(re.compile(r"^INR")).fill("2,8")
    requester.get_by_label("Réalisé, sans lésion").check()
    requester.get_by_label(re.compile(r"^Date et heure du scanner")).fill("2026-11-23T03:30")
    requester.get_by_label(re.compile(r"^Question posée au neurochirurgien")).fill(
        "Conduite à tenir sous AVK ?"
    )
    requester.get_by_role("button", name="Enregistrer le brouillon").click()
    expect(requester.locator("h1")).to_contain_text("Brouillon")
    expect(requester.locator("main")).to_contain_text("Score de Glasgow total")

    requester.get_by_label(re.compile("Joindre un document")).set_input_files(ct_report(tmp_path))
    requester.get_by_role("button", name="Joindre", exact=True).click()
    expect(requester.locator("main")).to_contain_text("scanner.pdf")
    requester.get_by_role("button", name="Envoyer", exact=True).click()
    expect(requester.locator("h1")).to_contain_text("Envoyée")
    request_url = requester.url

    # The on-call neurosurgeon's open worklist shows it without reload.
    row = surgeon.locator("#liste tr", has_text="Avis neurochirurgical 24/7")
    expect(row).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(row).to_contain_text("Urgent")
    expect(row.locator("[data-oncall-page]")).to_be_visible()  # routed on call: paged to this surgeon
    row.get_by_role("link", name=re.compile("LE GOFF")).click()
    surgeon.get_by_role("button", name="Accepter la demande").click()
    expect(surgeon.locator("h1")).to_contain_text("Acceptée")
    surgeon.get_by_label("Message").fill("Heure exacte de la dernière prise de fluindione ?")
    surgeon.get_by_role("button", name="Envoyer le message").click()
    expect(surgeon.locator(".thread")).to_contain_text("Heure exacte")

    # The requester's open request page shows the question live, and answers.
    expect(requester.locator(".thread")).to_contain_text("Heure exacte", timeout=LIVE_WAIT_MS)
    requester.get_by_label("Type").select_option("reply")
    requester.get_by_label("Message").fill("Hier à 20 h.")
    # While she types, the surgeon adds a question: her page does not refresh under her fingers, it says that
    # something new has come, and her answer is kept.
    surgeon.get_by_label("Message").fill("Et son poids ?")
    surgeon.get_by_role("button", name="Envoyer le message").click()
    expect(surgeon.locator(".thread")).to_contain_text("Et son poids ?")
    expect(requester.locator("#demande[data-live-pending]")).to_be_attached(timeout=LIVE_WAIT_MS)
    expect(requester.get_by_label("Message")).to_have_value("Hier à 20 h.")
    requester.get_by_role("button", name="Envoyer le message").click()
    expect(requester.locator(".thread")).to_contain_text("Et son poids ?")

    expect(surgeon.locator(".thread")).to_contain_text("Hier à 20 h", timeout=LIVE_WAIT_MS)
    surgeon.get_by_label(re.compile("Garder et surveiller au moins 24 h")).check()
    surgeon.get_by_label("Avis", exact=True).fill(
        "Surveillance 24 h, scanner de contrôle entre H12 et H24, INR à H6."
    )
    surgeon.get_by_role("button", name="Envoyer la réponse").click()
    expect(surgeon.locator("h1")).to_contain_text("Répondue")
    surgeon.get_by_label(re.compile("^Prescriptions et actes")).fill(
        "Scanner cérébral de contrôle H12-H24 ; INR à H6"
    )
    surgeon.get_by_label("Date et heure de réalisation").fill("2026-11-23T04:10")
    surgeon.get_by_role("button", name="Signer le compte rendu").click()
    expect(surgeon.locator("main")).to_contain_text("Signé par")

    requester.goto(request_url)
    expect(requester.locator("main")).to_contain_text("Garder et surveiller au moins 24 h")
    pdf = requester.request.get(live.url + request_url.removeprefix(live.url) + "/compte-rendu.pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    expect(requester.get_by_role("link", name="Compte rendu (PDF)")).to_be_visible()
    requester.get_by_role("button", name="Clôturer l'acte").click()
    expect(requester.locator("h1")).to_contain_text("Clôturée")
    for page in (requester, surgeon):
        page.context.close()


@pytest.mark.slow
def test_an_unacknowledged_page_escalates_to_the_backup(browser, live):
    """Nobody acknowledges: after the offer's delay (1 minute here) the backup is paged, and their open worklist
    shows it without reload. About 70 s: the delay is real time on a real server."""
    api = browser.new_context().request
    headers = {"Authorization": f"Bearer {live.info['token']}"}
    answers = {
        "injury_at": "2026-11-23T05:00",
        "mechanism": "agression",
        "loss_of_consciousness": "oui",
        "amnesia": "oui",
        "gcs_eyes": "y3",
        "gcs_verbal": "v4",
        "gcs_motor": "m6",
        "neuro_signs": ["confusion"],
        "antithrombotic": "aucun",
        "ct_result": "non_realise",
        "question": "Transfert ?",
    }
    created = api.post(
        live.url + "/api/requests",
        headers=headers,
        data={"offer_id": live.info["offer_id"], "patient_id": live.info["patient_id"], "answers": answers},
    )
    assert created.status == 201, created.text()
    request_id = created.json()["id"]
    sent = api.post(live.url + f"/api/requests/{request_id}/send", headers=headers, data={})
    assert sent.status == 200, sent.text()

    backup = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris").new_page()
    log_in(backup, live, live.info["backup_email"], live.info["password"])
    backup.goto(live.url + "/demandes?vue=expert")
    row = backup.locator(f'#liste tr[data-request-id="{request_id}"]')
    expect(row).to_be_visible()
    expect(row.locator("[data-oncall-page]")).to_have_count(0)  # the primary is paged first
    expect(row.locator("[data-oncall-page]")).to_be_visible(timeout=120_000)  # escalated, shown live
    row.locator("[data-oncall-page]").click()
    backup.get_by_role("button", name=re.compile("acquitte", re.IGNORECASE)).click()
    expect(backup.locator("main")).to_contain_text("Acquitté")
    backup.goto(live.url + f"/demandes/{request_id}")
    history = backup.locator("#h-oncall").locator("xpath=..")
    expect(history).to_contain_text("Second recours")
    expect(history).to_contain_text("Acquitté")
    backup.context.close()
