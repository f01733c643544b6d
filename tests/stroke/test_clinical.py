"""The TéléAVC clinical rules, as pure functions: NIHSS, time windows, thrombolysis checklist, doses, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

from telesante.kit.errors import InvalidInput
from telesante.stroke import clinical
from telesante.stroke.clinical import (
    CONTRAINDICATIONS,
    NIHSS_ITEMS,
    Measures,
    StrokeRules,
    evaluate_checklist,
    score_nihss,
    thrombolysis_dose,
    window_states,
)

RULES = StrokeRules()
ONSET = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
NOW = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)

PUBLISHED_RANGES = {
    "1a": 3,
    "1b": 2,
    "1c": 2,
    "2": 2,
    "3": 3,
    "4": 3,
    "5a": 4,
    "5b": 4,
    "6a": 4,
    "6b": 4,
    "7": 2,
    "8": 2,
    "9": 3,
    "10": 2,
    "11": 2,
}
UNTESTABLE_ALLOWED = {"5a", "5b", "6a", "6b", "7", "10"}


def zeros() -> dict[str, object]:
    return dict.fromkeys(PUBLISHED_RANGES, 0)


def invalid(call, *args) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    return caught.value


# --- NIHSS -----------------------------------------------------------------------------------------------------


def test_the_fifteen_items_in_order_with_their_published_ranges():
    assert [item.code for item in NIHSS_ITEMS] == list(PUBLISHED_RANGES)
    assert {item.code: item.max for item in NIHSS_ITEMS} == PUBLISHED_RANGES
    assert clinical.NIHSS_MAX == 42
    assert {item.code for item in NIHSS_ITEMS if item.untestable} == UNTESTABLE_ALLOWED
    for item in NIHSS_ITEMS:
        assert item.label.startswith(f"{item.code}. ")
        assert all(option.strip() for option in item.options)
    assert NIHSS_ITEMS[0].label == "1a. Niveau de conscience"


@pytest.mark.parametrize("code", list(PUBLISHED_RANGES))
def test_each_item_accepts_its_maximum_and_refuses_one_more(code):
    top = PUBLISHED_RANGES[code]
    result = score_nihss({**zeros(), code: top})
    assert result.items[code] == top and result.total == top
    error = invalid(score_nihss, {**zeros(), code: top + 1})
    assert error.field == f"items.{code}"
    assert error.message == f"NIHSS, item {code} : valeur {top + 1} hors de l'échelle (0 à {top})."


def test_the_message_names_the_item_and_the_range():
    error = invalid(score_nihss, {**zeros(), "5a": 7})
    assert (
        error.message == "NIHSS, item 5a : valeur 7 hors de l'échelle (0 à 4)." and error.field == "items.5a"
    )
    assert invalid(score_nihss, {**zeros(), "9": -1}).field == "items.9"


@pytest.mark.parametrize("code", list(PUBLISHED_RANGES))
def test_every_item_is_required(code):
    items = zeros()
    del items[code]
    error = invalid(score_nihss, items)
    assert error.field == f"items.{code}" and "manquant" in error.message
    assert invalid(score_nihss, {**zeros(), code: None}).field == f"items.{code}"


def test_an_unknown_item_is_refused_on_the_items_field():
    error = invalid(score_nihss, {**zeros(), "12": 0})
    assert error.field == "items" and "12" in error.message


@pytest.mark.parametrize("code", list(PUBLISHED_RANGES))
def test_un_only_where_the_scale_allows_it(code):
    if code in UNTESTABLE_ALLOWED:
        result = score_nihss({**zeros(), code: "UN"})
        assert result.items[code] == "UN" and result.untestable == (code,) and result.total == 0
    else:
        error = invalid(score_nihss, {**zeros(), code: "UN"})
        assert error.field == f"items.{code}" and "UN" in error.message


def test_untestable_items_count_zero_in_the_total():
    result = score_nihss({**zeros(), "5a": "un", "5b": 4, "10": "UN", "9": 3})
    assert result.total == 7 and result.untestable == ("5a", "10") and result.items["5a"] == "UN"


def test_a_known_patient_totals_14():
    items = {
        "1a": 0,
        "1b": 1,
        "1c": 0,
        "2": 1,
        "3": 2,
        "4": 2,
        "5a": 0,
        "5b": 3,
        "6a": 0,
        "6b": 2,
        "7": 0,
        "8": 1,
        "9": 1,
        "10": 1,
        "11": 0,
    }
    result = score_nihss(items)
    assert result.total == 14 and list(result.items) == list(PUBLISHED_RANGES) and result.untestable == ()


def test_every_maximum_totals_42():
    assert score_nihss(dict(PUBLISHED_RANGES)).total == 42


def test_digit_strings_and_whole_floats_are_accepted_other_types_refused():
    result = score_nihss({**zeros(), "1a": "2", "4": " 3 ", "9": 2.0})
    assert result.items["1a"] == 2 and result.items["4"] == 3 and result.items["9"] == 2 and result.total == 7
    for bad in (True, False, 1.5, "1,5", "deux", [1], float("nan")):
        assert invalid(score_nihss, {**zeros(), "1b": bad}).field == "items.1b"


# --- time windows ----------------------------------------------------------------------------------------------


def windows_at(elapsed: timedelta, rules: StrokeRules = RULES) -> dict[str, clinical.WindowState]:
    return {w.code: w for w in window_states(ONSET, ONSET + elapsed, rules)}


def test_the_three_windows_their_labels_and_deadlines():
    states = window_states(ONSET, ONSET + timedelta(hours=1), RULES)
    assert [(w.code, w.label, w.limit_minutes) for w in states] == [
        ("iv", "Thrombolyse IV (4 h 30)", 270),
        ("thrombectomy", "Thrombectomie (6 h)", 360),
        ("thrombectomy_extended", "Thrombectomie chez des patients sélectionnés (24 h)", 1440),
    ]
    assert [w.deadline for w in states] == [ONSET + timedelta(minutes=m) for m in (270, 360, 1440)]
    assert [w.remaining_minutes for w in states] == [210, 300, 1380]
    assert {w.state for w in states} == {"ok"}


@pytest.mark.parametrize(
    ("elapsed", "state", "remaining"),
    [
        (timedelta(hours=3, minutes=59), "ok", 31),
        (timedelta(hours=4), "near", 30),
        (timedelta(hours=4, minutes=29), "near", 1),
        (timedelta(hours=4, minutes=29, seconds=30), "near", 0),
        (timedelta(hours=4, minutes=30), "near", 0),  # "within 4.5 h": still open at the deadline
        (timedelta(hours=4, minutes=30, seconds=1), "passed", 0),
        (timedelta(hours=6), "passed", 0),
    ],
)
def test_the_iv_window_at_key_instants(elapsed, state, remaining):
    iv = windows_at(elapsed)["iv"]
    assert (iv.state, iv.remaining_minutes) == (state, remaining)


def test_thrombectomy_windows_run_on_after_the_iv_window():
    states = windows_at(timedelta(hours=4, minutes=31))
    assert states["iv"].state == "passed"
    assert states["thrombectomy"].state == "ok" and states["thrombectomy"].remaining_minutes == 89
    assert windows_at(timedelta(hours=5, minutes=45))["thrombectomy"].state == "near"
    late = windows_at(timedelta(hours=7))
    assert late["thrombectomy"].state == "passed" and late["thrombectomy_extended"].state == "ok"
    assert windows_at(timedelta(hours=24, minutes=1))["thrombectomy_extended"].state == "passed"


def test_unknown_onset_gives_unknown_windows():
    states = window_states(None, NOW, RULES)
    assert [w.state for w in states] == ["unknown"] * 3
    assert all(w.deadline is None and w.remaining_minutes is None for w in states)


def test_naive_datetimes_are_refused_and_a_future_onset_is_bad_input():
    with pytest.raises(ValueError):
        window_states(ONSET.replace(tzinfo=None), NOW, RULES)
    with pytest.raises(ValueError):
        window_states(ONSET, NOW.replace(tzinfo=None), RULES)
    assert invalid(window_states, NOW + timedelta(minutes=5), NOW, RULES).field == "last_known_well"


def test_window_lengths_and_labels_follow_the_settings():
    rules = StrokeRules(iv_window_minutes=180, window_warning_minutes=15)
    iv = windows_at(timedelta(hours=2, minutes=44), rules)["iv"]
    assert iv.label == "Thrombolyse IV (3 h)" and iv.state == "ok" and iv.remaining_minutes == 16
    assert windows_at(timedelta(hours=2, minutes=45), rules)["iv"].state == "near"


# --- checklist -------------------------------------------------------------------------------------------------

MEASURED = {"pression_arterielle", "plaquettes", "inr", "glycemie", "aod", "hbpm", "heparine_tca"}
NORMAL = Measures(
    systolic=160, diastolic=90, glucose_mmol=6.5, platelets=220_000, inr=1.0, anticoagulant="aucun"
)


def all_no() -> dict[str, str]:
    return {c.code: "non" for c in CONTRAINDICATIONS}


def checklist(measures: Measures, manual: dict[str, str] | None = None, rules: StrokeRules = RULES):
    result = evaluate_checklist(all_no() if manual is None else manual, measures, NOW, rules)
    return result, {i.item.code: i for i in result.items}


def test_the_catalogue_covers_the_guideline_items_with_sources():
    codes = [c.code for c in CONTRAINDICATIONS]
    assert len(codes) == len(set(codes))
    absolute = {c.code for c in CONTRAINDICATIONS if c.absolute}
    assert {
        "hemorragie_imagerie",
        "pression_arterielle",
        "plaquettes",
        "inr",
        "aod",
        "hbpm",
        "avc_trauma_3_mois",
        "hemorragie_digestive",
        "antecedent_hemorragie_intracranienne",
        "lesion_intracranienne",
        "saignement_actif",
        "chirurgie_intracranienne_3_mois",
        "dissection_aortique",
        "endocardite",
        "glycemie",
    } <= absolute
    relative = {c.code for c in CONTRAINDICATIONS if not c.absolute}
    assert {
        "chirurgie_majeure_14_jours",
        "ponction_arterielle_7_jours",
        "grossesse",
        "crise_inaugurale",
    } <= relative
    assert clinical.MEASURED_CODES == MEASURED
    for c in CONTRAINDICATIONS:
        assert c.label and ("AHA" in c.source or "ESO" in c.source or "RCP" in c.source)


def test_normal_measures_and_every_item_answered_no_is_clear():
    result, items = checklist(NORMAL)
    assert result.clear and result.blocking == () and result.unanswered == ()
    assert {code for code, i in items.items() if i.origin == "mesure"} == MEASURED
    assert items["hemorragie_imagerie"].origin == "saisie" and items["hemorragie_imagerie"].answer == "non"


def test_a_measure_wins_over_the_manual_answer():
    result, items = checklist(Measures(inr=2.1))
    assert items["inr"].answer == "oui" and items["inr"].origin == "mesure"
    assert items["inr"].detail == "INR 2,1 > 1,7"
    assert result.blocking == ("inr",) and not result.clear
    _, items = checklist(Measures(inr=1.2), {**all_no(), "inr": "oui"})
    assert (
        items["inr"].answer == "non"
        and items["inr"].origin == "mesure"
        and items["inr"].detail == "INR 1,2 ≤ 1,7"
    )


def test_without_a_measure_the_manual_answer_is_used_else_nothing():
    _, items = checklist(Measures(), {**all_no(), "inr": "oui"})
    assert (items["inr"].answer, items["inr"].origin) == ("oui", "saisie")
    result, items = checklist(Measures(), {})
    assert items["inr"].answer is None and items["inr"].origin is None and "INR > 1,7" in items["inr"].detail
    assert set(result.unanswered) == {c.code for c in CONTRAINDICATIONS if c.absolute}
    assert result.blocking == () and not result.clear


@pytest.mark.parametrize(
    ("measures", "code", "answer"),
    [
        (Measures(inr=1.7), "inr", "non"),
        (Measures(inr=1.71), "inr", "oui"),
        (Measures(platelets=100_000), "plaquettes", "non"),
        (Measures(platelets=99_999), "plaquettes", "oui"),
        (Measures(systolic=185, diastolic=110), "pression_arterielle", "non"),
        (Measures(systolic=186, diastolic=110), "pression_arterielle", "oui"),
        (Measures(systolic=185, diastolic=111), "pression_arterielle", "oui"),
        (Measures(glucose_mmol=2.8), "glycemie", "non"),
        (Measures(glucose_mmol=2.79), "glycemie", "oui"),
        (Measures(glucose_mmol=22.2), "glycemie", "non"),
        (Measures(glucose_mmol=22.21), "glycemie", "oui"),
    ],
)
def test_each_threshold_at_its_boundary(measures, code, answer):
    result, items = checklist(measures)
    assert items[code].answer == answer and items[code].origin == "mesure"
    assert (code in result.blocking) == (answer == "oui")


def test_details_explain_the_verdict_in_french():
    _, items = checklist(
        Measures(systolic=186, diastolic=110, platelets=99_999, glucose_mmol=22.21, inr=1.71)
    )
    assert items["pression_arterielle"].detail == "PA 186/110 mmHg > 185/110"
    assert items["plaquettes"].detail == "Plaquettes 99 999/mm³ < 100 000"
    assert items["glycemie"].detail == "Glycémie 22,21 mmol/L > 22,2"
    assert items["inr"].detail == "INR 1,71 > 1,7"


def test_one_blood_pressure_figure_alone_decides_only_when_high():
    _, items = checklist(Measures(systolic=200))
    assert items["pression_arterielle"].answer == "oui"
    result, items = checklist(Measures(systolic=150), {})
    assert items["pression_arterielle"].answer == "inconnu" and "pression_arterielle" in result.unanswered


@pytest.mark.parametrize(
    ("anticoagulant", "hours", "code", "answer"),
    [
        ("aod_anti_xa", 47, "aod", "oui"),
        ("aod_anti_xa", 49, "aod", "non"),
        ("aod_dabigatran", 47, "aod", "oui"),
        ("aod_dabigatran", 49, "aod", "non"),
        ("hbpm_curative", 23, "hbpm", "oui"),
        ("hbpm_curative", 25, "hbpm", "non"),
    ],
)
def test_anticoagulant_delays(anticoagulant, hours, code, answer):
    measures = Measures(anticoagulant=anticoagulant, last_anticoagulant_at=NOW - timedelta(hours=hours))
    result, items = checklist(measures)
    assert items[code].answer == answer and items[code].origin == "mesure"
    other = "hbpm" if code == "aod" else "aod"
    assert items[other].answer == "non"
    assert result.blocking == ((code,) if answer == "oui" else ())


def test_a_doac_without_time_of_last_intake_is_unknown_unless_answered_by_hand():
    measures = Measures(anticoagulant="aod_anti_xa")
    result, items = checklist(measures, {k: v for k, v in all_no().items() if k != "aod"})
    assert items["aod"].answer == "inconnu" and items["aod"].origin == "mesure"
    assert result.unanswered == ("aod",) and not result.clear
    # e.g. a drug level measured below the local threshold: the neurologist answers
    result, items = checklist(measures)
    assert (items["aod"].answer, items["aod"].origin) == ("non", "saisie") and result.clear


def test_a_vka_is_not_a_contraindication_by_itself_the_inr_decides():
    result, items = checklist(Measures(anticoagulant="avk", inr=1.5))
    assert items["aod"].answer == "non" and items["hbpm"].answer == "non" and items["inr"].answer == "non"
    assert result.clear
    result, items = checklist(Measures(anticoagulant="avk", inr=2.4))
    assert result.blocking == ("inr",)
    result, items = checklist(
        Measures(anticoagulant="avk"), {k: v for k, v in all_no().items() if k != "inr"}
    )
    assert items["inr"].answer is None and "AVK" in items["inr"].detail and result.unanswered == ("inr",)


def test_no_anticoagulant_answers_the_drug_items_and_unfractionated_heparin_needs_the_aptt():
    _, items = checklist(Measures(anticoagulant="aucun"), {})
    assert [items[c].answer for c in ("aod", "hbpm", "heparine_tca")] == ["non", "non", "non"]
    result, items = checklist(Measures(anticoagulant="heparine"), {})
    assert items["heparine_tca"].answer is None and "heparine_tca" in result.unanswered
    _, items = checklist(Measures(anticoagulant="heparine"), {"heparine_tca": "oui"})
    assert (items["heparine_tca"].answer, items["heparine_tca"].origin) == ("oui", "saisie")
    result, items = checklist(Measures(anticoagulant="inconnu"), {})
    assert items["aod"].answer == "inconnu" and {"aod", "hbpm"} <= set(result.unanswered)


def test_relative_items_warn_without_blocking():
    result, _ = checklist(NORMAL, {**all_no(), "grossesse": "oui", "crise_inaugurale": "inconnu"})
    assert result.clear and result.warnings == ("grossesse",)
    result, _ = checklist(NORMAL, {**all_no(), "hemorragie_imagerie": "oui", "endocardite": "inconnu"})
    assert result.blocking == ("hemorragie_imagerie",) and result.unanswered == ("endocardite",)


def test_bad_answers_and_bad_measures_name_their_field():
    assert invalid(evaluate_checklist, {"zzz": "oui"}, NORMAL, NOW, RULES).field == "answers.zzz"
    assert invalid(evaluate_checklist, {"inr": "peut-être"}, NORMAL, NOW, RULES).field == "answers.inr"
    assert (
        invalid(evaluate_checklist, {}, Measures(anticoagulant="aspirine"), NOW, RULES).field
        == "anticoagulant"
    )
    assert invalid(evaluate_checklist, {}, Measures(platelets=150), NOW, RULES).field == "platelets"
    future = Measures(anticoagulant="aod_anti_xa", last_anticoagulant_at=NOW + timedelta(hours=1))
    assert invalid(evaluate_checklist, {}, future, NOW, RULES).field == "last_anticoagulant_at"
    with pytest.raises(ValueError):
        evaluate_checklist({}, NORMAL, NOW.replace(tzinfo=None), RULES)
    _, items = checklist(Measures(), {"inr": " OUI "})
    assert items["inr"].answer == "oui"


# --- doses -----------------------------------------------------------------------------------------------------


def test_alteplase_for_70_kg():
    dose = thrombolysis_dose("alteplase", 70, RULES)
    assert (dose.total_mg, dose.bolus_mg, dose.infusion_mg) == (63.0, 6.3, 56.7)
    assert dose.infusion_minutes == 60 and not dose.capped and dose.volume_ml == 63.0
    assert (
        dose.text == "Altéplase 63,0 mg : bolus 6,3 mg en 1 minute, puis 56,7 mg en perfusion sur 60 minutes"
    )


def test_alteplase_is_capped_at_90_mg():
    dose = thrombolysis_dose("alteplase", 100, RULES)
    assert (dose.total_mg, dose.bolus_mg, dose.infusion_mg, dose.capped) == (90.0, 9.0, 81.0, True)
    assert "dose maximale" in dose.text
    assert thrombolysis_dose("alteplase", 99.9, RULES).capped is False


def test_rounding_to_a_tenth_of_a_milligram_keeps_bolus_plus_infusion_equal_to_the_total():
    dose = thrombolysis_dose("alteplase", 67.3, RULES)  # 60.57 mg
    assert (dose.total_mg, dose.bolus_mg, dose.infusion_mg) == (60.6, 6.1, 54.5)
    for tenth in range(200, 3501, 7):
        dose = thrombolysis_dose("alteplase", tenth / 10, RULES)
        total = Decimal(str(dose.total_mg))
        assert Decimal(str(dose.bolus_mg)) + Decimal(str(dose.infusion_mg)) == total
        assert total == total.quantize(Decimal("0.1")) and dose.total_mg <= 90.0


def test_tenecteplase_single_bolus():
    dose = thrombolysis_dose("tenecteplase", 70, RULES)
    assert (dose.total_mg, dose.bolus_mg, dose.infusion_mg, dose.infusion_minutes) == (17.5, 17.5, 0.0, 0)
    assert dose.volume_ml == 3.5 and not dose.capped
    assert (
        dose.text
        == "Ténectéplase 17,5 mg : bolus IV unique en 5 à 10 secondes (3,50 mL de solution à 5 mg/mL)"
    )
    capped = thrombolysis_dose("tenecteplase", 120, RULES)
    assert (capped.total_mg, capped.volume_ml, capped.capped) == (25.0, 5.0, True)


def test_the_metalyse_smpc_weight_bands_are_available_for_comparison():
    assert [clinical.metalyse_smpc_band_mg(w) for w in (55, 59.9, 60, 70, 79.9, 85, 90, 130)] == [
        15.0,
        15.0,
        17.5,
        20.0,
        20.0,
        22.5,
        25.0,
        25.0,
    ]


def test_a_dose_needs_a_plausible_weight_and_a_known_agent():
    error = invalid(thrombolysis_dose, "alteplase", None, RULES)
    assert error.message == "Poids du patient requis pour calculer la dose." and error.field == "weight_kg"
    for weight in (19.9, 351, True, "70", float("nan")):
        assert invalid(thrombolysis_dose, "alteplase", weight, RULES).field == "weight_kg"
    assert thrombolysis_dose("tenecteplase", 20, RULES).total_mg == 5.0
    assert thrombolysis_dose("alteplase", 350, RULES).total_mg == 90.0
    assert invalid(thrombolysis_dose, "streptokinase", 70, RULES).field == "agent"


# --- settings --------------------------------------------------------------------------------------------------


def test_rules_come_from_the_settings_with_defaults_for_what_is_missing():
    rules = StrokeRules.from_settings(SimpleNamespace(stroke_max_inr=1.5, stroke_doac_hours=None))
    assert rules.max_inr == 1.5 and rules.doac_hours == 48 and rules == StrokeRules(max_inr=1.5)
    _, default = checklist(Measures(inr=1.6), {})
    _, local = checklist(Measures(inr=1.6), {}, rules)
    assert default["inr"].answer == "non"
    assert local["inr"].answer == "oui" and local["inr"].detail == "INR 1,6 > 1,5"


def test_every_setting_is_read_under_its_stroke_prefixed_name():
    values = {f"stroke_{name}": getattr(StrokeRules(), name) for name in StrokeRules.__dataclass_fields__}
    values["stroke_tenecteplase_max_mg"] = 20.0
    values["stroke_alteplase_infusion_minutes"] = 90
    rules = StrokeRules.from_settings(SimpleNamespace(**values))
    assert thrombolysis_dose("tenecteplase", 100, rules).total_mg == 20.0
    assert thrombolysis_dose("alteplase", 70, rules).infusion_minutes == 90


def test_nonsense_settings_fail_loudly():
    for bad in (
        {"max_inr": -1},
        {"alteplase_bolus_fraction": 1.5},
        {"glucose_min_mmol": 25.0},
        {"iv_window_minutes": 0},
    ):
        with pytest.raises(ValueError):
            StrokeRules(**bad)
    assert StrokeRules(doac_hours=0).doac_hours == 0  # a region may switch the delay rule off
