"""Alert rules as data, evaluated on readings (pure functions): thresholds, trends, missing data, the shipped
programmes' defaults, and the triage colour."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from telesante.kit.errors import InvalidInput
from telesante.monitoring.rules import (
    PROGRAMMES,
    Combination,
    Missing,
    Reading,
    Threshold,
    Trend,
    check_rule_set,
    evaluate,
    measures_of,
    parse_rule_set,
    reading_id,
    replay,
    rule_from_data,
    rule_to_data,
    triage_colour,
    with_overrides,
)

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
START = NOW - timedelta(days=30)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def weights(*values: float, every: float = 1.0) -> list[Reading]:
    """One weight a day (the last one now)."""
    count = len(values)
    return [
        Reading("weight", value, days_ago((count - 1 - n) * every), id=n) for n, value in enumerate(values)
    ]


def test_heart_failure_weight_gain_of_2_kg_in_3_days_is_red():
    programme = PROGRAMMES["insuffisance_cardiaque"]
    readings = weights(80.0, 80.2, 81.0, 81.6, 82.2)  # +2.0 kg from three days ago
    findings = evaluate(programme.rules, readings, NOW, START)
    assert [f.rule for f in findings] == ["ic_poids_3j"]
    assert findings[0].severity == "red" and triage_colour(findings) == "red"
    assert "prise de 2 kg en 3 jours (80,2 → 82,2 kg)" in findings[0].message
    assert [r.id for r in findings[0].readings] == [1, 4]  # the reading it rose from, and the latest


def test_a_slower_gain_over_a_week_is_orange_and_a_steady_weight_is_green():
    programme = PROGRAMMES["insuffisance_cardiaque"]
    slow = weights(80.0, 80.5, 81.0, 81.5, 82.0, 82.5, 83.0)  # +3 kg in 6 days, never 2 kg in 3
    findings = evaluate(programme.rules, slow, NOW, START)
    assert [(f.rule, f.severity) for f in findings] == [("ic_poids_7j", "orange")]
    steady = weights(80.0, 80.3, 79.9, 80.1, 80.2)
    assert evaluate(programme.rules, steady, NOW, START) == [] and triage_colour([]) == "green"
    # a gain spread over more than the window does not count
    assert (
        evaluate([Trend("t", "weight", "red", change=2.0, days=3)], weights(80, 82, every=4), NOW, START)
        == []
    )


def test_thresholds_take_the_latest_reading_and_the_worst_of_one_side():
    rules = PROGRAMMES["diabete"].rules
    readings = [
        Reading("glucose", 40, days_ago(2)),  # an old hypoglycaemia: the latest reading decides
        Reading("glucose", 50, NOW),
    ]
    findings = evaluate(rules, readings, NOW, START)
    assert [(f.rule, f.severity) for f in findings] == [("dt_hypo_2", "red")]
    assert findings[0].message == "Glycémie 50 mg/dL, en dessous de 54 mg/dL."
    high = evaluate(rules, [Reading("glucose", 300, NOW)], NOW, START)
    assert [(f.rule, f.severity) for f in high] == [("dt_hyper_2", "orange")]
    assert evaluate(rules, [Reading("glucose", 70, NOW)], NOW, START) == []  # at the limit: not below it


def test_missing_data_is_blue_and_counts_from_the_start_of_monitoring():
    rules = [Missing("absent", "spo2", days=3)]
    assert evaluate(rules, [], NOW, since=days_ago(2)) == []  # enrolled two days ago: not missing yet
    first = evaluate(rules, [], NOW, since=days_ago(5))
    assert [(f.severity, f.message) for f in first] == [
        ("blue", "Aucune mesure de saturation en oxygène (spo₂) depuis le début du suivi.")
    ]
    later = evaluate(rules, [Reading("spo2", 94, days_ago(4))], NOW, START)
    assert later[0].message.endswith("depuis 4 jours.") and triage_colour(later) == "blue"
    assert evaluate(rules, [Reading("spo2", 94, days_ago(1))], NOW, START) == []
    # a reading from before the monitoring began (a device's stored history) does not make data missing sooner: the
    # delay still counts from the start
    before = [Reading("spo2", 94, days_ago(30))]
    assert evaluate(rules, before, NOW, since=days_ago(2)) == []
    assert evaluate(rules, [], NOW, since=days_ago(2), last_seen={"spo2": days_ago(30)}) == []
    late = evaluate(rules, before, NOW, since=days_ago(5))
    assert [f.message for f in late] == [
        "Aucune mesure de saturation en oxygène (spo₂) depuis le début du suivi."
    ]


def test_a_fall_and_readings_after_now_when_replaying_the_past():
    rules = [
        Trend("chute", "weight", "orange", change=-3.0, days=7),
        Threshold("haut", "weight", "red", above=100),
    ]
    falling = weights(90.0, 89.0, 88.0, 86.5)
    assert [f.rule for f in evaluate(rules, falling, NOW, START)] == ["chute"]
    assert "perte de 3,5 kg" in evaluate(rules, falling, NOW, START)[0].message
    future = [
        *falling,
        Reading("weight", 120, NOW + timedelta(days=1)),
    ]  # replaying as of NOW ignores what came after
    assert [f.rule for f in evaluate(rules, future, NOW, START)] == ["chute"]


def test_every_shipped_rule_names_a_known_measure_and_a_unique_code():
    codes = [rule.code for programme in PROGRAMMES.values() for rule in programme.rules]
    assert len(codes) == len(set(codes))
    for programme in PROGRAMMES.values():
        measures = {key for key, _frequency in programme.measures}
        by_code = {rule.code: rule for rule in programme.rules}
        assert all(measures_of(rule, by_code) <= measures for rule in programme.rules), programme.code
        assert all(rule_from_data(rule_to_data(rule)) == rule for rule in programme.rules)


def answers(**days_ago_by_measure: float) -> list[Reading]:
    """A "yes" to each question, answered that many days ago."""
    return [
        Reading(measure, 1.0, days_ago(days), id=f"{measure}-{days}")
        for measure, days in days_ago_by_measure.items()
    ]


def test_one_congestion_sign_is_orange_two_together_are_red():
    rules = PROGRAMMES["insuffisance_cardiaque"].rules
    steady = weights(80.0, 80.1, 80.0, 80.2)
    alone = evaluate(rules, steady + answers(dyspnoea=0), NOW, START)
    assert [(f.rule, f.severity) for f in alone] == [("ic_dyspnee", "orange")]
    assert alone[0].message == "Symptôme signalé : essoufflement inhabituel."
    # oedema alone raises nothing: it only counts with another sign
    assert evaluate(rules, steady + answers(oedema=0), NOW, START) == []
    both = evaluate(rules, steady + answers(dyspnoea=0, oedema=0.5), NOW, START)
    assert [(f.rule, f.severity) for f in both] == [("ic_congestion", "red"), ("ic_dyspnee", "orange")]
    assert both[0].message == (
        "Signes congestifs associés : Symptôme signalé : essoufflement inhabituel ; "
        "Symptôme signalé : œdèmes en augmentation."
    )
    assert [r.measure for r in both[0].readings] == ["oedema", "dyspnoea"]  # oldest first
    # a "no" the next day ends the sign: the latest answer counts
    better = evaluate(
        rules, steady + answers(oedema=0.5) + [Reading("dyspnoea", 0.0, NOW, id="d-no")], NOW, START
    )
    assert better == []


def test_two_of_anthonisens_three_signs_make_an_exacerbation_and_low_spo2_with_dyspnoea_is_red():
    rules = PROGRAMMES["insuffisance_respiratoire"].rules
    spo2 = [Reading("spo2", 92, days_ago(0), id="s")]
    assert evaluate(rules, spo2 + answers(dyspnoea=0), NOW, START) == []  # one sign: no alert
    two = evaluate(rules, spo2 + answers(sputum_volume=0, sputum_purulence=0), NOW, START)
    assert [(f.rule, f.severity) for f in two] == [("ir_exacerbation", "orange")]
    assert two[0].message.startswith("Exacerbation probable (critères d'Anthonisen) : ")
    low = [Reading("spo2", 86, days_ago(0), id="s-low")]
    red = evaluate(rules, low + answers(dyspnoea=0), NOW, START)
    assert [(f.rule, f.severity) for f in red] == [
        ("ir_desaturation_dyspnee", "red"),
        ("ir_spo2_basse", "orange"),
    ]


def test_ventilation_of_less_than_4_hours_is_orange():
    rules = PROGRAMMES["insuffisance_respiratoire"].rules
    readings = [Reading("spo2", 93, NOW, id="s"), Reading("ventilation_hours", 3.5, NOW, id="v")]
    findings = evaluate(rules, readings, NOW, START)
    assert [(f.rule, f.message) for f in findings] == [
        ("ir_ventilation_courte", "Durée de ventilation sur 24 h 3,5 h, en dessous de 4 h.")
    ]


def test_an_unanswered_questionnaire_is_missing_data():
    rules = (Missing("q", "dyspnoea", days=2),)
    findings = evaluate(rules, answers(dyspnoea=3), NOW, START)
    assert findings[0].message == "Questionnaire non rempli (essoufflement inhabituel) depuis 3 jours."


def test_a_rule_set_is_checked_before_it_is_published():
    base = (Threshold("a", "spo2", "condition", below=88), Threshold("b", "dyspnoea", "condition", above=0.5))
    check_rule_set((*base, Combination("c", "red", ("a", "b"), 2, "Les deux")))
    cases = [
        ((*base, Combination("c", "red", ("a", "x"), 1, "?")), "« x » n'est pas une règle"),
        ((*base, Combination("c", "red", ("a", "a"), 2, "?")), "mesure différente"),
        ((*base, Combination("c", "red", ("a", "b"), 2, "?", days=float("nan"))), "doit être un nombre"),
        ((Threshold("t", "weight", "red", above=float("inf")),), "doit être un nombre"),
        ((Missing("m", "weight", days=3, severity="condition"),), "sans alerte seule"),
        ((Threshold("q", "dyspnoea", "orange", below=0.5),), "réponse « oui »"),
        ((Threshold("q", "dyspnoea", "orange", above=5),), "réponse « oui »"),
        ((*base, Combination("c", "red", ("a", "b"), 3, "?")), "entre 1 et 2"),
        ((*base, Threshold("a", "weight", "red", above=100)), "« a » en double"),
        (base, "sans alerte seule"),  # conditions no combination uses
        ((Threshold("t", "weight", "red", above=900),), "hors des valeurs possibles"),
        ((Threshold("t", "weight", "violet", above=90),), "sévérité « violet »"),
        ((Trend("t", "taille", "red", change=2, days=3),), "mesure « taille » inconnue"),
        ((), "au moins une règle"),
    ]
    for rule_set, message in cases:
        with pytest.raises(InvalidInput, match=message):
            check_rule_set(rule_set)
    for odd in ([{"kind": ["threshold"]}], [{"kind": "trend", "code": "t", "measure": "weight"}], ["x"]):
        with pytest.raises(InvalidInput):
            parse_rule_set(odd)
    with pytest.raises(InvalidInput, match="doit être un nombre"):
        with_overrides(PROGRAMMES["diabete"].rules, {"dt_glycemie_absente": {"days": float("nan")}})


def test_a_combination_can_be_tuned_per_patient_but_not_a_symptoms_yes():
    rules = PROGRAMMES["insuffisance_respiratoire"].rules
    tuned = with_overrides(rules, {"ir_exacerbation": {"at_least": 3}})
    assert next(r for r in tuned if r.code == "ir_exacerbation").at_least == 3
    with pytest.raises(InvalidInput, match="non modifiable"):
        with_overrides(rules, {"ir_dyspnee": {"above": 0.2}})


def test_a_combination_counts_only_recent_signs():
    rules = PROGRAMMES["insuffisance_respiratoire"].rules
    old_low = [Reading("spo2", 85, days_ago(3.5), id="s")]
    findings = evaluate(rules, old_low + answers(dyspnoea=0), NOW, START)
    # the low SpO₂ of three and a half days ago is still the latest (orange; and missing since), but it does not
    # go "with" today's breathlessness
    assert [f.rule for f in findings] == ["ir_spo2_basse", "ir_spo2_absente"]
    recent = evaluate(rules, [Reading("spo2", 85, days_ago(1), id="s")] + answers(dyspnoea=0), NOW, START)
    assert recent[0].rule == "ir_desaturation_dyspnee"


def test_replay_raises_what_the_platform_would_have_raised_in_the_period():
    rules = PROGRAMMES["insuffisance_respiratoire"].rules
    start, since = days_ago(20), days_ago(60)
    readings = [
        Reading("spo2", 93, days_ago(d), id=f"s{d}") for d in range(0, 20)
    ] + [  # two of Anthonisen's signs a day and a half apart: an exacerbation on the second
        Reading("dyspnoea", 1.0, days_ago(10), id="d"),
        Reading("sputum_volume", 1.0, days_ago(8.5), id="v"),
        Reading("spo2", 85, days_ago(30), id="old-low"),  # before the period: raises nothing in it
    ]
    raised = replay(rules, readings, since, start, NOW)
    assert [(f.rule, at) for at, f in raised] == [("ir_exacerbation", days_ago(8.5))]
    # a low SpO₂ long before breathlessness is not a desaturation with breathlessness
    later = replay(
        rules,
        [Reading("spo2", 85, days_ago(15), id="low"), Reading("dyspnoea", 1.0, days_ago(5), id="d5")]
        + [Reading("spo2", 93, days_ago(d), id=f"t{d}") for d in range(0, 14)],
        since,
        start,
        NOW,
    )
    assert [f.rule for _at, f in later] == ["ir_spo2_basse"]


def test_replay_finds_missing_data_once_per_gap():
    rules = (Missing("m", "weight", days=3),)
    readings = [Reading("weight", 80.0, days_ago(10), id="w")]
    raised = replay(rules, readings, days_ago(30), days_ago(12), NOW)
    assert [(f.rule, f.message) for _at, f in raised] == [("m", "Aucune mesure de poids depuis 3 jours.")]


def test_a_reading_id_has_one_text_whether_stored_as_a_uuid_or_as_sqlite_text():
    # PostgreSQL gives the window's ids as UUIDs, SQLite as its stored 32 hex digits (converted only for findings):
    # an alert's trigger and readings must name a reading the same way on both engines
    id_ = uuid.uuid4()
    assert reading_id(id_) == reading_id(id_.hex) == str(id_)
    assert reading_id(id_.hex) != id_.hex
    assert (
        reading_id(4) == "4"
        and reading_id("not-a-uuid-but-32-characters-xxx") == "not-a-uuid-but-32-characters-xxx"
    )
