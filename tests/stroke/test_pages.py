"""TéléAVC pages through the real app: the alert form (provisional identity, times in Paris time, bad times
refused), the case page with its clocks, the neurologist taking the alert, NIHSS, measures, checklist and the
decision with its dose; the three actors."""

from __future__ import annotations

import re

from telesante.stroke import clinical, service
from tests.patients.test_pages import post_form, sign_in, text_of
from tests.stroke.test_service import NIHSS_14

ALERT = {
    "birth_family_name": "Inconnue",
    "birth_given_names": "Femme",
    "birth_date": "1948-01-01",
    "sex": "F",
    "last_known_well_at": "2026-12-02T01:30",  # Paris time: 00:30 UTC
    "arrival_at": "2026-12-02T01:55",
    "callback_phone": "02 96 44 56 00",
    "summary": "Aphasie et hémiplégie droite.",
}


async def test_the_night_case_through_the_pages(client, session, network, settings):
    await sign_in(client, network.emergency)
    form = await client.get("/avc/alerte")
    assert form.status_code == 200 and "Début inconnu / AVC du réveil" in text_of(form)
    late = await post_form(client, "/avc/alerte", {**ALERT, "last_known_well_at": "2026-12-02T02:00"})
    assert late.status_code == 422 and "postérieure à l'arrivée" in text_of(late)
    assert await service.list_cases(session, network.emergency.principal) == []  # nothing half-written
    created = await post_form(client, "/avc/alerte", ALERT)
    assert created.status_code == 303, text_of(created)
    case_url = created.headers["location"]
    assert re.fullmatch(r"/avc/[0-9a-f-]{36}", case_url)
    page = await client.get(case_url)
    text = text_of(page)
    assert page.status_code == 200 and "identité provisoire" in text
    assert 'data-window="iv" data-state="ok"' in page.text
    assert 'data-deadline="2026-12-02T05:00:00+00:00"' in page.text  # 00:30 UTC + 4 h 30
    assert "Début des symptômes : 02/12/2026 01:30" in text
    ed_nihss = await post_form(
        client, f"{case_url}/nihss", {f"item_{k}": str(v) for k, v in NIHSS_14.items()}, page=case_url
    )
    assert ed_nihss.status_code == 303

    await sign_in(client, network.neurologist)
    listing = await client.get("/avc")
    assert case_url in listing.text and "INCONNUE" in text_of(listing).upper(), text_of(listing)[-3000:]
    taken = await post_form(client, f"{case_url}/prendre", {}, page=case_url)
    assert taken.status_code == 303
    missing = await post_form(
        client,
        f"{case_url}/nihss",
        {f"item_{k}": str(v) for k, v in NIHSS_14.items() if k != "9"},
        page=case_url,
    )
    assert missing.status_code == 422 and "9" in text_of(missing)
    confirmed = await post_form(
        client, f"{case_url}/nihss", {f"item_{k}": str(v) for k, v in NIHSS_14.items()}, page=case_url
    )
    assert confirmed.status_code == 303
    measured = await post_form(
        client,
        f"{case_url}/mesures",
        {
            "systolic": "168",
            "diastolic": "92",
            "glucose": "1,2",
            "glucose_unit": "g",
            "platelets": "210000",
            "inr": "1,0",
            "weight_kg": "64",
            "anticoagulant": "aucun",
        },
        page=case_url,
    )
    assert measured.status_code == 303, text_of(measured)
    too_early = await post_form(
        client, f"{case_url}/decision", {"disposition": "thrombolysis", "agent": "alteplase"}, page=case_url
    )
    assert too_early.status_code == 409 and "sans réponse" in text_of(too_early)
    answers = {f"ci_{c.code}": "non" for c in clinical.CONTRAINDICATIONS if c.absolute}
    checked = await post_form(client, f"{case_url}/checklist", answers, page=case_url)
    assert checked.status_code == 303
    decided = await post_form(
        client, f"{case_url}/decision", {"disposition": "thrombolysis", "agent": "alteplase"}, page=case_url
    )
    assert decided.status_code == 303, text_of(decided)
    page = await client.get(case_url)
    text = text_of(page)
    assert 'data-disposition="thrombolysis"' in page.text
    assert "57,6 mg" in text  # 0.9 × 64 kg
    assert 'data-nihss-total="14"' in page.text and "mesure : " in text  # glucose 1.2 g/L = 6.7 mmol/L
    needle = await post_form(client, f"{case_url}/jalons", {"kind": "needle"}, page=case_url)
    assert needle.status_code == 303

    # one click opens the call, beside the (not yet sent) images
    opened = await post_form(client, f"{case_url}/video", {}, page=case_url)
    assert (opened.status_code, opened.headers["location"]) == (303, f"{case_url}/salle")
    room = await client.get(f"{case_url}/salle")
    assert room.status_code == 200 and "data-video-room=" in room.text and "data-no-images" in room.text
    assert "camera=(self)" in room.headers["permissions-policy"]
    assert 'data-milestone="video_started"' in (await client.get(case_url)).text

    # the compte rendu, written from the case, signed by the neurologist, closes the case
    draft = await client.get(f"{case_url}/compte-rendu")
    assert draft.status_code == 200 and "NIHSS (neurologue" in text_of(draft)
    conclusion = re.search(r'<textarea id="r-conclusion"[^>]*>(.*?)</textarea>', draft.text, re.S).group(1)
    empty = await post_form(
        client, f"{case_url}/compte-rendu", {"conclusion": "", "prescriptions": "aucune"}, page=draft.url.path
    )
    assert empty.status_code == 422 and "conclusion" in text_of(empty).lower()
    signed = await post_form(
        client,
        f"{case_url}/compte-rendu",
        {
            "conclusion": text_of_html(conclusion),
            "prescriptions": "Altéplase 57,6 mg IV",
            "technical_incident_details": "",
        },
        page=draft.url.path,
    )
    assert signed.status_code == 303, text_of(signed)
    page = await client.get(case_url)
    assert "data-report-signed" in page.text and "compte-rendu.pdf" in page.text
    assert "Clos (compte rendu signé)" in text_of(page)

    # the month's dashboard counts it, and exports it
    board = await client.get("/avc/qualite?mois=2026-12")
    assert board.status_code == 200, text_of(board)
    assert re.search(r'data-kpi="alerts">\s*1<', board.text) and 'data-delay="door_to_needle"' in board.text
    exported = await client.get("/avc/qualite.csv?mois=2026-12")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert case_url.rsplit("/", 1)[1] in exported.text and "INCONNUE" not in exported.text.upper()
    bad = await client.get("/avc/qualite?mois=décembre")
    assert bad.status_code == 422 and "AAAA-MM" in text_of(bad)


def text_of_html(fragment: str) -> str:
    import html

    return html.unescape(fragment)


async def test_three_actors_on_the_case_page(client, session, network, settings, patient):
    from tests.stroke.test_service import alert

    case_id = (
        await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    ).id
    strangers = [
        network.colleague,
        network.outsider,
    ]  # objects expire after a served request: read them first
    for stranger in strangers:
        await sign_in(client, stranger)
        assert (await client.get(f"/avc/{case_id}")).status_code == 404
        listing = await client.get("/avc")
        assert listing.status_code == 200 and str(case_id) not in listing.text
    await sign_in(client, network.ed_nurse)
    page = await client.get(f"/avc/{case_id}")
    assert page.status_code == 200 and f'hx-get="/avc/{case_id}"' in page.text


async def test_times_typed_in_paris_on_the_days_the_clocks_change(
    client, session, network, settings, patient
):
    """datetime-local fields are Paris wall-clock time: the hour repeated in October is its first (summer time)
    occurrence, the hour skipped in March is read with the winter offset; bad input is named, nothing written."""
    from datetime import UTC, datetime

    from telesante.kit import clock
    from tests.factories import token_for
    from tests.stroke.test_service import alert

    case_id = (
        await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    ).id
    headers = await token_for(session, network.emergency)
    await sign_in(client, network.emergency)
    page, api = f"/avc/{case_id}", f"/api/stroke/cases/{case_id}"
    for typed, utc in (
        ("2026-10-25T02:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # 02:30 summer time, the first one
        ("2026-03-29T02:30", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # = 03:30 summer time
        ("2026-12-01T20:00", datetime(2026, 12, 1, 19, 0, tzinfo=UTC)),
    ):
        saved = await post_form(
            client,
            f"{page}/mesures",
            {"anticoagulant": "aod_anti_xa", "last_anticoagulant_at": typed},
            page=page,
        )
        assert saved.status_code == 303, text_of(saved)
        stored = (await client.get(api, headers=headers)).json()["case"]["last_anticoagulant_at"]
        assert clock.as_utc(datetime.fromisoformat(stored)) == utc, typed

    for typed, message in (
        ("0001-01-01T00:00", "last_anticoagulant_at : date attendue entre 2000 et 2100"),
        ("hier soir", "last_anticoagulant_at : date et heure attendues (AAAA-MM-JJTHH:MM)"),
    ):
        refused = await post_form(
            client, f"{page}/mesures", {"weight_kg": "70", "last_anticoagulant_at": typed}, page=page
        )
        assert refused.status_code == 422 and message in text_of(refused), text_of(refused)
    case = (await client.get(api, headers=headers)).json()["case"]
    assert case["weight_kg"] is None  # nothing half-written

    refused = await post_form(client, "/avc/alerte", {**ALERT, "arrival_at": "2026-12-02 25:00"})
    assert refused.status_code == 422
    assert "arrival_at : date et heure attendues (AAAA-MM-JJTHH:MM)" in text_of(refused)


async def test_the_alert_starts_from_the_patient_record(client, session, network, patient):
    await sign_in(client, network.emergency)
    record = await client.get(f"/patients/{patient.id}")
    link = f"/avc/alerte?patient_id={patient.id}"
    assert record.status_code == 200 and link in record.text
    form = await client.get(link)
    assert form.status_code == 200 and "LE BIHAN" in text_of(form).upper()
    assert (
        f'value="{patient.id}"' in form.text
    )  # the alert is for this patient, no provisional identity asked
