"""The measures' input: a glycaemia in g/L or mmol/L becomes the mmol/L that is stored and compared with the
thresholds (1 g/L = 1000 / 180.16 mmol/L, to 0.1), one way of giving it at a time, bad input named in French."""

from __future__ import annotations

import pytest

from telesante.kit.errors import InvalidInput
from telesante.kit.schemas import parse_input
from telesante.stroke import service
from telesante.stroke.schemas import MeasuresUpdate
from tests.stroke.test_service import alert


@pytest.mark.parametrize(
    ("given", "mmol"),
    [
        ({"glucose": "1.2", "glucose_unit": "g/L"}, 6.7),  # 6.661
        ({"glucose": 1.0, "glucose_unit": "g/L"}, 5.6),  # 5.551
        ({"glucose": 0.5, "glucose_unit": "g/L"}, 2.8),  # 2.7755: the hypoglycaemia threshold
        ({"glucose": 4.0, "glucose_unit": "g/L"}, 22.2),  # 22.204: the hyperglycaemia threshold
        ({"glucose": 6.44, "glucose_unit": "mmol/L"}, 6.44),  # in mmol/L: as typed
        ({"glucose": 6.44}, 6.44),  # mmol/L by default
        ({"glucose_mmol": 6.44}, 6.44),
    ],
)
def test_the_glycaemia_is_kept_in_mmol_per_litre(given, mmol):
    measures = parse_input(MeasuresUpdate, given)
    assert measures.glucose_mmol == mmol
    # only what the case stores reaches the service (which writes every field it is given)
    assert measures.model_dump(exclude_unset=True) == {"glucose_mmol": mmol}


@pytest.mark.parametrize(
    ("given", "field", "message"),
    [
        ({"glucose": "six"}, "glucose", "doit être un nombre"),
        (
            {"glucose": 0.05, "glucose_unit": "g/L"},
            "glucose",
            "entre 0,5 et 60 mmol/L (environ 0,09 à 10,81 g/L)",
        ),
        ({"glucose": 11, "glucose_unit": "g/L"}, "glucose", "entre 0,5 et 60 mmol/L"),
        ({"glucose": 61}, "glucose", "entre 0,5 et 60 mmol/L"),
        ({"glucose_mmol": 61}, "glucose_mmol", "inférieur ou égal à 60"),
        ({"glucose": 1, "glucose_unit": "mg/dL"}, "glucose_unit", "valeur inconnue"),
        ({"glucose": 6.4, "glucose_mmol": 6.4}, "glucose", "pas les deux"),
        # a unit beside glucose_mmol would be read wrongly: 1.2 g/L stored as 1.2 mmol/L
        ({"glucose_mmol": 1.2, "glucose_unit": "g/L"}, "glucose_unit", "glucose_mmol est toujours en mmol/L"),
    ],
)
def test_a_bad_glycaemia_is_named(given, field, message):
    with pytest.raises(InvalidInput) as error:
        parse_input(MeasuresUpdate, given)
    assert error.value.field == field and message in error.value.message, error.value.message


async def test_the_service_stores_a_glycaemia_given_in_g_per_litre_in_mmol(
    session, settings, network, patient
):
    case = await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))
    measures = parse_input(MeasuresUpdate, {"glucose": "1.2", "glucose_unit": "g/L"})
    updated = await service.record_measures(session, network.emergency.principal, case.id, measures)
    assert updated.glucose_mmol == 6.7
