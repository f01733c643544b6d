"""Remote-monitoring readings as devices send them: LOINC codes and UCUM units converted on arrival, impossible
values and dates refused with a message naming what is wrong (pure functions, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telesante.monitoring.clinical import (
    BY_CODE,
    BY_LOINC,
    LOCAL,
    LOINC,
    MEASURES,
    ReadingRefused,
    check_reading_time,
    normalise,
)

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "value", "unit", "key", "expected"),
    [
        ("29463-7", 72.4, "kg", "weight", 72.4),
        ("29463-7", 160, "[lb_av]", "weight", 72.6),  # 160 lb = 72.57 kg
        ("3141-9", 72400, "g", "weight", 72.4),
        ("8480-6", 128, "mm[Hg]", "systolic", 128),
        ("8480-6", 16, "kPa", "systolic", 120),  # 16 kPa = 120.01 mm Hg
        ("8462-4", "79", "mm[Hg]", "diastolic", 79),
        ("8867-4", 64, "/min", "heart_rate", 64),
        ("8867-4", 64, "{beats}/min", "heart_rate", 64),
        ("59408-5", 93, "%", "spo2", 93),
        ("2708-6", 100, "%", "spo2", 100),
        ("41653-7", 112, "mg/dL", "glucose", 112),
        ("15074-8", 5.5, "mmol/L", "glucose", 99),  # 5.5 mmol/L = 99.1 mg/dL
        ("2339-0", 1.26, "g/L", "glucose", 126),  # the French unit
        ("8310-5", 98.6, "[degF]", "temperature", 37.0),
        ("9279-1", 18, "/min", "respiratory_rate", 18),
    ],
)
def test_readings_are_stored_in_one_unit(code, value, unit, key, expected):
    measure, stored = normalise(code, value, unit)
    assert measure.key == key and stored == expected


def test_every_code_belongs_to_one_measure():
    codes = [(measure.system, code) for measure in MEASURES for code in measure.codes]
    assert len(codes) == len(set(codes)) == len(BY_CODE)
    assert len(BY_LOINC) == sum(1 for system, _ in codes if system == LOINC)
    for measure in MEASURES:
        # the stored unit is accepted as such; a questionnaire's answer has no unit
        assert measure.unit in measure.units or (measure.is_answer and not measure.units)


def test_ventilation_hours_and_answers_use_the_local_code_system():
    measure, hours = normalise("ventilation-heures", 390, "min", system=LOCAL)
    assert (measure.key, hours) == ("ventilation_hours", 6.5)
    for sent, stored in (("oui", 1.0), ("Non", 0.0), (True, 1.0), (False, 0.0), (1, 1.0)):
        measure, value = normalise("symptome-dyspnee", sent, None, system=LOCAL)
        assert (measure.key, value) == ("dyspnoea", stored)
    with pytest.raises(ReadingRefused, match="oui ou non attendu") as refused:
        normalise("symptome-dyspnee", "peut-être", None, system=LOCAL)
    assert refused.value.field == "value"
    with pytest.raises(ReadingRefused, match="Valeur impossible") as refused:
        normalise("ventilation-heures", 25, "h", system=LOCAL)
    with pytest.raises(ReadingRefused, match="inconnu dans urn:telesante") as refused:
        normalise("symptome-toux", "oui", None, system=LOCAL)
    assert refused.value.field == "code"
    with pytest.raises(ReadingRefused, match="nombre attendu"):
        normalise("29463-7", True, "kg")  # a boolean is not a weight
        assert measure.low < measure.high


@pytest.mark.parametrize(
    ("code", "value", "unit", "field", "words"),
    [
        ("1234-5", 70, "kg", "code", "Code LOINC « 1234-5 » inconnu"),
        ("29463-7", 70, "", "unit", "Unité absente pour poids"),
        ("29463-7", 70, None, "unit", "unité UCUM attendue (kg)"),
        ("29463-7", 70, "stone", "unit", "Unité « stone » non convertible pour poids"),
        ("2339-0", 5, "mmol/mol", "unit", "unités acceptées mg/dL, g/L, mmol/L"),
        ("29463-7", 0, "kg", "value", "Valeur impossible pour poids : 0 kg (attendu entre 1 et 400 kg)"),
        ("29463-7", 700, "kg", "value", "Valeur impossible pour poids : 700 kg"),
        ("59408-5", 140, "%", "value", "Valeur impossible pour saturation en oxygène (spo₂) : 140 %"),
        ("8480-6", "cent vingt", "mm[Hg]", "value", "« cent vingt » non numérique"),
        ("8867-4", float("nan"), "/min", "value", "non numérique"),
        ("8867-4", float("inf"), "/min", "value", "non numérique"),
        ("15074-8", 200, "mmol/L", "value", "Valeur impossible pour glycémie : 3603 mg/dL"),
    ],
)
def test_bad_readings_are_refused_naming_what_is_wrong(code, value, unit, field, words):
    with pytest.raises(ReadingRefused) as refused:
        normalise(code, value, unit)
    assert refused.value.field == field
    assert words in refused.value.message, refused.value.message
    assert refused.value.status_code == 422


def test_only_loinc_codes_are_understood():
    with pytest.raises(ReadingRefused) as refused:
        normalise("27113001", 70, "kg", system="http://snomed.info/sct")
    assert refused.value.field == "code" and "LOINC attendu" in refused.value.message


def test_reading_dates_in_the_future_or_years_ago_are_refused():
    assert check_reading_time(NOW - timedelta(days=3), NOW) == NOW - timedelta(days=3)
    assert check_reading_time(NOW + timedelta(minutes=4), NOW)  # a device's clock a little ahead
    for when, words in (
        (NOW + timedelta(minutes=10), "dans le futur"),
        (NOW - timedelta(days=400), "plus de 365 jours"),
        (datetime(2026, 12, 4, 8, 0), "sans fuseau horaire"),
    ):
        with pytest.raises(ReadingRefused) as refused:
            check_reading_time(when, NOW)
        assert words in refused.value.message and refused.value.field == "effective"
