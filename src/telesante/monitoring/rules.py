"""Alert rules of remote monitoring as data, and their evaluation as a pure function of readings.

A rule is one of:
- :class:`Threshold`: the latest reading of a measure beyond a limit;
- :class:`Trend`: a measure that rose (or fell) by at least an amount within a number of days, e.g. heart failure's
  weight gain of 2 kg in 3 days;
- :class:`Missing`: no reading of a measure for a number of days.

Each finding carries a severity of the OpenTele triage tradition (red, orange; blue for missing data; a patient
without any finding is green), a French message and the readings that caused it. Programmes ship default rules
(:data:`PROGRAMMES`), which a patient's enrolment may override. A rule set is versioned, and ``evaluate`` can be
run on past readings to test a change. Sources and reasons: ``docs/domains/monitoring.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Literal

from telesante.kit.errors import InvalidInput
from telesante.monitoring.clinical import BY_KEY

Severity = Literal["red", "orange", "blue"]
SEVERITY_ORDER: dict[str, int] = {"red": 0, "orange": 1, "blue": 2, "green": 3}
SEVERITY_LABELS = {"red": "Rouge", "orange": "Orange", "blue": "Bleu (données manquantes)", "green": "Vert"}


@dataclass(frozen=True)
class Reading:
    measure: str  # a key of clinical.MEASURES
    value: float  # in the measure's stored unit
    at: datetime
    id: object = None  # the stored observation, to link a finding to what caused it


@dataclass(frozen=True)
class Threshold:
    code: str
    measure: str
    severity: Severity
    above: float | None = None  # alert when the latest value is strictly above
    below: float | None = None  # alert when the latest value is strictly below


@dataclass(frozen=True)
class Trend:
    code: str
    measure: str
    severity: Severity
    change: float  # at least this much (positive: a rise; negative: a fall)
    days: int  # between the latest reading and an earlier one at most this many days before


@dataclass(frozen=True)
class Missing:
    code: str
    measure: str
    days: int
    severity: Severity = "blue"


Rule = Threshold | Trend | Missing


KINDS: dict[str, type] = {"threshold": Threshold, "trend": Trend, "missing": Missing}
# What a programme's team, or an enrolment, may change in a rule (the measure and the kind stay).
TUNABLE = {Threshold: ("above", "below"), Trend: ("change", "days"), Missing: ("days",)}
PARAMETER_LABELS = {
    "above": "alerte au-dessus de",
    "below": "alerte en dessous de",
    "change": "variation",
    "days": "jours",
}


def rule_to_data(rule: Rule) -> dict:
    """A rule as stored with its programme (JSON)."""
    kind = next(name for name, cls in KINDS.items() if isinstance(rule, cls))
    return {"kind": kind, **asdict(rule)}


def rule_from_data(data: Mapping) -> Rule:
    cls = KINDS[data["kind"]]
    return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def with_overrides(rules: Sequence[Rule], overrides: Mapping[str, Mapping[str, object]]) -> tuple[Rule, ...]:
    """The rules with a patient's parameters in place of the programme's; InvalidInput names the rule and the
    parameter that cannot be used."""
    by_code = {rule.code: rule for rule in rules}
    for code in overrides:
        if code not in by_code:
            raise InvalidInput(f"Règle « {code} » absente du programme.", field="overrides")
    tuned = []
    for rule in rules:
        params = dict(overrides.get(rule.code) or {})
        for name, value in params.items():
            if name not in TUNABLE[type(rule)]:
                raise InvalidInput(
                    f"Paramètre « {name} » non modifiable pour la règle « {rule.code} » "
                    f"(modifiables : {', '.join(TUNABLE[type(rule)])}).",
                    field="overrides",
                )
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise InvalidInput(
                    f"Règle « {rule.code} » : {PARAMETER_LABELS[name]} doit être un nombre.",
                    field="overrides",
                )
            if name == "days" and (value is None or value != int(value) or not 1 <= value <= 90):
                raise InvalidInput(
                    f"Règle « {rule.code} » : nombre de jours entre 1 et 90 attendu.", field="overrides"
                )
            if name == "change" and (value is None or value == 0 or (value > 0) != (rule.change > 0)):
                raise InvalidInput(
                    f"Règle « {rule.code} » : la variation garde son sens "
                    f"({'hausse' if rule.change > 0 else 'baisse'}) et n'est pas nulle.",
                    field="overrides",
                )
            if name in ("above", "below") and value is not None:
                measure = BY_KEY[rule.measure]
                if not measure.low <= value <= measure.high:
                    raise InvalidInput(
                        f"Règle « {rule.code} » : seuil {value} hors des valeurs possibles de "
                        f"{measure.label.lower()} ({measure.low:g}–{measure.high:g} {measure.unit_label}).",
                        field="overrides",
                    )
        if "days" in params:
            params["days"] = int(params["days"])
        candidate = replace(rule, **params) if params else rule
        if isinstance(candidate, Threshold) and candidate.above is None and candidate.below is None:
            raise InvalidInput(f"Règle « {rule.code} » : un seuil au moins est attendu.", field="overrides")
        tuned.append(candidate)
    return tuple(tuned)


def lookback_days(rules: Sequence[Rule]) -> int:
    """How many days of readings before the latest the rules need (trends; a threshold needs the latest only)."""
    return max((rule.days for rule in rules if isinstance(rule, Trend)), default=0)


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    readings: tuple[Reading, ...]


def _number(value: float) -> str:
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return text.replace(".", ",")


def _unit(measure: str) -> str:
    return BY_KEY[measure].unit_label


def _threshold(rule: Threshold, latest: Reading) -> Finding | None:
    label = BY_KEY[rule.measure].label
    if rule.above is not None and latest.value > rule.above:
        limit, word = rule.above, "au-dessus de"
    elif rule.below is not None and latest.value < rule.below:
        limit, word = rule.below, "en dessous de"
    else:
        return None
    unit = _unit(rule.measure)
    return Finding(
        rule.code,
        rule.severity,
        f"{label} {_number(latest.value)} {unit}, {word} {_number(limit)} {unit}.",
        (latest,),
    )


def _trend(rule: Trend, series: Sequence[Reading]) -> Finding | None:
    """The latest reading against the lowest (a rise) or highest (a fall) one of the ``days`` before it."""
    latest = series[-1]
    window = [r for r in series[:-1] if latest.at - timedelta(days=rule.days) <= r.at < latest.at]
    if not window:
        return None
    if rule.change > 0:
        base = min(window, key=lambda r: (r.value, r.at))
        moved = round(latest.value - base.value, 6)  # stored values are rounded: compare without float noise
        if moved < rule.change:
            return None
        word = "prise"
    else:
        base = max(window, key=lambda r: (r.value, -r.at.timestamp()))
        moved = round(base.value - latest.value, 6)
        if moved < -rule.change:
            return None
        word = "perte"
    label = BY_KEY[rule.measure].label
    days = (latest.at - base.at).total_seconds() / 86400
    span = f"{_number(days)} jour{'s' if days >= 2 else ''}" if days >= 1 else "moins d'un jour"
    return Finding(
        rule.code,
        rule.severity,
        f"{label} : {word} de {_number(moved)} {_unit(rule.measure)} en {span} "
        f"({_number(base.value)} → {_number(latest.value)} {_unit(rule.measure)}).",
        (base, latest),
    )


def evaluate(
    rules: Sequence[Rule], readings: Iterable[Reading], now: datetime, since: datetime
) -> list[Finding]:
    """The findings of ``rules`` on ``readings`` at ``now``; ``since``: when the monitoring started (data are not
    missing before it). The most severe first."""
    series: dict[str, list[Reading]] = {}
    for reading in sorted(readings, key=lambda r: r.at):
        if reading.at <= now:
            series.setdefault(reading.measure, []).append(reading)
    found: list[Finding] = []
    for rule in rules:
        measured = series.get(rule.measure, [])
        if isinstance(rule, Missing):
            last = measured[-1].at if measured else since
            if now - last >= timedelta(days=rule.days):
                label = BY_KEY[rule.measure].label.lower()
                when = (
                    "depuis le début du suivi"
                    if not measured
                    else f"depuis {_number((now - last).days)} jours"
                )
                found.append(Finding(rule.code, rule.severity, f"Aucune mesure de {label} {when}.", ()))
            continue
        if not measured:
            continue
        outcome = _threshold(rule, measured[-1]) if isinstance(rule, Threshold) else _trend(rule, measured)
        if outcome is not None:
            found.append(outcome)
    found.sort(key=lambda finding: SEVERITY_ORDER[finding.severity])
    # One reading beyond two limits of the same side (glucose 50: below 54 and below 70) is one finding, the worst.
    thresholds = {rule.code: rule for rule in rules if isinstance(rule, Threshold)}
    kept, sides = [], set()
    for finding in found:
        rule = thresholds.get(finding.rule)
        if rule is not None:
            side = (rule.measure, rule.above is not None and finding.readings[0].value > rule.above)
            if side in sides:
                continue
            sides.add(side)
        kept.append(finding)
    return kept


def triage_colour(findings: Sequence[Finding]) -> str:
    """A patient's colour in the triage worklist: the most severe finding, green without any."""
    return min((f.severity for f in findings), key=SEVERITY_ORDER.__getitem__, default="green")


# --- programmes shipped (defaults; each enrolment may override a threshold) -------------------------------------


@dataclass(frozen=True)
class Programme:
    code: str
    title: str
    version: int
    measures: tuple[tuple[str, str], ...]  # (measure key, expected frequency, in French)
    rules: tuple[Rule, ...]
    education: tuple[str, ...] = ()  # the therapeutic education sessions planned, in order


PROGRAMMES: dict[str, Programme] = {
    programme.code: programme
    for programme in (
        Programme(
            "insuffisance_cardiaque",
            "Insuffisance cardiaque",
            1,
            (
                ("weight", "chaque jour"),
                ("systolic", "chaque jour"),
                ("diastolic", "chaque jour"),
                ("heart_rate", "chaque jour"),
            ),
            (
                # ESC 2021 heart-failure guidelines (self-care): a gain of more than 2 kg in 3 days is a sign of
                # congestion; the slower gain of a week is kept as the programme asks.
                Trend("ic_poids_3j", "weight", "red", change=2.0, days=3),
                Trend("ic_poids_7j", "weight", "orange", change=3.0, days=7),
                # ESC 2021: symptomatic hypotension, systolic below 90 mm Hg.
                Threshold("ic_pas_basse", "systolic", "orange", below=90),
                Missing("ic_poids_absent", "weight", days=3),
            ),
            # HAS, parcours de soins insuffisance cardiaque (2014) and ESC 2021 self-care: education topics.
            (
                "Comprendre l'insuffisance cardiaque et ses signes d'alerte",
                "Pesée quotidienne et conduite à tenir en cas de prise de poids",
                "Alimentation pauvre en sel et apports hydriques",
                "Traitement : rôle de chaque médicament, observance, automédication à éviter",
                "Activité physique adaptée",
            ),
        ),
        Programme(
            "diabete",
            "Diabète",
            1,
            (("glucose", "selon le schéma d'autosurveillance"),),
            (
                # International consensus on time in range (Battelino 2019; ADA Standards of Care):
                # level 2 hypoglycaemia < 54 mg/dL, level 1 < 70 mg/dL, level 2 hyperglycaemia > 250 mg/dL.
                Threshold("dt_hypo_2", "glucose", "red", below=54),
                Threshold("dt_hypo_1", "glucose", "orange", below=70),
                Threshold("dt_hyper_2", "glucose", "orange", above=250),
                Missing("dt_glycemie_absente", "glucose", days=3),
            ),
            (
                "Autosurveillance glycémique : technique et horaires",
                "Reconnaître et traiter une hypoglycémie",
                "Adapter les doses d'insuline",
                "Alimentation et activité physique",
            ),
        ),
        Programme(
            "insuffisance_respiratoire",
            "Insuffisance respiratoire chronique",
            1,
            (("spo2", "chaque jour"), ("heart_rate", "chaque jour")),
            (
                # GOLD 2024: oxygen therapy titrated to SpO₂ 88–92 % in chronic hypercapnic patients.
                Threshold("ir_spo2_basse", "spo2", "orange", below=88),
                Missing("ir_spo2_absente", "spo2", days=3),
            ),
            (
                "Oxygénothérapie et ventilation : utilisation et entretien",
                "Reconnaître une exacerbation et conduite à tenir",
                "Activité physique et réhabilitation respiratoire",
                "Arrêt du tabac",
            ),
        ),
    )
}
