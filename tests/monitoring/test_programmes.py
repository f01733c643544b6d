"""A team revises its programme's alert rules: tried first on its patients' past readings (what the revision would
have raised beside what the rules in force did), then published as a new version its patients move to. Bad rules are
refused naming the rule; people outside the team see nothing."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest

from telesante.directory.models import Role
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.monitoring import rules, service
from telesante.monitoring.models import ReadingSource
from telesante.monitoring.schemas import ProgrammeCreate, RulesReplay, RulesRevision
from tests.factories import make_actor, make_patient, token_for
from tests.monitoring.conftest import enrol
from tests.patients.test_pages import post_form, sign_in, text_of


def _with(programme_rules, code, **changes) -> list[dict]:
    """The programme's rules as data, one of them changed."""
    data = [rules.rule_to_data(rule) for rule in programme_rules]
    for item in data:
        if item["code"] == code:
            item.update(changes)
    return data


async def _slow_weight_gain(session, network, patient, frozen) -> None:
    """+0.6 kg a day for five days: 1.8 kg in three days, below the 2 kg of the rules in force."""
    for day, kilograms in enumerate((80.0, 80.6, 81.2, 81.8, 82.4)):
        frozen.now = frozen.now + timedelta(days=1 if day else 0)
        await service.record_readings(
            session,
            network.gateway.principal,
            [service.ReadingItem(0, patient.id, "29463-7", kilograms, "kg", None)],
            ReadingSource.DEVICE,
        )


async def test_a_revision_is_tried_on_past_readings_then_published_and_the_patients_move_to_it(
    session, network, patient, frozen
):
    enrolment = await enrol(session, network, patient)
    await _slow_weight_gain(session, network, patient, frozen)
    team = network.doctor.principal
    view = await service.programme_view(session, team, network.programme.id)
    assert view.enrolled == 1 and [v.version for v in view.versions] == [1]
    candidate = _with(view.rules, "ic_poids_3j", change=1.5)
    report = await service.replay_rules(
        session, team, network.programme.id, RulesReplay(rules=candidate, days=30)
    )
    assert (report.enrolments, report.readings) == (1, 5)
    row = next(r for r in report.rows if r.code == "ic_poids_3j")
    # in force: nothing; revised: the third and the fourth day's weights each raise an alert
    assert (row.current, row.candidate, row.patients_candidate) == (0, 2, 1)
    assert [message for _at, _name, message in report.examples] == [
        "Poids : prise de 1,8 kg en 3 jours (80 → 81,8 kg).",
        "Poids : prise de 1,8 kg en 3 jours (80,6 → 82,4 kg).",
    ]
    assert all(name.startswith("DUFOUR") for _at, name, _message in report.examples)
    still = await service.programme_view(session, team, network.programme.id)
    assert still.programme.current and len(still.versions) == 1  # trying changes nothing

    new = await service.revise_rules(
        session,
        team,
        network.programme.id,
        RulesRevision(rules=candidate, note="Prise de poids plus lente chez nos patients âgés"),
    )
    assert new.version == 2 and new.current and new.revision_note.startswith("Prise de poids")
    moved = await service.get_enrolment(session, team, enrolment.id)
    assert moved.programme.id == new.id
    assert next(r for r in moved.rules if r.code == "ic_poids_3j").change == 1.5
    old = await service.get_programme(session, network.programme.id)
    assert not old.current
    # a stale page cannot revise the old version again
    with pytest.raises(Conflict, match="version plus récente"):
        await service.revise_rules(session, team, old.id, RulesRevision(rules=candidate, note="encore"))


async def test_a_revision_that_a_patients_own_threshold_no_longer_fits_changes_nothing(
    session, network, patient, frozen
):
    await enrol(session, network, patient, overrides={"ic_poids_7j": {"change": 4}})
    programme = network.programme
    team = network.doctor.principal
    view = await service.programme_view(session, team, programme.id)
    gone = ("ic_poids_7j", "ic_congestion", "ic_oedemes")  # oedema only counted in the combination
    without = [rules.rule_to_data(r) for r in view.rules if r.code not in gone]
    with pytest.raises(InvalidInput, match="absente du programme") as refused:
        await service.revise_rules(
            session, team, programme.id, RulesRevision(rules=without, note="simplifier")
        )
    assert "Suivi " in refused.value.message
    assert (await service.get_programme(session, programme.id)).current
    # the team may also leave its patients on the version they have
    kept = await service.revise_rules(
        session,
        team,
        programme.id,
        RulesRevision(rules=without, note="nouveaux patients", move_enrolments=False),
    )
    assert kept.version == 2 and [
        v.version for v in (await service.programme_view(session, team, kept.id)).versions
    ] == [2, 1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"severity": "violet"}, "sévérité « violet »"),
        ({"change": "beaucoup"}, "variation doit être un nombre"),
        ({"days": 400}, "entre 1 et 90"),
        ({"kind": "magie"}, "« kind » attendu"),
        ({"measure": "taille"}, "mesure « taille » inconnue"),
        ({"colour": "red"}, "élément inconnu « colour »"),
    ],
)
async def test_bad_rules_are_refused_naming_the_rule(session, network, change, message):
    view = await service.programme_view(session, network.doctor.principal, network.programme.id)
    with pytest.raises(InvalidInput, match=message):
        await service.replay_rules(
            session,
            network.doctor.principal,
            network.programme.id,
            RulesReplay(rules=_with(view.rules, "ic_poids_3j", **change)),
        )


async def test_the_programme_page_tries_then_publishes_and_strangers_get_nothing(
    client, session, network, patient, frozen
):
    await enrol(session, network, patient)
    await _slow_weight_gain(session, network, patient, frozen)
    programme_id = network.programme.id
    path = f"/telesurveillance/programmes/{programme_id}"
    await sign_in(client, network.doctor)
    listing = await client.get("/telesurveillance/programmes")
    assert f'data-programme="{programme_id}"' in listing.text
    page = await client.get(path)
    assert (
        page.status_code == 200
        and 'data-rule="ir_' not in page.text
        and 'data-rule="ic_congestion"' in page.text
    )
    bad = await post_form(client, path, {"rule:ic_poids_3j:change": "beaucoup"}, path)
    assert bad.status_code == 422 and "« beaucoup » n'est pas un nombre" in text_of(bad)
    tried = await post_form(client, path, {"rule:ic_poids_3j:change": "1,5", "days": "30"}, path)
    assert tried.status_code == 200, text_of(tried)
    assert re.search(r'data-replay-rule="ic_poids_3j" data-current="0" data-candidate="2"', tried.text)
    assert "Poids : prise de 1,8 kg en 3 jours" in text_of(tried)
    no_note = await post_form(client, path, {"rule:ic_poids_3j:change": "1,5", "publish": "rules"}, path)
    assert no_note.status_code == 422 and 'data-error="note"' in no_note.text
    published = await post_form(
        client,
        path,
        {
            "rule:ic_poids_3j:change": "1,5",
            "publish": "rules",
            "note": "Seuil abaissé",
            "move_enrolments": "oui",
        },
        path,
    )
    assert published.status_code == 303
    new_path = published.headers["location"].split("?")[0]
    page = await client.get(new_path)
    assert "version 2" in page.text and "« Seuil abaissé »" in page.text and "data-published" not in page.text
    old = await client.get(path)
    assert "(remplacée)" in old.text and 'name="publish"' not in old.text
    template = await post_form(
        client, new_path, {"publish": "template", "note": "Retour au modèle"}, new_path
    )
    assert template.status_code == 303
    back = await client.get(template.headers["location"].split("?")[0])
    assert "version 3" in back.text and 'data-rule="ic_poids_3j"' in back.text and "2 kg" in text_of(back)

    for stranger in (network.colleague, network.outsider, network.cardiologist):
        client.cookies.clear()
        await sign_in(client, stranger)
        assert (await client.get(path)).status_code == 404, stranger
        refused = await post_form(client, path, {"rule:ic_poids_3j:change": "1"}, "/telesurveillance")
        assert refused.status_code == 404
        headers = await token_for(session, stranger)
        api = await client.post(
            f"/api/monitoring/programmes/{programme_id}/replay", json={"rules": []}, headers=headers
        )
        assert api.status_code in (404, 422)


async def test_the_api_replays_and_revises_with_rules_as_json(client, session, network, patient, frozen):
    await enrol(session, network, patient)
    other = await make_patient(session, network.cardiologist, birth_family_name="Lenoir")
    await enrol(session, network, other, devices=[])
    programme_id = network.programme.id
    headers = await token_for(session, network.doctor)
    current = (
        await client.get(f"/api/monitoring/programmes/{programme_id}/versions", headers=headers)
    ).json()
    data = current[0]["rules"] + [
        {
            "kind": "threshold",
            "code": "ic_fc_haute",
            "measure": "heart_rate",
            "severity": "orange",
            "above": 110,
        }
    ]
    tried = await client.post(
        f"/api/monitoring/programmes/{programme_id}/replay", json={"rules": data, "days": 7}, headers=headers
    )
    assert tried.status_code == 200 and tried.json()["enrolments"] == 2
    assert {r["code"] for r in tried.json()["rules"]} >= {"ic_fc_haute", "ic_poids_3j"}
    odd = await client.post(
        f"/api/monitoring/programmes/{programme_id}/revisions",
        json={"rules": [{"kind": "threshold", "code": "ic_x"}], "note": "essai"},
        headers=headers,
    )
    assert odd.status_code == 422 and "élément manquant « measure »" in odd.text
    made = await client.post(
        f"/api/monitoring/programmes/{programme_id}/revisions",
        json={"rules": data, "note": "Tachycardie surveillée"},
        headers=headers,
    )
    assert made.status_code == 201 and made.json()["version"] == 2
    assert any(r["code"] == "ic_fc_haute" for r in made.json()["rules"])
    assert uuid.UUID(made.json()["id"]) != programme_id


async def test_a_new_declaration_keeps_the_revised_measures_and_rules(session, network):
    team = network.doctor.principal
    view = await service.programme_view(session, team, network.programme.id)
    fever = rules.rule_to_data(rules.Threshold("ic_fievre", "temperature", "orange", above=38.5))
    revised = await service.revise_rules(
        session,
        team,
        network.programme.id,
        RulesRevision(rules=[*(rules.rule_to_data(r) for r in view.rules), fever], note="Fièvre"),
    )
    # a rule on a measure the programme did not ask for: the patients are asked for it
    assert {"measure": "temperature", "frequency": "selon la prescription"} in revised.measures
    hours = await service.create_programme(
        session,
        network.admin.principal,
        ProgrammeCreate(
            organisation_id=network.team_id,
            code="insuffisance_cardiaque",
            team_name="Équipe IC",
            days=[1, 2, 3],
        ),
    )
    assert hours.version == 3 and hours.days == [1, 2, 3]
    assert hours.measures == revised.measures and hours.rules == revised.rules


async def test_an_administrator_revises_but_only_the_team_tries_rules_on_its_patients(
    session, network, patient
):
    await enrol(session, network, patient)
    admin = network.admin.principal  # administrator of the team's hospital
    view = await service.programme_view(session, admin, network.programme.id)
    data = [rules.rule_to_data(r) for r in view.rules]
    with pytest.raises(Forbidden, match="réservé à l'équipe"):
        await service.replay_rules(session, admin, network.programme.id, RulesReplay(rules=data))
    regional = await make_actor(session, None, Role.REGIONAL_ADMIN)
    with pytest.raises(NotFound):
        await service.programme_view(session, regional.principal, network.programme.id)
    assert await service.team_programmes(session, regional.principal) == []
    revised = await service.revise_rules(
        session, admin, network.programme.id, RulesRevision(rules=data, note="Relecture annuelle")
    )
    assert revised.version == 2
