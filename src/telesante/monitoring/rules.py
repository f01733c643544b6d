"""Alert rules of remote monitoring as data, and their evaluation as a pure function of readings.

A rule is one of:
- :class:`Threshold`: the latest reading of a measure beyond a limit;
- :class:`Trend`: a measure that rose (or fell) by at least an amount within a number of days, e.g. heart failure's
  weight gain of 2 kg in 3 days;
- :class:`Missing`: no reading of a measure for a number of days;
- :class:`Combination`: at least N of some other rules firing at once (e.g. two of Anthonisen's three signs of a
  COPD exacerbation). A rule of severity ``condition`` raises no alert alone: it only counts in combinations.

A threshold on a questionnaire's answer (``clinical.Measure.is_answer``, stored 1 for yes) fires on a "yes".

Each finding carries a severity of the OpenTele triage tradition (red, orange; blue for missing data; a patient
without any finding is green), a French message and the readings that caused it. Programmes ship default rules
(:data:`PROGRAMMES`), which a patient's enrolment may override. A rule set is versioned, and ``evaluate`` can be
run on past readings to test a change. Sources and reasons: ``docs/domains/monitoring.md``.
"""

from __future__ import annotations

import contextlib
import math
import operator
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from telesante.kit.errors import InvalidInput
from telesante.monitoring.clinical import BY_KEY

Severity = Literal["red", "orange", "blue", "condition"]
SEVERITY_ORDER: dict[str, int] = {"red": 0, "orange": 1, "blue": 2, "green": 3, "condition": 4}
SEVERITY_LABELS = {
    "red": "Rouge",
    "orange": "Orange",
    "blue": "Bleu (données manquantes)",
    "green": "Vert",
    "condition": "Sans alerte seule (compte dans une combinaison)",
}


class Reading(NamedTuple):
    """A stored reading, as the rules see it (a tuple: a device batch makes thousands, a frozen dataclass costs five
    times as much to build)."""

    measure: str  # a key of clinical.MEASURES
    value: float  # in the measure's stored unit
    at: datetime
    id: object = None  # the stored observation, to link a finding to what caused it (text: ``reading_id``)


# sort keys, in C (a window of a week's readings per patient at every judging)
_TIME = operator.attrgetter("at")
_VALUE_THEN_TIME = operator.attrgetter("value", "at")


def reading_id(value: object) -> str:
    """A reading's id as text in its canonical form (``str(uuid)``), whether the store gave a UUID (PostgreSQL) or
    its 32 hex digits (SQLite: converted only for the readings a finding names, not for a whole window); any other
    id (a replay's made-up readings) as it is."""
    if isinstance(value, str) and len(value) == 32:
        with contextlib.suppress(ValueError):
            return str(uuid.UUID(hex=value))
    return str(value)


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


@dataclass(frozen=True)
class Combination:
    code: str
    severity: Severity
    of: tuple[str, ...]  # the codes of other rules of the set (thresholds or trends)
    at_least: int  # how many of them must fire at the same time
    label: str  # what the combination means, e.g. "Exacerbation probable (critères d'Anthonisen)"
    days: int = 2  # a part counts while the reading that fired it is at most this many days old
    measure: str = ""  # a combination spans several measures


Rule = Threshold | Trend | Missing | Combination


KINDS: dict[str, type] = {
    "threshold": Threshold,
    "trend": Trend,
    "missing": Missing,
    "combination": Combination,
}
KIND_LABELS = {
    "threshold": "Seuil",
    "trend": "Tendance",
    "missing": "Données manquantes",
    "combination": "Combinaison",
}
# What a programme's team, or an enrolment, may change in a rule (the measure and the kind stay).
TUNABLE = {
    Threshold: ("above", "below"),
    Trend: ("change", "days"),
    Missing: ("days",),
    Combination: ("at_least", "days"),
}
PARAMETER_LABELS = {
    "above": "alerte au-dessus de",
    "below": "alerte en dessous de",
    "change": "variation",
    "days": "jours",
    "at_least": "nombre de conditions",
}


def _finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def rule_to_data(rule: Rule) -> dict:
    """A rule as stored with its programme (JSON)."""
    kind = next(name for name, cls in KINDS.items() if isinstance(rule, cls))
    data = {"kind": kind, **asdict(rule)}
    if isinstance(rule, Combination):
        data["of"] = list(rule.of)
        data.pop("measure")
    return data


def rule_from_data(data: Mapping) -> Rule:
    cls = KINDS[data["kind"]]
    values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
    if cls is Combination:
        values["of"] = tuple(values["of"])
    return cls(**values)


def tunable(rule: Rule) -> tuple[str, ...]:
    """The parameters of this rule that a team or an enrolment may change (none for a symptom's "yes")."""
    if isinstance(rule, Threshold) and BY_KEY[rule.measure].is_answer:
        return ()
    return TUNABLE[type(rule)]


def measures_of(rule: Rule, by_code: Mapping[str, Rule]) -> set[str]:
    """The measures a rule looks at (a combination: those of its rules)."""
    if isinstance(rule, Combination):
        return {by_code[code].measure for code in rule.of if code in by_code}
    return {rule.measure}


def describe(rule: Rule) -> str:
    """The rule in one French sentence, for the programme's page."""
    if isinstance(rule, Combination):
        return f"{rule.label} : au moins {rule.at_least} parmi {', '.join(rule.of)}"
    measure = BY_KEY[rule.measure]
    unit = f" {measure.unit_label}" if measure.unit_label else ""
    if isinstance(rule, Threshold):
        if measure.is_answer:
            return f"{measure.label} : réponse « oui »"
        parts = []
        if rule.above is not None:
            parts.append(f"au-dessus de {_number(rule.above)}{unit}")
        if rule.below is not None:
            parts.append(f"en dessous de {_number(rule.below)}{unit}")
        return f"{measure.label} {' ou '.join(parts)}"
    if isinstance(rule, Trend):
        word = "hausse" if rule.change > 0 else "baisse"
        return f"{measure.label} : {word} d'au moins {_number(abs(rule.change))}{unit} en {rule.days} jours"
    what = "réponse" if measure.is_answer else "mesure"
    return f"{measure.label} : aucune {what} depuis {rule.days} jours"


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
            if name not in tunable(rule):
                raise InvalidInput(
                    f"Paramètre « {name} » non modifiable pour la règle « {rule.code} » "
                    f"(modifiables : {', '.join(tunable(rule)) or 'aucun'}).",
                    field="overrides",
                )
            if value is not None and not _finite_number(value):
                raise InvalidInput(
                    f"Règle « {rule.code} » : {PARAMETER_LABELS[name]} doit être un nombre.",
                    field="overrides",
                )
            if name == "days" and (value is None or value != int(value) or not 1 <= value <= 90):
                raise InvalidInput(
                    f"Règle « {rule.code} » : nombre de jours entre 1 et 90 attendu.", field="overrides"
                )
            if name == "at_least" and (
                value is None or value != int(value) or not 1 <= value <= len(rule.of)
            ):
                raise InvalidInput(
                    f"Règle « {rule.code} » : nombre de conditions entre 1 et {len(rule.of)} attendu.",
                    field="overrides",
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
        for name in ("days", "at_least"):
            if name in params:
                params[name] = int(params[name])
        candidate = replace(rule, **params) if params else rule
        if isinstance(candidate, Threshold) and candidate.above is None and candidate.below is None:
            raise InvalidInput(f"Règle « {rule.code} » : un seuil au moins est attendu.", field="overrides")
        tuned.append(candidate)
    return tuple(tuned)


def check_rule_set(rules: Sequence[Rule]) -> None:
    """A rule set a team may publish: unique codes, known measures, thresholds within what a patient can have,
    combinations of other threshold or trend rules of the set. InvalidInput names the rule otherwise."""
    codes = [rule.code for rule in rules]
    if not rules:
        raise InvalidInput("Un programme a au moins une règle.", field="rules")
    for rule in rules:
        for name in ("above", "below", "change", "days", "at_least"):
            value = getattr(rule, name, None)
            if value is not None and not _finite_number(value):
                raise InvalidInput(
                    f"Règle « {rule.code} » : {PARAMETER_LABELS[name]} doit être un nombre.", field="rules"
                )
        if codes.count(rule.code) > 1:
            raise InvalidInput(f"Code de règle « {rule.code} » en double.", field="rules")
        if rule.severity not in SEVERITY_ORDER or rule.severity == "green":
            raise InvalidInput(
                f"Règle « {rule.code} » : sévérité « {rule.severity} » inconnue.", field="rules"
            )
        if isinstance(rule, Combination):
            targets = {r.code: r for r in rules}
            for code in rule.of:
                target = targets.get(code)
                if target is None or not isinstance(target, Threshold | Trend):
                    raise InvalidInput(
                        f"Combinaison « {rule.code} » : « {code} » n'est pas une règle de seuil ou de tendance "
                        "du programme.",
                        field="rules",
                    )
            measures = [targets[code].measure for code in rule.of]
            if len(set(measures)) != len(measures):
                raise InvalidInput(
                    f"Combinaison « {rule.code} » : chaque règle combinée porte sur une mesure différente "
                    "(une même mesure ne compte qu'une fois).",
                    field="rules",
                )
            continue
        if rule.measure not in BY_KEY:
            raise InvalidInput(f"Règle « {rule.code} » : mesure « {rule.measure} » inconnue.", field="rules")
        if BY_KEY[rule.measure].is_answer and isinstance(rule, Threshold | Trend):
            if not isinstance(rule, Threshold) or rule.below is not None or not (0 <= (rule.above or -1) < 1):
                raise InvalidInput(
                    f"Règle « {rule.code} » : une question alerte sur la réponse « oui » "
                    "(seuil « above » entre 0 et 1, sans « below »).",
                    field="rules",
                )
    for rule in rules:  # a rule that alerts on nothing, alone or combined, is a mistake
        if rule.severity == "condition" and not (
            isinstance(rule, Threshold | Trend)
            and any(isinstance(r, Combination) and rule.code in r.of for r in rules)
        ):
            raise InvalidInput(
                f"Règle « {rule.code} » : « sans alerte seule » ne convient qu'à un seuil ou une tendance qu'une "
                "combinaison utilise.",
                field="rules",
            )
    # the parameters as an enrolment's overrides would be checked
    with_overrides(
        rules, {rule.code: {name: getattr(rule, name) for name in tunable(rule)} for rule in rules}
    )


def parse_rule_set(data: Sequence[object]) -> tuple[Rule, ...]:
    """Rules as a team sends them (JSON, as ``rule_to_data`` writes them), checked (``check_rule_set``);
    InvalidInput names the rule (its position or code) and what is wrong."""
    parsed = []
    for position, item in enumerate(data, start=1):
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("kind"), str)
            or item["kind"] not in KINDS
        ):
            raise InvalidInput(
                f"Règle n° {position} : « kind » attendu parmi {', '.join(KINDS)}.", field="rules"
            )
        cls = KINDS[item["kind"]]
        names = {f.name for f in fields(cls)} | {"kind"}
        unknown = sorted(set(item) - names)
        if unknown:
            raise InvalidInput(f"Règle n° {position} : élément inconnu « {unknown[0]} ».", field="rules")
        code = item.get("code")
        if not isinstance(code, str) or not 2 <= len(code) <= 60:
            raise InvalidInput(f"Règle n° {position} : code de 2 à 60 caractères attendu.", field="rules")
        for name in ("measure", "severity", "label"):
            if name in item and not isinstance(item[name], str):
                raise InvalidInput(f"Règle « {code} » : {name} doit être un texte.", field="rules")
        if cls is Combination and (
            not isinstance(item.get("of"), list) or not all(isinstance(c, str) for c in item["of"])
        ):
            raise InvalidInput(f"Règle « {code} » : « of » liste de codes de règles attendue.", field="rules")
        try:
            parsed.append(rule_from_data(item))
        except TypeError:
            missing = [
                f.name
                for f in fields(cls)
                if f.name not in item and f.default is MISSING and f.default_factory is MISSING
            ]
            raise InvalidInput(
                f"Règle « {code} » : élément manquant « {(missing or ['?'])[0]} ».", field="rules"
            ) from None
    rules = tuple(parsed)
    check_rule_set(rules)
    return rules


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
    if BY_KEY[rule.measure].is_answer:
        fires = (rule.above is not None and latest.value > rule.above) or (
            rule.below is not None and latest.value < rule.below
        )
        return (
            Finding(rule.code, rule.severity, f"Symptôme signalé : {label.lower()}.", (latest,))
            if fires
            else None
        )
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
    start, end = latest.at - timedelta(days=rule.days), latest.at
    window = [r for r in series[:-1] if start <= r.at < end]
    if not window:
        return None
    if rule.change > 0:
        base = min(window, key=_VALUE_THEN_TIME)  # the lowest, the earliest of equals
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


def window(rules: Sequence[Rule]) -> timedelta:
    """How far back from ``now`` the readings that ``evaluate`` needs go (trends, combinations), plus a day.
    Missing data needs only the last reading of each measure (``last_seen``), however old."""
    days = [rule.days for rule in rules if isinstance(rule, Trend | Combination)]
    return timedelta(days=max([*days, 1]) + 1)


def evaluate(
    rules: Sequence[Rule],
    readings: Iterable[Reading],
    now: datetime,
    since: datetime,
    last_seen: Mapping[str, datetime] | None = None,
) -> list[Finding]:
    """The findings of ``rules`` on ``readings`` at ``now``; ``since``: when the monitoring started (data are not
    missing before it); ``last_seen``: the last reading of each measure, when ``readings`` may not reach back to
    it (only ``window(rules)`` of readings are needed). The most severe first."""
    series: dict[str, list[Reading]] = {}
    for reading in sorted(readings, key=_TIME):
        if reading.at <= now:
            series.setdefault(reading.measure, []).append(reading)
    found: list[Finding] = []
    combinations = []
    for rule in rules:
        if isinstance(rule, Combination):
            combinations.append(rule)
            continue
        measured = series.get(rule.measure, [])
        if isinstance(rule, Missing):
            known = [
                at
                for at in (measured[-1].at if measured else None, (last_seen or {}).get(rule.measure))
                if at
            ]
            # counted from the last reading, or from the start when there is none since (a reading from before the
            # monitoring began, a device's stored history, does not make data missing sooner)
            last = max(known) if known else since
            if last < since:
                last, known = since, []
            if now - last >= timedelta(days=rule.days):
                measure = BY_KEY[rule.measure]
                when = (
                    "depuis le début du suivi" if not known else f"depuis {_number((now - last).days)} jours"
                )
                what = (
                    f"Questionnaire non rempli ({measure.label.lower()})"
                    if measure.is_answer
                    else f"Aucune mesure de {measure.label.lower()}"
                )
                found.append(Finding(rule.code, rule.severity, f"{what} {when}.", ()))
            continue
        if not measured:
            continue
        outcome = _threshold(rule, measured[-1]) if isinstance(rule, Threshold) else _trend(rule, measured)
        if outcome is not None:
            found.append(outcome)
    if not found:  # most evaluations: nothing fired, no combination can
        return found
    fired = {finding.rule: finding for finding in found}
    for rule in combinations:
        recent = now - timedelta(days=rule.days)
        parts = [
            fired[code]
            for code in rule.of
            if code in fired and fired[code].readings and fired[code].readings[-1].at >= recent
        ]
        if len(parts) >= rule.at_least:
            readings = tuple(sorted({r for part in parts for r in part.readings}, key=lambda r: r.at))
            reasons = " ; ".join(part.message.rstrip(".") for part in parts)
            found.append(Finding(rule.code, rule.severity, f"{rule.label} : {reasons}.", readings))
    found = [finding for finding in found if finding.severity != "condition"]
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


def replay(
    rules: Sequence[Rule], readings: Iterable[Reading], since: datetime, start: datetime, end: datetime
) -> list[tuple[datetime, Finding]]:
    """The alerts ``rules`` would have raised from ``start`` to ``end``, as the platform evaluates them: after each
    reading and on schedule (here once a day, for missing data), on the same window of readings
    (``window(rules)``) and the last reading of each measure. One alert per rule and trigger (the reading that
    fired it, or for missing data the last reading before the gap), with the time it would have been raised; a
    reading taken before ``start`` raises nothing in the period."""
    ordered = sorted(readings, key=_TIME)
    times = [r.at for r in ordered]
    instants = {r.at for r in ordered if start <= r.at <= end}
    day = start
    while day <= end:
        instants.add(day)
        day += timedelta(days=1)
    span = window(rules)
    raised: dict[tuple[str, str], tuple[datetime, Finding]] = {}
    last_seen: dict[str, datetime] = {}
    seen_up_to = 0
    for instant in sorted(instants):
        high = bisect_right(times, instant)
        for reading in ordered[seen_up_to:high]:
            last_seen[reading.measure] = reading.at
        seen_up_to = high
        current = ordered[bisect_left(times, instant - span) : high]
        for finding in evaluate(rules, current, instant, since, last_seen):
            if finding.readings:
                if finding.readings[-1].at < start:
                    continue
                trigger = f"r:{reading_id(finding.readings[-1].id)}"
            else:
                rule = next(r for r in rules if r.code == finding.rule)
                gap_from = max(last_seen.get(rule.measure, since), since)  # as ``evaluate`` counts it
                if gap_from + timedelta(days=rule.days) < start:
                    continue  # the gap began before the period: its alert was raised before it
                trigger = f"m:{gap_from.isoformat()}"
            raised.setdefault((finding.rule, trigger), (instant, finding))
    return sorted(raised.values(), key=lambda pair: pair[0])


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
            2,
            (
                ("weight", "chaque jour"),
                ("systolic", "chaque jour"),
                ("diastolic", "chaque jour"),
                ("heart_rate", "chaque jour"),
                ("dyspnoea", "chaque jour"),
                ("orthopnoea", "chaque jour"),
                ("oedema", "chaque jour"),
            ),
            (
                # ESC 2021 heart-failure guidelines (self-care): a gain of more than 2 kg in 3 days is a sign of
                # congestion; the slower gain of a week is kept as the programme asks.
                Trend("ic_poids_3j", "weight", "red", change=2.0, days=3),
                Trend("ic_poids_7j", "weight", "orange", change=3.0, days=7),
                # ESC 2021: symptomatic hypotension, systolic below 90 mm Hg.
                Threshold("ic_pas_basse", "systolic", "orange", below=90),
                Missing("ic_poids_absent", "weight", days=3),
                # ESC 2021 / HFA self-care: worsening breathlessness, orthopnoea and swelling are signs of
                # congestion; one alone is looked at (orange), two together, or with a weight gain, is red.
                Threshold("ic_dyspnee", "dyspnoea", "orange", above=0.5),
                Threshold("ic_orthopnee", "orthopnoea", "orange", above=0.5),
                Threshold("ic_oedemes", "oedema", "condition", above=0.5),
                Combination(
                    "ic_congestion",
                    "red",
                    ("ic_poids_7j", "ic_dyspnee", "ic_orthopnee", "ic_oedemes"),
                    2,
                    "Signes congestifs associés",
                ),
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
            2,
            (("glucose", "selon le schéma d'autosurveillance"), ("hypoglycaemia_episode", "à chaque saisie")),
            (
                # International consensus on time in range (Battelino 2019; ADA Standards of Care):
                # level 2 hypoglycaemia < 54 mg/dL, level 1 < 70 mg/dL, level 2 hyperglycaemia > 250 mg/dL.
                Threshold("dt_hypo_2", "glucose", "red", below=54),
                Threshold("dt_hypo_1", "glucose", "orange", below=70),
                Threshold("dt_hyper_2", "glucose", "orange", above=250),
                Missing("dt_glycemie_absente", "glucose", days=3),
                # A hypoglycaemia felt by the patient matters even when no glucose value was taken at the time.
                Threshold("dt_malaise", "hypoglycaemia_episode", "orange", above=0.5),
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
            2,
            (
                ("spo2", "chaque jour"),
                ("heart_rate", "chaque jour"),
                ("ventilation_hours", "chaque jour (patients ventilés à domicile)"),
                ("dyspnoea", "chaque jour"),
                ("sputum_volume", "chaque jour"),
                ("sputum_purulence", "chaque jour"),
            ),
            (
                # GOLD 2024: oxygen therapy titrated to SpO₂ 88–92 % in chronic hypercapnic patients.
                Threshold("ir_spo2_basse", "spo2", "orange", below=88),
                Missing("ir_spo2_absente", "spo2", days=3),
                # Less than 4 h of ventilation a day: the adherence floor used in France for home CPAP
                # (arrêté du 13 décembre 2017); for home NIV the team sets its own target (configurable).
                Threshold("ir_ventilation_courte", "ventilation_hours", "orange", below=4),
                # Anthonisen 1987: increased dyspnoea, sputum volume and sputum purulence; two of the three make an
                # exacerbation likely (types 1 and 2). With a low SpO₂, breathlessness is red.
                Threshold("ir_dyspnee", "dyspnoea", "condition", above=0.5),
                Threshold("ir_crachats_volume", "sputum_volume", "condition", above=0.5),
                Threshold("ir_crachats_purulents", "sputum_purulence", "condition", above=0.5),
                Combination(
                    "ir_exacerbation",
                    "orange",
                    ("ir_dyspnee", "ir_crachats_volume", "ir_crachats_purulents"),
                    2,
                    "Exacerbation probable (critères d'Anthonisen)",
                ),
                Combination(
                    "ir_desaturation_dyspnee",
                    "red",
                    ("ir_spo2_basse", "ir_dyspnee"),
                    2,
                    "Désaturation avec essoufflement",
                ),
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


for _programme in PROGRAMMES.values():  # the shipped rule sets are valid ones
    check_rule_set(_programme.rules)
