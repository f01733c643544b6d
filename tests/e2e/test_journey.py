"""The main journey of a professional: log in, register a patient, record a consent, see the access in the log."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def log_in(page, live, email=None, password=None):
    page.goto(live.url + "/connexion")
    page.get_by_label(re.compile(r"^Adresse électronique")).fill(email or live.info["email"])
    page.get_by_label(re.compile(r"^Mot de passe")).fill(password or live.info["password"])
    page.get_by_role("button", name="Se connecter").click()


def test_login_register_patient_consent_and_access_log(page, live):
    log_in(page, live)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Bonjour")

    page.get_by_role("link", name="Enregistrer un patient").click()
    page.get_by_label(re.compile(r"^Nom de naissance")).fill("Kerhervé")
    page.get_by_label(re.compile(r"^Prénoms de naissance")).fill("Anaïs Gwenola")
    page.get_by_label(re.compile(r"^Date de naissance")).fill("1987-06-21")
    page.get_by_label(re.compile(r"^Sexe")).select_option("F")
    page.get_by_label(re.compile(r"^Code INSEE du lieu de naissance")).fill("22113")
    page.get_by_role("button", name="Enregistrer le patient").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("KERHERVE")
    expect(page.locator("main")).to_contain_text("Identité provisoire")
    patient_url = page.url

    page.get_by_role("link", name=re.compile("Recueillir un consentement")).click()
    page.get_by_role("link", name="Téléconsultation").click()
    expect(page.locator("main")).to_contain_text("R.6316-1")  # the notice actually shown
    page.get_by_label("Consentement donné").check()
    page.get_by_role("button", name="Enregistrer la décision").click()

    page.goto(patient_url)
    expect(page.locator("main")).to_contain_text("Téléconsultation")
    expect(page.locator("main")).to_contain_text("Consentement donné")
    log = page.locator("#h-acces").locator("xpath=..")
    expect(log).to_contain_text(live.info["email"])
    expect(log).to_contain_text("Consultation")


def test_patient_search_is_accent_insensitive_and_live(page, live):
    log_in(page, live)
    page.goto(live.url + "/patients")
    page.get_by_label("Nom").first.fill("le goff")
    page.get_by_role("button", name=re.compile("Rechercher")).click()
    expect(page.locator("main table")).to_contain_text("LE GOFF")


def test_colleague_elsewhere_cannot_open_the_record(page, live):
    log_in(page, live, email=live.info["colleague_email"])
    response = page.goto(live.url + f"/patients/{live.info['patient_id']}")
    assert response.status == 404
    expect(page.locator("main")).not_to_contain_text("LE GOFF")


def test_wrong_password_shows_an_inline_error(page, live):
    log_in(page, live, password="pas-le-bon-mot-de-passe")
    expect(page.get_by_role("alert")).to_contain_text("mot de passe incorrect")
