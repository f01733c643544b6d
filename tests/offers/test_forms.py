"""Forms as data: every shipped definition loads, and answers are validated field by field."""

from datetime import UTC, datetime

import pytest

from telesante.kit.errors import NotFound
from telesante.offers import forms

SHIPPED = {
    "question_generique",
    "trauma_cranien",
    "dermatologie",
    "plaie_ehpad",
    "troubles_comportement_ehpad",
    "soins_palliatifs",
}


def head_trauma_answers(**overrides):
    answers = {
        "injury_at": "2026-11-23T02:40",
        "mechanism": "chute_plain_pied",
        "loss_of_consciousness": "non",
        "amnesia": "oui",
        "gcs_eyes": "y4",
        "gcs_verbal": "v4",
        "gcs_motor": "m6",
        "neuro_signs": ["aucun"],
        "antithrombotic": "avk",
        "antithrombotic_drug": "Fluindione 20 mg",
        "last_dose_at": "2026-11-22T20:00",
        "inr": "2,8",
        "ct_result": "normal",
        "ct_at": "2026-11-23T03:30",
        "question": "Conduite à tenir ?",
    }
    answers.update(overrides)
    return answers


def test_every_shipped_form_loads_with_its_sources():
    codes = forms.form_codes()
    assert SHIPPED <= codes
    head = forms.latest_form("trauma_cranien")
    assert any("SFMU" in source for source in head.sources)
    assert [c.code for c in head.field("decision").choices] == [
        "transfert",
        "surveillance_24h",
        "reversion",
        "imagerie_si_gcs",
        "autre",
    ]
    with pytest.raises(NotFound):
        forms.get_form("trauma_cranien", 99)


def test_head_trauma_answers_are_typed_and_the_glasgow_total_computed():
    form = forms.latest_form("trauma_cranien")
    answers = forms.validate_answers(form.fields, head_trauma_answers(), attachment_types=["application/pdf"])
    assert answers["gcs_total"] == 4 + 4 + 6
    assert answers["inr"] == 2.8 and answers["loss_of_consciousness"] is False
    # Typed in French local time (winter: UTC+1), stored in UTC.
    assert datetime.fromisoformat(answers["injury_at"]) == datetime(2026, 11, 23, 1, 40, tzinfo=UTC)
    shown = dict(forms.display_answers(form.fields, answers))
    assert (
        shown["Score de Glasgow total"] == "14"
        and shown["Date et heure du traumatisme"] == "23/11/2026 02:40"
    )


def test_every_faulty_field_is_named_at_once():
    form = forms.latest_form("trauma_cranien")
    raw = head_trauma_answers(
        gcs_eyes="y9", inr="", vomiting="beaucoup", intrus="x", neuro_signs=["aucun", "anisocorie"]
    )
    with pytest.raises(forms.FormErrors) as caught:
        forms.validate_answers(form.fields, raw, attachment_types=[])
    errors = caught.value.errors
    assert set(errors) == {"gcs_eyes", "inr", "vomiting", "intrus", "neuro_signs", "ct_documents"}
    assert "Ouverture des yeux" in errors["gcs_eyes"] and "obligatoire" in errors["inr"]
    assert "nombre" in errors["vomiting"] and "au moins 1 fichier" in errors["ct_documents"]
    assert caught.value.extra["errors"][0]["field"] in errors


def test_conditional_requirements_follow_the_answers():
    form = forms.latest_form("trauma_cranien")
    no_drug = head_trauma_answers(antithrombotic="aucun", antithrombotic_drug="", last_dose_at="", inr="")
    no_drug.update(ct_result="non_realise", ct_at="")
    answers = forms.validate_answers(form.fields, no_drug, attachment_types=[])
    assert "inr" not in answers
    # A draft checks what is given, not what is missing.
    assert forms.validate_answers(form.fields, {"mechanism": "agression"}, complete=False) == {
        "mechanism": "agression"
    }
    decision = form.answer
    with pytest.raises(forms.FormErrors) as caught:
        forms.validate_answers(decision, {"decision": "transfert"})
    assert set(caught.value.errors) == {"transfer_delay"}


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("vomiting", "-1", "valeur minimale 0"),
        ("vomiting", "2.5", "entier"),
        ("inr", "NaN", "nombre"),
        ("injury_at", "hier", "date et heure"),
        ("injury_at", "0001-01-01T00:00", "date attendue entre 2000 et 2100"),  # was an OverflowError
        ("injury_at", "2207-01-01T08:00+01:00", "date attendue entre 2000 et 2100"),
        ("mechanism", "chute", "choix non prévu"),
        ("seizure", "peut-être", "oui ou non"),
    ],
)
def test_bad_values_get_a_french_reason(field, value, expected):
    form = forms.latest_form("trauma_cranien")
    with pytest.raises(forms.FormErrors) as caught:
        forms.validate_answers(
            form.fields, head_trauma_answers(**{field: value}), attachment_types=["image/png"]
        )
    assert expected in caught.value.errors[field]


def test_photos_must_be_images_for_dermatology():
    form = forms.latest_form("dermatologie")
    raw = {
        "location": "dos",
        "description": "lésion pigmentée",
        "duration": "mois",
        "question": "Exérèse ?",
    }
    with pytest.raises(forms.FormErrors) as caught:
        forms.validate_answers(form.fields, raw, attachment_types=["image/jpeg", "application/pdf"])
    assert "au moins 2" in caught.value.errors["photos"]
    assert (
        forms.validate_answers(form.fields, raw, attachment_types=["image/jpeg", "image/png"])["duration"]
        == "mois"
    )


def test_a_misspelt_key_in_a_definition_is_refused():
    from pydantic import ValidationError

    field = {
        "name": "a",
        "label": "A",
        "type": "choice",
        "choices": [{"code": "x", "label": "Réalisé", "sans lésion": None}],
    }
    with pytest.raises(ValidationError):
        forms.FormDefinition.model_validate(
            {"code": "c", "version": 1, "title": "T", "sections": [{"title": "S", "fields": [field]}]}
        )
