"""Issue 7's story in real Chromium: a general hospital's cardiologist enrols her heart-failure patient and gives
him his personal link and PIN; on his phone the patient sends three days of rising weight (two written down earlier,
dated on the page); the CHU team's cardiologist, whose triage list is open, sees the patient turn red without
reloading, books a teleconsultation from the alert and interprets it; the charts show the three weights."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from telesante.kit import clock
from tests.e2e.test_journey import log_in

pytestmark = pytest.mark.e2e


def _paris(at) -> str:
    return clock.to_paris(at).strftime("%Y-%m-%dT%H:%M")


def test_rising_weight_reaches_the_team_live_and_is_acted_on(browser, live):
    info = live.info
    contexts = [browser.new_context(locale="fr-FR", timezone_id="Europe/Paris") for _ in range(2)]
    phone = browser.new_context(
        locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 390, "height": 844}, is_mobile=True
    )
    contexts.append(phone)
    cardiologist, operator, patient = contexts[0].new_page(), contexts[1].new_page(), phone.new_page()
    errors: list[str] = []
    for page in (cardiologist, operator, patient):
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        # --- the cardiologist enrols her patient (consent given, a connected scale), then creates his link
        log_in(cardiologist, live, info["monitoring_cardiologist_email"])
        cardiologist.goto(live.url + f"/patients/{info['monitoring_patient_id']}")
        cardiologist.get_by_role("link", name="Télésurveillance").click()
        cardiologist.get_by_label("Indication").fill("Insuffisance cardiaque à FEVG réduite, NYHA III")
        cardiologist.get_by_label("Appareil prêté : numéro de série").fill("SCALE-7731")
        cardiologist.get_by_label("Type d'appareil").fill("Balance connectée")
        cardiologist.get_by_role("button", name="Enregistrer").click()
        expect(cardiologist).to_have_url(re.compile(r"/telesurveillance/suivis/[0-9a-f-]{36}$"))
        follow_up_url = cardiologist.url
        expect(cardiologist.locator("body")).to_contain_text("SCALE-7731")
        cardiologist.get_by_role("button", name="Créer le lien du patient").click()
        link = cardiologist.locator("[data-link]").inner_text()
        pin = cardiologist.locator("[data-pin]").inner_text()
        link = live.url + link[link.index("/tls/") :]  # the link is built on TELESANTE_PUBLIC_URL

        # --- the team's cardiologist has the triage list open: the patient is there, green
        log_in(operator, live, info["monitoring_operator_email"])
        operator.goto(live.url + "/telesurveillance")
        row = operator.locator("tr[data-enrolment]", has_text="DUFOUR")
        expect(row).to_have_attribute("data-colour", "green")

        # --- the patient, on his phone: PIN, then three mornings of weight, two of them written down earlier
        patient.goto(link)
        expect(patient.locator("body")).to_contain_text("n'est pas un service d'urgence")
        patient.get_by_label("Code à 6 chiffres remis par votre équipe").fill(pin)
        patient.get_by_role("button", name="Continuer").click()
        now = clock.now()
        for when, kilograms in (
            (now - timedelta(days=2), "78,4"),
            (now - timedelta(days=1), "79,3"),
            (None, "80,6"),
        ):
            patient.get_by_label("Poids (kg)").fill(kilograms)
            if when is None:  # this morning he also answers the questionnaire: not more breathless
                question = patient.locator("fieldset[data-question=dyspnoea]")
                expect(question).to_contain_text("Êtes-vous plus essoufflé(e) que d'habitude ?")
                question.get_by_label("Non").check()
            if when is not None:
                patient.get_by_text("Mesure prise plus tôt ? Indiquez quand").click()
                patient.get_by_label("Date et heure de la mesure (par défaut : maintenant)").fill(
                    _paris(when)
                )
            patient.get_by_role("button", name="Envoyer mes mesures").click()
            expect(patient.locator("[data-sent]")).to_contain_text(f"Poids : {kilograms.replace(',', '.')}")
        expect(patient.locator("[data-sent]")).to_contain_text("Essoufflement inhabituel : non")

        # --- the list turns the patient red by itself (no reload), with the reason
        expect(row).to_have_attribute("data-colour", "red", timeout=15000)
        expect(row).to_contain_text("prise de 2,2 kg en 2 jours")

        # --- from the alert: a teleconsultation is booked, then the alert is interpreted
        row.get_by_role("link", name=re.compile("DUFOUR")).click()
        expect(operator).to_have_url(follow_up_url)
        alert = operator.locator("[data-alert][data-severity=red]")
        expect(alert).to_contain_text("Poids : prise de 2,2 kg en 2 jours (78,4 → 80,6 kg).")
        expect(operator.locator("table[data-questionnaire]")).to_contain_text("non")
        figure = operator.locator("figure[data-measure=weight]")
        expect(figure).to_have_attribute("data-points", "3")
        expect(figure.locator("canvas")).to_have_count(1)
        alert.get_by_role("link", name="Programmer une téléconsultation").click()
        operator.get_by_label("1. Offre de téléconsultation").select_option(label=info["monitoring_offer"])
        operator.get_by_role("button", name="Voir les créneaux libres").click()
        operator.locator("input[name=slot_id]").first.check()
        operator.get_by_label("3. Lieu").select_option(label="Domicile du patient")
        operator.get_by_label("4. Motif").fill(
            "Prise de poids de 2,2 kg en 2 jours : adaptation du diurétique"
        )
        operator.get_by_role("button", name="Réserver ce créneau").click()
        expect(operator).to_have_url(re.compile(r"/rendez-vous/[0-9a-f-]{36}$"))
        appointment_url = operator.url
        operator.goto(follow_up_url)
        alert = operator.locator("[data-alert][data-severity=red]")
        # the alert remembers the teleconsultation booked from it, and proposes it as the action
        expect(alert.locator("[data-appointment] a")).to_have_attribute(
            "href", appointment_url.removeprefix(live.url)
        )
        expect(alert.get_by_label("Action")).to_have_value("teleconsultation")
        alert.get_by_label("Interprétation").fill(
            "Rétention hydrosodée : furosémide augmenté, téléconsultation J+2"
        )
        alert.get_by_role("button", name="Interpréter et clore").click()
        expect(operator.locator("[data-no-alert]")).to_be_visible()
        expect(operator.locator("[data-closed-alert]")).to_contain_text("Téléconsultation programmée")
        operator.goto(live.url + "/telesurveillance")
        expect(operator.locator("tr[data-enrolment]", has_text="DUFOUR")).to_have_attribute(
            "data-colour", "green"
        )
    finally:
        for context in contexts:
            context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
