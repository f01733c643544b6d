"""Alert rules as data, evaluated on readings (pure functions): thresholds, trends, missing data, the shipped
programmes' defaults, and the triage colour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telesante.monitoring.rules import (
    PROGRAMMES,
    Missing,
    Reading,
    Threshold,
    Trend,
    evaluate,
    triage_colour,
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
        assert all(rule.measure in measures for rule in programme.rules), programme.code
