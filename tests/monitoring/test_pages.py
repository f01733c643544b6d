"""The télésurveillance pages through HTTP, as browsers use them: enrolment from the patient's record, the patient's
own page (link + PIN, no account), the team's worklist and a follow-up's triage, the charts' data, the monthly
summary; the colleague elsewhere and the outsider get nothing."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from types import SimpleNamespace

from telesante.config import get_settings
from telesante.directory.models import Role
from telesante.monitoring import service
from telesante.monitoring.clinical import LOCAL
from telesante.monitoring.models import AlertAction, AlertStatus, EnrolmentStatus, ReadingSource
from telesante.scheduling import service as scheduling_service
from tests.factories import make_actor, make_patient, make_teleconsultation_agenda
from tests.monitoring.conftest import enrol
from tests.patients.test_pages import post_form, sign_in, text_of


async def test_enrol_from_the_record_then_the_patient_sends_rising_weights_and_the_team_triages(
    client, session, network, patient, frozen
):
    patient_id, programme_id = patient.id, network.programme.id
    await sign_in(client, network.cardiologist)
    page = await client.get(f"/patients/{patient_id}/telesurveillance")
    assert page.status_code == 200 and "Insuffisance cardiaque" in page.text
    refused = await post_form(
        client,
        f"/patients/{patient_id}/telesurveillance",
        {
            "programme_id": str(programme_id),
            "indication": "IC",
            "prescriber_name": "Dr Martin",
            "decision": "refused",
        },
    )
    assert refused.status_code == 422 and 'data-error="conventional_follow_up_offered"' in refused.text
    for odd in (
        {"override:ic_pas_basse": "95"},
        {"override:ic_pas_basse:below": "beaucoup"},
        {"programme_id": "x"},
    ):
        answer = await post_form(
            client,
            f"/patients/{patient_id}/telesurveillance",
            {
                "programme_id": str(programme_id),
                "indication": "IC",
                "prescriber_name": "Dr M",
                "decision": "given",
                **odd,
            },
        )
        assert answer.status_code in (400, 422) and 'role="alert"' in answer.text, (odd, answer.status_code)
    created = await post_form(
        client,
        f"/patients/{patient_id}/telesurveillance",
        {
            "programme_id": str(programme_id),
            "indication": "Insuffisance cardiaque, NYHA III",
            "prescriber_name": "Dr Martin",
            "decision": "given",
            "device_serial": "SCALE-0042",
            "device_kind": "Balance connectée",
            "override:ic_pas_basse:below": "95",
        },
    )
    assert created.status_code == 303, text_of(created)
    enrolment_id = uuid.UUID(created.headers["location"].rsplit("/", 1)[1])
    follow_up = await client.get(f"/telesurveillance/suivis/{enrolment_id}")
    assert "SCALE-0042" in follow_up.text and "ic_pas_basse" in follow_up.text
    issued = await post_form(
        client,
        f"/telesurveillance/suivis/{enrolment_id}/lien",
        {},
        f"/telesurveillance/suivis/{enrolment_id}",
    )
    link = re.search(r"data-link>[^<]*/tls/([^<]+)</code>", issued.text)[1]
    pin = re.search(r"data-pin>(\d{6})<", issued.text)[1]

    # the patient, in another browser: PIN, then three mornings of rising weight
    client.cookies.clear()
    ask = await client.get(f"/tls/{link}")
    assert 'name="pin"' in ask.text and "appelez le <strong>15</strong>" in ask.text
    wrong = await post_form(client, f"/tls/{link}", {"pin": "000000" if pin != "000000" else "111111"})
    assert wrong.status_code == 400 and "4 essais restants" in text_of(wrong)
    assert (await post_form(client, f"/tls/{link}", {"pin": pin})).status_code == 303
    for day, kilograms in enumerate(("78,4", "79,3", "80,6")):
        frozen.now = frozen.now + timedelta(days=1 if day else 0)
        sent = await post_form(client, f"/tls/{link}/mesures", {"m:weight": kilograms}, f"/tls/{link}")
        assert sent.status_code == 200 and "data-sent" in sent.text, text_of(sent)
    bad = await post_form(client, f"/tls/{link}/mesures", {"m:weight": "700"}, f"/tls/{link}")
    assert bad.status_code == 400 and "700 kg" in text_of(bad)

    # the team's nurse: the patient is red at the top of the worklist; she filters, the doctor interprets
    client.cookies.clear()
    await sign_in(client, network.nurse)
    worklist = await client.get("/telesurveillance")
    assert worklist.status_code == 200
    assert re.search(rf'data-enrolment="{enrolment_id}" data-colour="red"', worklist.text)
    assert "prise de 2,2 kg en 2 jours" in text_of(worklist)
    follow_up = await client.get(f"/telesurveillance/suivis/{enrolment_id}")
    alert_id = re.search(r'data-alert="([0-9a-f-]{36})" data-severity="red"', follow_up.text)[1]
    path = f"/telesurveillance/suivis/{enrolment_id}"
    assert (
        await post_form(client, f"{path}/alertes/{alert_id}/filtrer", {"note": "Patiente jointe"}, path)
    ).status_code == 303
    client.cookies.clear()
    await sign_in(client, network.doctor)
    done = await post_form(
        client,
        f"{path}/alertes/{alert_id}/interpreter",
        {"interpretation": "Rétention hydrosodée", "action": "teleconsultation"},
        path,
    )
    assert done.status_code == 303
    view = await service.get_enrolment(session, network.doctor.principal, enrolment_id)
    [alert] = [a for a in view.alerts if a.id == uuid.UUID(alert_id)]
    assert (
        alert.status == AlertStatus.CLOSED and alert.filtered_by_name == network.nurse.principal.display_name
    )
    assert view.enrolment.colour == "green"
    charts = (await client.get(f"{path}/mesures.json")).json()
    weight = next(c for c in charts["charts"] if c["measure"] == "weight")
    assert weight["values"] == [78.4, 79.3, 80.6] and [a["severity"] for a in weight["alerts"]] == ["red"]
    systolic = next(c for c in charts["charts"] if c["measure"] == "systolic")
    assert [limit["value"] for limit in systolic["limits"]] == [95]  # the patient's own threshold
    summary = await client.get(f"{path}/synthese", params={"mois": frozen.now.strftime("%Y-%m")})
    assert (
        summary.status_code == 200
        and "78.4 → 80.6" in summary.text
        and "Rétention hydrosodée" in summary.text
    )
    for odd in ("décembre", "0001-01", "9999-12", "2026-13"):
        assert (await client.get(f"{path}/synthese", params={"mois": odd})).status_code == 422, odd


async def test_strangers_see_no_follow_up_and_no_worklist(client, session, network, patient, frozen):
    enrolment = await enrol(session, network, patient)
    enrolment_id = enrolment.id
    for stranger in (network.colleague, network.outsider):
        client.cookies.clear()
        await sign_in(client, stranger)
        for path in (
            f"/telesurveillance/suivis/{enrolment_id}",
            f"/telesurveillance/suivis/{enrolment_id}/mesures.json",
            f"/telesurveillance/suivis/{enrolment_id}/synthese",
        ):
            assert (await client.get(path)).status_code == 404, (stranger, path)
        assert (await client.get("/telesurveillance")).status_code == 403
    # the enrolling cardiologist reads the follow-up but acts on no alert
    client.cookies.clear()
    await sign_in(client, network.cardiologist)
    page = await client.get(f"/telesurveillance/suivis/{enrolment_id}")
    assert page.status_code == 200 and "Interpréter et clore" not in page.text


async def test_the_patient_page_refuses_an_unknown_link_and_an_ended_follow_up(
    client, session, network, patient, frozen
):
    enrolment = await enrol(session, network, patient)
    _, token, pin = await service.issue_patient_link(session, network.nurse.principal, enrolment.id)
    assert (await client.get("/tls/inconnu")).status_code == 404
    assert (await post_form(client, f"/tls/{token}", {"pin": pin})).status_code == 303
    assert "m:weight" in (await client.get(f"/tls/{token}")).text
    ended = await service.end_enrolment(
        session, network.doctor.principal, enrolment.id, "Fin de prescription"
    )
    assert ended.status == EnrolmentStatus.ENDED
    assert (await client.get(f"/tls/{token}")).status_code == 404


async def test_the_patient_answers_the_questionnaire_and_two_congestion_signs_turn_red(
    client, session, network, patient, frozen
):
    enrolment = await enrol(session, network, patient)
    enrolment_id = enrolment.id
    _, token, pin = await service.issue_patient_link(session, network.nurse.principal, enrolment_id)
    assert (await post_form(client, f"/tls/{token}", {"pin": pin})).status_code == 303
    page = await client.get(f"/tls/{token}")
    assert "Êtes-vous plus essoufflé(e) que d'habitude ?" in text_of(page)
    assert 'name="m:oedema" value="oui"' in page.text
    odd = await post_form(client, f"/tls/{token}/mesures", {"m:dyspnoea": "peut-être"}, f"/tls/{token}")
    assert odd.status_code == 400 and "oui ou non attendu" in text_of(odd)
    sent = await post_form(
        client,
        f"/tls/{token}/mesures",
        {"m:weight": "80,1", "m:dyspnoea": "non", "m:oedema": "oui"},
        f"/tls/{token}",
    )
    assert sent.status_code == 200 and "Œdèmes en augmentation : oui" in text_of(sent)
    view = await service.get_enrolment(session, network.nurse.principal, enrolment_id)
    assert view.enrolment.colour == "green"  # oedema alone counts only with another sign
    frozen.now = frozen.now + timedelta(days=1)
    sent = await post_form(
        client, f"/tls/{token}/mesures", {"m:dyspnoea": "oui", "m:oedema": "oui"}, f"/tls/{token}"
    )
    assert sent.status_code == 200, text_of(sent)

    client.cookies.clear()
    await sign_in(client, network.nurse)
    follow_up = await client.get(f"/telesurveillance/suivis/{enrolment_id}")
    assert 'data-colour="red"' in follow_up.text
    assert "Signes congestifs associés" in text_of(follow_up)
    table = follow_up.text[follow_up.text.index("data-questionnaire") :]
    assert table.count('data-yes="oedema"') == 2 and table.count('data-yes="dyspnoea"') == 1
    charts = (await client.get(f"/telesurveillance/suivis/{enrolment_id}/mesures.json")).json()
    assert [c["measure"] for c in charts["charts"]] == ["weight", "systolic", "diastolic", "heart_rate"]
    summary = await client.get(
        f"/telesurveillance/suivis/{enrolment_id}/synthese", params={"mois": frozen.now.strftime("%Y-%m")}
    )
    assert "« oui » 2 fois sur 2 réponse(s)" in text_of(summary)  # oedema
    assert "« oui » 1 fois sur 2 réponse(s)" in text_of(summary)  # dyspnoea


async def test_a_teleconsultation_booked_from_an_alert_is_remembered_by_the_alert(
    client, session, network, patient, frozen
):
    enrolment = await enrol(session, network, patient)
    other = await make_patient(session, network.cardiologist, birth_family_name="Lenoir")
    await enrol(session, network, other, devices=[])
    cardiologist = await make_actor(session, SimpleNamespace(id=network.team_id), Role.EXPERT)
    offer = await make_teleconsultation_agenda(
        session, network.team_id, network.admin, cardiologist, "Téléconsultation de cardiologie"
    )
    raised = []
    for owner in (patient, other):  # a sign of congestion for each: one alert each
        result = await service.record_readings(
            session,
            network.gateway.principal,
            [service.ReadingItem(0, owner.id, "symptome-dyspnee", True, None, None, system=LOCAL)],
            ReadingSource.DEVICE,
        )
        raised.append(result.alerts[0].id)
    alert_id, other_alert_id, enrolment_id, patient_id = raised[0], raised[1], enrolment.id, patient.id
    offer_id = offer.id
    slots = await scheduling_service.list_free_slots(
        session, network.nurse.principal, offer_id, get_settings(), days=1
    )
    slot_ids = [slot.id for slot, _doctor in slots[:3]]

    async def book(actor, slot_id, alert):
        client.cookies.clear()
        await sign_in(client, actor)
        path = f"/rendez-vous/nouveau?patient_id={patient_id}&offer_id={offer_id}&alerte={alert}"
        form = await client.get(path)
        assert form.status_code == 200 and f'name="alerte" value="{alert}"' in form.text
        return await post_form(
            client,
            "/rendez-vous/nouveau",
            {
                "patient_id": str(patient_id),
                "offer_id": str(offer_id),
                "alerte": str(alert),
                "slot_id": str(slot_id),
                "site_id": "domicile",
                "reason": "Essoufflement signalé",
            },
            path,
        )

    # another patient's alert, or an alert of a team the booker is not in: nothing is booked
    wrong = await book(network.nurse, slot_ids[0], other_alert_id)
    assert wrong.status_code == 422 and "un autre patient" in text_of(wrong)
    outside = await book(network.cardiologist, slot_ids[0], alert_id)  # may not book this team's offer
    assert outside.status_code == 403, outside.status_code
    booked = await book(network.nurse, slot_ids[0], alert_id)  # the same slot: still free
    assert booked.status_code == 303, text_of(booked)
    appointment_id = booked.headers["location"].rsplit("/", 1)[1]
    view = await service.get_enrolment(session, network.nurse.principal, enrolment_id)
    [alert] = [a for a in view.alerts if a.id == alert_id]
    assert str(alert.appointment_id) == appointment_id and alert.action == AlertAction.TELECONSULTATION
    page = await client.get(f"/telesurveillance/suivis/{enrolment_id}")
    assert f'<a href="/rendez-vous/{appointment_id}">Téléconsultation programmée</a>' in page.text
    assert '<option value="teleconsultation" selected>' in page.text
