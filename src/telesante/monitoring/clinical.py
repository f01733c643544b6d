"""What a remote-monitoring reading is, as pure functions: no database, no I/O, no clock.

- The measurements the shipped programmes follow (heart failure, diabetes, chronic respiratory failure), each known
  by its LOINC codes, stored in one UCUM unit, accepting the units devices really send (lb, mmol/L, g/L, kPa…)
  converted on arrival.
- What is refused, with a French message naming the entry and why: an unknown code, a missing unit, a unit that
  cannot be converted, a value no living patient can have (weight 0 or 700 kg, SpO₂ 140 %), a reading dated in the
  future or too long ago.

The plausibility limits are not clinical thresholds: they only reject what cannot be a measurement of a patient
(sources and reasons in ``docs/domains/monitoring.md``). Alert thresholds belong to the programmes.
Callers pass ``now`` (``kit.clock.now()``); datetimes must be timezone-aware.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from telesante.kit.errors import InvalidInput

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# Télésanté's own codes, for what LOINC has no code we are sure of: the hours of home ventilation a day and the
# symptom questions of the programmes' questionnaires (docs/domains/monitoring.md, "Codes").
LOCAL = "urn:telesante:telesurveillance"
SYSTEMS = (LOINC, LOCAL)
ANSWER_UNIT = "{answer}"  # a yes/no answer is stored as 1 (yes) or 0 (no)

GLUCOSE_MOLAR_MASS = 180.156  # g/mol: 1 mmol/L = 18.0156 mg/dL
POUND_KG = 0.45359237  # international avoirdupois pound (exact)
KPA_MMHG = 7.500617  # 1 kPa in mm Hg


class ReadingRefused(InvalidInput):
    """A reading that cannot be stored as sent (HTTP 422; an OperationOutcome entry in a FHIR batch)."""

    code = "mesure-invalide"
    title = "Mesure refusée"


def _factor(factor: float) -> Callable[[float], float]:
    return lambda value: value * factor


_SAME = _factor(1.0)


@dataclass(frozen=True)
class Measure:
    """A measurement a programme can follow: stored in ``unit`` (UCUM), accepted in ``units`` (UCUM → converter)."""

    key: str
    label: str
    codes: tuple[str, ...]  # in ``system``; the first is the code stored and sent back
    unit: str
    unit_label: str  # the stored unit as people read it
    units: dict[str, Callable[[float], float]] = field(repr=False)
    low: float  # plausible for a living patient, inclusive; outside: refused
    high: float
    decimals: int = 1
    system: str = LOINC
    question: str = ""  # a yes/no question of a questionnaire (the patient's words); empty: a measurement

    @property
    def code(self) -> str:
        return self.codes[0]

    @property
    def is_answer(self) -> bool:
        return bool(self.question)


def _symptom(key: str, label: str, code: str, question: str) -> Measure:
    return Measure(
        key, label, (code,), ANSWER_UNIT, "", {}, low=0, high=1, decimals=0, system=LOCAL, question=question
    )


MEASURES: tuple[Measure, ...] = (
    Measure(
        "weight",
        "Poids",
        ("29463-7", "3141-9"),  # Body weight; Body weight Measured
        "kg",
        "kg",
        {"kg": _SAME, "g": _factor(0.001), "[lb_av]": _factor(POUND_KG)},
        low=1.0,
        high=400.0,
    ),
    Measure(
        "systolic",
        "Pression artérielle systolique",
        ("8480-6",),
        "mm[Hg]",
        "mmHg",
        {"mm[Hg]": _SAME, "kPa": _factor(KPA_MMHG)},
        low=40,
        high=300,
        decimals=0,
    ),
    Measure(
        "diastolic",
        "Pression artérielle diastolique",
        ("8462-4",),
        "mm[Hg]",
        "mmHg",
        {"mm[Hg]": _SAME, "kPa": _factor(KPA_MMHG)},
        low=20,
        high=200,
        decimals=0,
    ),
    Measure(
        "heart_rate",
        "Fréquence cardiaque",
        ("8867-4",),
        "/min",
        "battements/min",
        {"/min": _SAME, "{beats}/min": _SAME},
        low=20,
        high=300,
        decimals=0,
    ),
    Measure(
        "spo2",
        "Saturation en oxygène (SpO₂)",
        ("59408-5", "2708-6"),  # by pulse oximetry; in arterial blood
        "%",
        "%",
        {"%": _SAME},
        low=50,
        high=100,
        decimals=0,
    ),
    Measure(
        "glucose",
        "Glycémie",
        # capillary (glucometer) mg/dL; blood mass and molar; serum/plasma mass and molar; capillary molar
        ("41653-7", "2339-0", "15074-8", "2345-7", "14749-6", "14743-9"),
        "mg/dL",
        "mg/dL",
        {
            "mg/dL": _SAME,
            "g/L": _factor(100.0),
            "mmol/L": _factor(GLUCOSE_MOLAR_MASS / 10),
        },
        low=10,
        high=1500,
        decimals=0,
    ),
    Measure(
        "temperature",
        "Température",
        ("8310-5",),
        "Cel",
        "°C",
        {"Cel": _SAME, "[degF]": lambda value: (value - 32) * 5 / 9},
        low=25,
        high=45,
    ),
    Measure(
        "respiratory_rate",
        "Fréquence respiratoire",
        ("9279-1",),
        "/min",
        "cycles/min",
        {"/min": _SAME, "{breaths}/min": _SAME},
        low=2,
        high=80,
        decimals=0,
    ),
    Measure(
        "ventilation_hours",
        "Durée de ventilation sur 24 h",
        ("ventilation-heures",),  # the ventilator's daily usage report (hours of use over the last 24 h)
        "h",
        "h",
        {"h": _SAME, "min": _factor(1 / 60)},
        low=0,
        high=24,
        system=LOCAL,
    ),
    # The questionnaires' symptoms (yes = worse than usual). Heart failure: ESC 2021 and HFA self-care signs of
    # congestion; chronic respiratory failure: Anthonisen's criteria of an exacerbation (dyspnoea, sputum volume,
    # sputum purulence); diabetes: a hypoglycaemic episode felt by the patient.
    _symptom(
        "dyspnoea",
        "Essoufflement inhabituel",
        "symptome-dyspnee",
        "Êtes-vous plus essoufflé(e) que d'habitude ?",
    ),
    _symptom(
        "orthopnoea",
        "Essoufflement allongé ou nocturne",
        "symptome-orthopnee",
        "Avez-vous dû dormir plus redressé(e), ou vous êtes-vous réveillé(e) essoufflé(e) la nuit ?",
    ),
    _symptom(
        "oedema",
        "Œdèmes en augmentation",
        "symptome-oedemes",
        "Vos chevilles ou vos jambes sont-elles plus gonflées que d'habitude ?",
    ),
    _symptom(
        "fatigue",
        "Fatigue inhabituelle",
        "symptome-fatigue",
        "Êtes-vous plus fatigué(e) que d'habitude ?",
    ),
    _symptom(
        "sputum_volume",
        "Crachats plus abondants",
        "symptome-crachats-volume",
        "Crachez-vous plus que d'habitude ?",
    ),
    _symptom(
        "sputum_purulence",
        "Crachats purulents",
        "symptome-crachats-couleur",
        "Vos crachats ont-ils changé de couleur (jaunes, verts) ?",
    ),
    _symptom(
        "hypoglycaemia_episode",
        "Malaise évoquant une hypoglycémie",
        "symptome-malaise-hypoglycemie",
        "Avez-vous eu un malaise (sueurs, tremblements, faim soudaine) depuis votre dernière saisie ?",
    ),
)

BY_KEY = {measure.key: measure for measure in MEASURES}
BY_CODE = {(measure.system, code): measure for measure in MEASURES for code in measure.codes}
BY_LOINC = {code: measure for (system, code), measure in BY_CODE.items() if system == LOINC}
BLOOD_PRESSURE_PANEL = "85354-9"  # components: systolic 8480-6, diastolic 8462-4

# A device may sync a backlog (a scale that was offline): older than this, a reading is refused as a probable clock or
# entry error. A reading slightly ahead of the server's clock is tolerated (devices' clocks drift).
MAX_READING_AGE = timedelta(days=365)
FUTURE_TOLERANCE = timedelta(minutes=5)


def _number(value: float) -> str:
    return f"{value:g}".replace(".", ",")


_YES = {"oui", "yes", "true", "1", "o", "y"}
_NO = {"non", "no", "false", "0", "n"}


def answer_value(value: object) -> float | None:
    """A yes/no answer as stored (1.0 / 0.0); None when it is neither."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in _YES:
        return 1.0
    if text in _NO:
        return 0.0
    return None


def find_measure(code: str, system: str = LOINC) -> Measure:
    """The measure a code stands for; ReadingRefused (field ``code``) when the system or the code is unknown."""
    if system not in SYSTEMS:
        raise ReadingRefused(
            f"Système de codes « {system} » non pris en charge : LOINC attendu ({LOINC}), ou {LOCAL} pour la "
            "ventilation et les questionnaires.",
            field="code",
        )
    measure = BY_CODE.get((system, (code or "").strip()))
    if measure is None:
        if system == LOINC:
            known = ", ".join(f"{m.code} ({m.label.lower()})" for m in MEASURES if m.system == LOINC)
            raise ReadingRefused(f"Code LOINC « {code} » inconnu : mesures suivies {known}.", field="code")
        known = ", ".join(m.code for m in MEASURES if m.system == LOCAL)
        raise ReadingRefused(f"Code « {code} » inconnu dans {LOCAL} : codes connus {known}.", field="code")
    return measure


def normalise(
    code: str, value: float | int | str | bool, unit: str | None, *, system: str = LOINC
) -> tuple[Measure, float]:
    """The measure a reading is, and its value in the measure's unit; ReadingRefused (field named) otherwise.
    A questionnaire's answer (yes/no) needs no unit and is stored as 1 or 0."""
    measure = find_measure(code, system)
    if measure.is_answer:
        answer = answer_value(value)
        if answer is None:
            raise ReadingRefused(
                f"Réponse « {value} » pour « {measure.label.lower()} » : oui ou non attendu.", field="value"
            )
        return measure, answer
    if isinstance(value, bool):
        raise ReadingRefused(f"Valeur oui/non pour {measure.label.lower()} : nombre attendu.", field="value")
    if not unit or not unit.strip():
        raise ReadingRefused(
            f"Unité absente pour {measure.label.lower()} : unité UCUM attendue ({measure.unit}).",
            field="unit",
        )
    convert = measure.units.get(unit.strip())
    if convert is None:
        accepted = ", ".join(measure.units)
        raise ReadingRefused(
            f"Unité « {unit} » non convertible pour {measure.label.lower()} : unités acceptées {accepted}.",
            field="unit",
        )
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReadingRefused(
            f"Valeur « {value} » non numérique pour {measure.label.lower()}.", field="value"
        ) from None
    if not math.isfinite(number):
        raise ReadingRefused(f"Valeur non numérique pour {measure.label.lower()}.", field="value")
    converted = round(convert(number), measure.decimals)
    if not measure.low <= converted <= measure.high:
        raise ReadingRefused(
            f"Valeur impossible pour {measure.label.lower()} : {_number(converted)} {measure.unit_label} (attendu "
            f"entre {_number(measure.low)} et {_number(measure.high)} {measure.unit_label}).",
            field="value",
        )
    return measure, converted


def check_reading_time(effective_at: datetime, now: datetime) -> datetime:
    """The reading's date, or ReadingRefused if it lies in the future or too far back."""
    if effective_at.tzinfo is None:
        raise ReadingRefused(
            "Date de la mesure sans fuseau horaire (heure UTC ou décalage attendu).", field="effective"
        )
    if effective_at > now + FUTURE_TOLERANCE:
        raise ReadingRefused(
            "Mesure datée dans le futur : vérifiez l'horloge de l'appareil.", field="effective"
        )
    if effective_at < now - MAX_READING_AGE:
        raise ReadingRefused(
            f"Mesure datée de plus de {MAX_READING_AGE.days} jours : probable erreur de date.",
            field="effective",
        )
    return effective_at
