"""Clinical rules of the TéléAVC (telestroke) pathway, as pure functions: no database, no I/O, no clock.

- NIHSS: the 15 scored items of the NIH Stroke Scale, their ranges, "UN" (non testable) where the scale allows it.
- Time windows from the last-known-well time: IV thrombolysis, thrombectomy, thrombectomy in selected patients.
- Thrombolysis checklist: contraindications answered by hand, or decided by a measure (blood pressure, platelets,
  INR, glucose, anticoagulant and time of last intake) — a measure that decides wins over a manual answer.
- Thrombolytic doses (alteplase, tenecteplase).

Every threshold lives in :class:`StrokeRules`, built from the settings (``TELESANTE_STROKE_<FIELD>``), because
regional protocols differ. Sources and their disagreements: ``docs/domains/stroke.md`` ("Clinical rules and their
sources"). Callers pass ``now`` (``kit.clock.now()``); datetimes must be timezone-aware.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from telesante.kit.errors import InvalidInput

# ---------------------------------------------------------------------------------------------------------------
# NIHSS
# ---------------------------------------------------------------------------------------------------------------

UNTESTABLE = "UN"


@dataclass(frozen=True)
class NihssItem:
    code: str
    label: str
    options: tuple[str, ...]  # descriptor of each score; index = score
    untestable: bool = False  # "UN" (non testable) allowed by the published scale

    @property
    def max(self) -> int:
        return len(self.options) - 1


_ARM = (
    "Pas de chute : maintien 10 secondes",
    "Chute avant 10 secondes, sans toucher le lit",
    "Effort contre la pesanteur, mais chute sur le lit",
    "Aucun effort contre la pesanteur",
    "Aucun mouvement",
)
_LEG = (
    "Pas de chute : maintien 5 secondes",
    "Chute avant 5 secondes, sans toucher le lit",
    "Effort contre la pesanteur, mais chute sur le lit",
    "Aucun effort contre la pesanteur",
    "Aucun mouvement",
)

NIHSS_ITEMS: tuple[NihssItem, ...] = (
    NihssItem(
        "1a",
        "1a. Niveau de conscience",
        (
            "Vigilant, réagit immédiatement",
            "Non vigilant, éveillable par une stimulation mineure",
            "Non vigilant, nécessite des stimulations répétées ou douloureuses",
            "Coma : réponses réflexes ou aucune réponse",
        ),
    ),
    NihssItem(
        "1b",
        "1b. Questions (mois, âge)",
        ("Deux réponses exactes", "Une réponse exacte", "Aucune réponse exacte"),
    ),
    NihssItem(
        "1c",
        "1c. Ordres (yeux, main)",
        ("Deux ordres exécutés", "Un ordre exécuté", "Aucun ordre exécuté"),
    ),
    NihssItem(
        "2",
        "2. Oculomotricité (meilleur regard horizontal)",
        ("Normale", "Paralysie partielle du regard", "Déviation forcée ou paralysie complète du regard"),
    ),
    NihssItem(
        "3",
        "3. Champ visuel",
        (
            "Normal",
            "Hémianopsie partielle",
            "Hémianopsie complète",
            "Hémianopsie bilatérale (cécité, y compris corticale)",
        ),
    ),
    NihssItem(
        "4",
        "4. Paralysie faciale",
        (
            "Absente, mouvements symétriques",
            "Paralysie mineure",
            "Paralysie partielle (face inférieure)",
            "Paralysie complète (face supérieure et inférieure, uni- ou bilatérale)",
        ),
    ),
    NihssItem("5a", "5a. Motricité du membre supérieur gauche", _ARM, untestable=True),
    NihssItem("5b", "5b. Motricité du membre supérieur droit", _ARM, untestable=True),
    NihssItem("6a", "6a. Motricité du membre inférieur gauche", _LEG, untestable=True),
    NihssItem("6b", "6b. Motricité du membre inférieur droit", _LEG, untestable=True),
    NihssItem(
        "7",
        "7. Ataxie des membres",
        ("Absente", "Présente sur un membre", "Présente sur deux membres"),
        untestable=True,
    ),
    NihssItem(
        "8",
        "8. Sensibilité",
        ("Normale", "Hypoesthésie légère à modérée", "Hypoesthésie sévère ou anesthésie"),
    ),
    NihssItem(
        "9",
        "9. Langage",
        ("Normal, pas d'aphasie", "Aphasie légère à modérée", "Aphasie sévère", "Mutisme, aphasie globale"),
    ),
    NihssItem(
        "10",
        "10. Dysarthrie",
        ("Normale", "Légère à modérée", "Sévère (inintelligible, ou anarthrie)"),
        untestable=True,
    ),
    NihssItem(
        "11",
        "11. Extinction et négligence",
        (
            "Absente",
            "Négligence ou extinction dans une modalité sensorielle",
            "Hémi-négligence sévère ou dans plus d'une modalité",
        ),
    ),
)

NIHSS_BY_CODE: dict[str, NihssItem] = {item.code: item for item in NIHSS_ITEMS}
NIHSS_MAX = sum(item.max for item in NIHSS_ITEMS)  # 42

# Why the scale allows "UN" for an item (French, for the form).
UNTESTABLE_REASONS: dict[str, str] = {
    "5a": "Amputation ou arthrodèse de l'épaule",
    "5b": "Amputation ou arthrodèse de l'épaule",
    "6a": "Amputation ou arthrodèse de la hanche",
    "6b": "Amputation ou arthrodèse de la hanche",
    "7": "Amputation ou arthrodèse",
    "10": "Intubation ou autre obstacle physique à la parole",
}

_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class NihssResult:
    items: dict[str, int | str]  # in scale order; ints, or "UN"
    total: int  # "UN" counts 0, as the scale's instructions say
    untestable: tuple[str, ...]  # codes scored "UN"


def _nihss_value(item: NihssItem, raw: Any) -> int | str:
    field = f"items.{item.code}"
    expected = f"entier de 0 à {item.max}" + (" ou « UN »" if item.untestable else "")
    value: int
    if isinstance(raw, str):
        text = raw.strip()
        if text.upper() == UNTESTABLE:
            if not item.untestable:
                raise InvalidInput(
                    f"NIHSS, item {item.code} : « non testable » (UN) n'est pas prévu par l'échelle pour cet item.",
                    field=field,
                )
            return UNTESTABLE
        if not _INTEGER.fullmatch(text):
            raise InvalidInput(
                f"NIHSS, item {item.code} : valeur « {raw} » invalide ({expected}).", field=field
            )
        value = int(text)
    elif isinstance(raw, bool):
        raise InvalidInput(f"NIHSS, item {item.code} : valeur {raw!r} invalide ({expected}).", field=field)
    elif isinstance(raw, int):
        value = raw
    elif isinstance(raw, float):
        if not (math.isfinite(raw) and raw.is_integer()):
            raise InvalidInput(f"NIHSS, item {item.code} : valeur {raw} invalide ({expected}).", field=field)
        value = int(raw)
    else:
        raise InvalidInput(f"NIHSS, item {item.code} : valeur invalide ({expected}).", field=field)
    if not 0 <= value <= item.max:
        raise InvalidInput(
            f"NIHSS, item {item.code} : valeur {value} hors de l'échelle (0 à {item.max}).", field=field
        )
    return value


def score_nihss(items: Mapping[str, Any]) -> NihssResult:
    """Validate and total a complete NIHSS. Every one of the 15 items is required."""
    normalised: dict[str, Any] = {}
    for key, value in items.items():
        code = str(key).strip().lower()
        if code in normalised:
            raise InvalidInput(f"NIHSS : item {code} donné deux fois.", field="items")
        normalised[code] = value
    unknown = [code for code in normalised if code not in NIHSS_BY_CODE]
    if unknown:
        raise InvalidInput(
            f"NIHSS : item(s) inconnu(s) : {', '.join(unknown)}. Items attendus : "
            f"{', '.join(item.code for item in NIHSS_ITEMS)}.",
            field="items",
        )
    scored: dict[str, int | str] = {}
    for item in NIHSS_ITEMS:
        raw = normalised.get(item.code)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            raise InvalidInput(
                f"NIHSS, item {item.code} manquant ({item.label}).", field=f"items.{item.code}"
            )
        scored[item.code] = _nihss_value(item, raw)
    total = sum(value for value in scored.values() if isinstance(value, int))
    untestable = tuple(code for code, value in scored.items() if value == UNTESTABLE)
    return NihssResult(items=scored, total=total, untestable=untestable)


# ---------------------------------------------------------------------------------------------------------------
# Rules (thresholds), from settings
# ---------------------------------------------------------------------------------------------------------------


# Zero is meaningless for these (a window, a dose, a threshold); the drug delays may be 0 (rule switched off).
_MUST_BE_POSITIVE = frozenset(
    {
        "iv_window_minutes",
        "thrombectomy_window_minutes",
        "thrombectomy_extended_minutes",
        "door_to_imaging_target_minutes",
        "door_to_needle_target_minutes",
        "max_systolic",
        "max_diastolic",
        "min_platelets",
        "max_inr",
        "glucose_max_mmol",
        "alteplase_mg_per_kg",
        "alteplase_max_mg",
        "alteplase_infusion_minutes",
        "tenecteplase_mg_per_kg",
        "tenecteplase_max_mg",
    }
)


@dataclass(frozen=True)
class StrokeRules:
    """Every threshold of the pathway. Defaults follow the guidelines (see the domain doc); each one is a setting
    ``TELESANTE_STROKE_<FIELD>`` because regional protocols differ."""

    iv_window_minutes: int = 270
    thrombectomy_window_minutes: int = 360
    thrombectomy_extended_minutes: int = 1440
    window_warning_minutes: int = 30
    door_to_imaging_target_minutes: int = 25
    door_to_needle_target_minutes: int = 60
    max_systolic: int = 185
    max_diastolic: int = 110
    min_platelets: int = 100_000  # per mm³
    max_inr: float = 1.7
    doac_hours: int = 48
    lmwh_hours: int = 24
    glucose_min_mmol: float = 2.8
    glucose_max_mmol: float = 22.2
    alteplase_mg_per_kg: float = 0.9
    alteplase_max_mg: float = 90.0
    alteplase_bolus_fraction: float = 0.10
    alteplase_infusion_minutes: int = 60
    tenecteplase_mg_per_kg: float = 0.25
    tenecteplase_max_mg: float = 25.0

    def __post_init__(self) -> None:
        # A configuration error, not a user's: fail loudly at start-up.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"stroke_{f.name}: nombre attendu, reçu {value!r}")
            if value < 0 or (value == 0 and f.name in _MUST_BE_POSITIVE):
                raise ValueError(f"stroke_{f.name}: valeur positive attendue, reçu {value!r}")
        if not 0 < self.alteplase_bolus_fraction < 1:
            raise ValueError("stroke_alteplase_bolus_fraction: valeur entre 0 et 1 attendue")
        if self.glucose_min_mmol >= self.glucose_max_mmol:
            raise ValueError("stroke_glucose_min_mmol doit être inférieur à stroke_glucose_max_mmol")

    @classmethod
    def from_settings(cls, settings: Any) -> StrokeRules:
        """Read ``settings.stroke_<field>`` for each field; the default when the attribute is missing or None."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = getattr(settings, "stroke_" + f.name, None)
            values[f.name] = f.default if value is None else value
        return cls(**values)


# ---------------------------------------------------------------------------------------------------------------
# Formatting helpers (French)
# ---------------------------------------------------------------------------------------------------------------


def _fr_number(value: float | Decimal, decimals: int = 1) -> str:
    return f"{value:.{decimals}f}".replace(".", ",")


def _fr_integer(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def _fr_duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if hours == 0:
        return f"{rest} min"
    return f"{hours} h" if rest == 0 else f"{hours} h {rest:02d}"


def _require_aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: datetime sans fuseau horaire (UTC attendu)")
    return value.astimezone(UTC)


# ---------------------------------------------------------------------------------------------------------------
# Time windows
# ---------------------------------------------------------------------------------------------------------------

WindowCode = Literal["iv", "thrombectomy", "thrombectomy_extended"]


@dataclass(frozen=True)
class WindowState:
    code: str
    label: str
    limit_minutes: int
    deadline: datetime | None
    remaining_minutes: (
        int | None
    )  # whole minutes left, rounded down; 0 once passed; None when onset is unknown
    state: str  # "ok" | "near" | "passed" | "unknown"


_WINDOWS: tuple[tuple[WindowCode, str, str], ...] = (
    ("iv", "Thrombolyse IV", "iv_window_minutes"),
    ("thrombectomy", "Thrombectomie", "thrombectomy_window_minutes"),
    (
        "thrombectomy_extended",
        "Thrombectomie chez des patients sélectionnés",
        "thrombectomy_extended_minutes",
    ),
)


def window_states(last_known_well: datetime | None, now: datetime, rules: StrokeRules) -> list[WindowState]:
    """The three treatment windows counted from the last-known-well time.

    A window is still open at its deadline exactly ("within 4.5 h"); "near" when at most
    ``window_warning_minutes`` remain; "passed" after the deadline; "unknown" without a last-known-well time.
    """
    now = _require_aware(now, "now")
    if last_known_well is not None:
        last_known_well = _require_aware(last_known_well, "last_known_well")
        if last_known_well > now:
            raise InvalidInput(
                "L'heure de dernière normalité (dernière fois vu normal) ne peut pas être dans le futur.",
                field="last_known_well",
            )
    warning = timedelta(minutes=rules.window_warning_minutes)
    states: list[WindowState] = []
    for code, name, attribute in _WINDOWS:
        limit = int(getattr(rules, attribute))
        label = f"{name} ({_fr_duration(limit)})"
        if last_known_well is None:
            states.append(WindowState(code, label, limit, None, None, "unknown"))
            continue
        deadline = last_known_well + timedelta(minutes=limit)
        remaining = deadline - now
        if remaining < timedelta(0):
            state, minutes = "passed", 0
        else:
            state = "near" if remaining <= warning else "ok"
            minutes = int(remaining.total_seconds() // 60)
        states.append(WindowState(code, label, limit, deadline, minutes, state))
    return states


# ---------------------------------------------------------------------------------------------------------------
# Thrombolysis checklist
# ---------------------------------------------------------------------------------------------------------------

ANTICOAGULANTS: dict[str, str] = {
    "aucun": "Aucun anticoagulant",
    "avk": "Antivitamine K (warfarine, fluindione, acénocoumarol)",
    "aod_anti_xa": "AOD anti-Xa (apixaban, rivaroxaban, édoxaban)",
    "aod_dabigatran": "AOD antithrombine (dabigatran)",
    "hbpm_curative": "HBPM à dose curative",
    "heparine": "Héparine non fractionnée",
    "inconnu": "Traitement anticoagulant inconnu",
}
_DOACS = frozenset({"aod_anti_xa", "aod_dabigatran"})

ANSWERS = ("oui", "non", "inconnu")


@dataclass(frozen=True)
class Measures:
    systolic: int | None = None  # mmHg
    diastolic: int | None = None  # mmHg
    glucose_mmol: float | None = None  # mmol/L
    platelets: int | None = None  # per mm³
    inr: float | None = None
    weight_kg: float | None = None
    anticoagulant: str | None = None  # a code of ANTICOAGULANTS
    last_anticoagulant_at: datetime | None = None


@dataclass(frozen=True)
class Contraindication:
    code: str
    label: str  # French
    absolute: bool  # absolute: answered "oui" blocks thrombolysis; relative: a warning to weigh
    source: str


_ESO_2021 = "ESO 2021 (Berge E. et al., Eur Stroke J 2021;6(1):I–LXII)"
_AHA_2019 = "AHA/ASA 2019 (Powers W.J. et al., Stroke 2019;50:e344–e418)"
_RCP_ACTILYSE = "RCP Actilyse (altéplase)"
_RCP_METALYSE = "RCP Metalyse 25 mg (ténectéplase)"
_HAS_2009 = "HAS 2009, « AVC : prise en charge précoce »"
_NINDS_1995 = "Essai NINDS rt-PA (N Engl J Med 1995;333:1581–7), critères d'exclusion"


def _sources(*names: str) -> str:
    return " ; ".join(names)


CONTRAINDICATIONS: tuple[Contraindication, ...] = (
    # --- absolute ---
    Contraindication(
        "hemorragie_imagerie",
        "Hémorragie intracrânienne à l'imagerie",
        True,
        _sources(_ESO_2021, _AHA_2019, _RCP_ACTILYSE, _RCP_METALYSE, _HAS_2009),
    ),
    Contraindication(
        "antecedent_hemorragie_intracranienne",
        "Antécédent d'hémorragie intracrânienne",
        True,
        _sources(_AHA_2019, _RCP_ACTILYSE),
    ),
    Contraindication(
        "avc_trauma_3_mois",
        "AVC ischémique ou traumatisme crânien grave dans les 3 derniers mois",
        True,
        _sources(_AHA_2019, _RCP_ACTILYSE),
    ),
    Contraindication(
        "chirurgie_intracranienne_3_mois",
        "Chirurgie intracrânienne ou intrarachidienne dans les 3 derniers mois",
        True,
        _sources(_AHA_2019, _RCP_ACTILYSE),
    ),
    Contraindication(
        "lesion_intracranienne",
        "Néoplasie intracrânienne intra-axiale, malformation artérioveineuse ou anévrisme intracrânien connus",
        True,
        _sources(_RCP_ACTILYSE, _AHA_2019 + " (néoplasie intra-axiale)"),
    ),
    Contraindication(
        "saignement_actif",
        "Saignement actif ou diathèse hémorragique connue",
        True,
        _sources(_AHA_2019, _RCP_ACTILYSE),
    ),
    Contraindication(
        "hemorragie_digestive",
        "Hémorragie digestive ou urinaire dans les 21 derniers jours",
        True,
        _sources(_AHA_2019 + " (digestive)", _NINDS_1995),
    ),
    Contraindication(
        "dissection_aortique",
        "Dissection aortique suspectée ou connue",
        True,
        _AHA_2019,
    ),
    Contraindication(
        "endocardite",
        "Endocardite infectieuse",
        True,
        _sources(_AHA_2019, _RCP_ACTILYSE),
    ),
    Contraindication(
        "pression_arterielle",
        "Pression artérielle au-dessus du seuil malgré traitement antihypertenseur",
        True,
        _sources(_AHA_2019, _RCP_ACTILYSE),
    ),
    Contraindication(
        "plaquettes",
        "Plaquettes sous le seuil",
        True,
        _sources(_AHA_2019, _RCP_ACTILYSE),
    ),
    Contraindication(
        "inr",
        "INR au-dessus du seuil",
        True,
        _sources(_AHA_2019, _RCP_ACTILYSE + " (seuil 1,3)"),
    ),
    Contraindication(
        "aod",
        "Anticoagulant oral direct (AOD) pris dans le délai de sécurité",
        True,
        _sources(_ESO_2021, _AHA_2019),
    ),
    Contraindication(
        "hbpm",
        "HBPM à dose curative reçue dans le délai de sécurité",
        True,
        _AHA_2019,
    ),
    Contraindication(
        "heparine_tca",
        "Héparine non fractionnée avec TCA allongé",
        True,
        _AHA_2019,
    ),
    Contraindication(
        "glycemie",
        "Glycémie hors des limites, non corrigée",
        True,
        _sources(_RCP_ACTILYSE, _AHA_2019 + " (hypoglycémie)", _NINDS_1995),
    ),
    # --- relative (warnings to weigh) ---
    Contraindication(
        "chirurgie_majeure_14_jours",
        "Chirurgie majeure ou traumatisme grave (non crânien) dans les 14 derniers jours",
        False,
        _sources(_AHA_2019, _RCP_ACTILYSE + " (10 jours, contre-indication)"),
    ),
    Contraindication(
        "ponction_arterielle_7_jours",
        "Ponction artérielle en site non compressible dans les 7 derniers jours",
        False,
        _sources(_AHA_2019, _RCP_ACTILYSE),
    ),
    Contraindication(
        "infarctus_myocarde_3_mois",
        "Infarctus du myocarde dans les 3 derniers mois",
        False,
        _AHA_2019,
    ),
    Contraindication(
        "grossesse",
        "Grossesse ou post-partum",
        False,
        _sources(_AHA_2019, _RCP_ACTILYSE + " (accouchement récent)"),
    ),
    Contraindication(
        "crise_inaugurale",
        "Crise d'épilepsie au début des symptômes avec déficit post-critique",
        False,
        _sources(_AHA_2019, _RCP_ACTILYSE),
    ),
)

CONTRAINDICATIONS_BY_CODE: dict[str, Contraindication] = {item.code: item for item in CONTRAINDICATIONS}

# The items a measure can decide (when the measure is there).
MEASURED_CODES = frozenset(
    {"pression_arterielle", "plaquettes", "inr", "glycemie", "aod", "hbpm", "heparine_tca"}
)


def threshold_text(code: str, rules: StrokeRules) -> str | None:
    """The threshold of a measured item, in French, for the form (e.g. « INR > 1,7 »)."""
    texts = {
        "pression_arterielle": f"PAS > {rules.max_systolic} ou PAD > {rules.max_diastolic} mmHg",
        "plaquettes": f"Plaquettes < {_fr_integer(rules.min_platelets)}/mm³",
        "inr": f"INR > {_fr_number(rules.max_inr)}",
        "glycemie": (
            f"Glycémie < {_fr_number(rules.glucose_min_mmol)} ou > {_fr_number(rules.glucose_max_mmol)} mmol/L"
        ),
        "aod": f"Dernière prise d'AOD il y a {rules.doac_hours} h ou moins",
        "hbpm": f"Dernière injection d'HBPM curative il y a {rules.lmwh_hours} h ou moins",
        "heparine_tca": "TCA au-dessus de la limite supérieure de la normale",
    }
    return texts.get(code)


Answer = Literal["oui", "non", "inconnu"]


@dataclass(frozen=True)
class ChecklistItem:
    item: Contraindication
    answer: str | None  # "oui" | "non" | "inconnu" | None (not answered)
    origin: str | None  # "mesure" | "saisie" | None
    detail: str  # French explanation, e.g. « INR 2,1 > 1,7 »


@dataclass(frozen=True)
class ChecklistResult:
    items: tuple[ChecklistItem, ...]
    blocking: tuple[str, ...]  # absolute items answered "oui"
    unanswered: tuple[str, ...]  # absolute items not answered, or answered "inconnu"

    @property
    def clear(self) -> bool:
        return not self.blocking and not self.unanswered

    @property
    def warnings(self) -> tuple[str, ...]:
        """Relative items answered "oui": to weigh, not blocking."""
        return tuple(i.item.code for i in self.items if not i.item.absolute and i.answer == "oui")


def _check_measures(measures: Measures, now: datetime) -> None:
    def non_negative(name: str, value: float | None) -> None:
        if value is None:
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise InvalidInput(f"Valeur invalide pour « {name} » : nombre positif attendu.", field=name)

    for name in ("systolic", "diastolic", "glucose_mmol", "platelets", "inr", "weight_kg"):
        non_negative(name, getattr(measures, name))
    if measures.platelets is not None and measures.platelets < 1000:
        raise InvalidInput(
            f"Plaquettes : {measures.platelets} ressemble à une valeur en G/L ; "
            "la numération est attendue par mm³ (ex. 150000).",
            field="platelets",
        )
    if measures.anticoagulant is not None and measures.anticoagulant not in ANTICOAGULANTS:
        raise InvalidInput(
            f"Anticoagulant inconnu : « {measures.anticoagulant} » (attendu : {', '.join(ANTICOAGULANTS)}).",
            field="anticoagulant",
        )
    if measures.last_anticoagulant_at is not None:
        taken = _require_aware(measures.last_anticoagulant_at, "last_anticoagulant_at")
        if taken > now:
            raise InvalidInput(
                "L'heure de dernière prise d'anticoagulant ne peut pas être dans le futur.",
                field="last_anticoagulant_at",
            )


def _elapsed(then: datetime, now: datetime) -> timedelta:
    return now - then.astimezone(UTC)


def _measured(code: str, m: Measures, now: datetime, rules: StrokeRules) -> tuple[Answer, str] | None:
    """The answer a measure gives for ``code``, with its explanation; None when no measure decides."""
    if code == "pression_arterielle":
        if m.systolic is None and m.diastolic is None:
            return None
        high_s = m.systolic is not None and m.systolic > rules.max_systolic
        high_d = m.diastolic is not None and m.diastolic > rules.max_diastolic
        shown = f"PA {m.systolic if m.systolic is not None else '?'}/{m.diastolic if m.diastolic is not None else '?'} mmHg"
        limit = f"{rules.max_systolic}/{rules.max_diastolic}"
        if high_s or high_d:
            return "oui", f"{shown} > {limit}"
        if m.systolic is None or m.diastolic is None:
            return "inconnu", f"{shown} : mesure incomplète (seuil {limit})"
        return "non", f"{shown} ≤ {limit}"
    if code == "plaquettes":
        if m.platelets is None:
            return None
        shown = f"Plaquettes {_fr_integer(m.platelets)}/mm³"
        if m.platelets < rules.min_platelets:
            return "oui", f"{shown} < {_fr_integer(rules.min_platelets)}"
        return "non", f"{shown} ≥ {_fr_integer(rules.min_platelets)}"
    if code == "inr":
        if m.inr is None:
            return None
        shown = f"INR {_fr_number(m.inr, 2 if round(m.inr, 1) != m.inr else 1)}"
        if m.inr > rules.max_inr:
            return "oui", f"{shown} > {_fr_number(rules.max_inr)}"
        return "non", f"{shown} ≤ {_fr_number(rules.max_inr)}"
    if code == "glycemie":
        if m.glucose_mmol is None:
            return None
        shown = f"Glycémie {_fr_number(m.glucose_mmol, 2 if round(m.glucose_mmol, 1) != m.glucose_mmol else 1)} mmol/L"
        low, high = _fr_number(rules.glucose_min_mmol), _fr_number(rules.glucose_max_mmol)
        if m.glucose_mmol < rules.glucose_min_mmol:
            return "oui", f"{shown} < {low}"
        if m.glucose_mmol > rules.glucose_max_mmol:
            return "oui", f"{shown} > {high}"
        return "non", f"{shown} dans [{low} ; {high}]"
    if code in ("aod", "hbpm", "heparine_tca"):
        if m.anticoagulant is None:
            return None
        label = ANTICOAGULANTS[m.anticoagulant]
        if m.anticoagulant == "inconnu":
            return "inconnu", label
        if code == "heparine_tca":
            if m.anticoagulant == "heparine":
                return None  # the aPTT decides: a manual answer
            return "non", f"Anticoagulant : {label}"
        concerned = m.anticoagulant in _DOACS if code == "aod" else m.anticoagulant == "hbpm_curative"
        if not concerned:
            return "non", f"Anticoagulant : {label}"
        limit_hours = rules.doac_hours if code == "aod" else rules.lmwh_hours
        if m.last_anticoagulant_at is None:
            return "inconnu", f"{label} : heure de dernière prise inconnue"
        elapsed = _elapsed(m.last_anticoagulant_at, now)
        shown = f"{label} : dernière prise il y a {_fr_duration(int(elapsed.total_seconds() // 60))}"
        if elapsed <= timedelta(hours=limit_hours):
            return "oui", f"{shown} (≤ {limit_hours} h)"
        return "non", f"{shown} (> {limit_hours} h)"
    return None


def evaluate_checklist(
    manual: Mapping[str, str], measures: Measures, now: datetime, rules: StrokeRules
) -> ChecklistResult:
    """Answer every contraindication, from the measures when they decide, else from the manual answers.

    A measure that decides ("oui"/"non") wins over a manual answer (origin "mesure"). When a measure cannot
    decide (anticoagulant "inconnu", DOAC without time of last intake, one blood pressure figure missing), a manual
    answer is used if there is one, else the item is "inconnu". An AVK is not a contraindication by itself: the
    INR item decides.
    """
    now = _require_aware(now, "now")
    answers: dict[str, str] = {}
    for code, value in manual.items():
        if code not in CONTRAINDICATIONS_BY_CODE:
            raise InvalidInput(f"Contre-indication inconnue : « {code} ».", field=f"answers.{code}")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        answer = value.strip().lower() if isinstance(value, str) else value
        if answer not in ANSWERS:
            raise InvalidInput(
                f"Réponse invalide pour « {CONTRAINDICATIONS_BY_CODE[code].label} » : « {value} » "
                "(attendu : oui, non ou inconnu).",
                field=f"answers.{code}",
            )
        answers[code] = answer
    _check_measures(measures, now)

    results: list[ChecklistItem] = []
    for item in CONTRAINDICATIONS:
        manual_answer = answers.get(item.code)
        measured = _measured(item.code, measures, now, rules)
        if measured is not None and (measured[0] != "inconnu" or manual_answer is None):
            results.append(ChecklistItem(item, measured[0], "mesure", measured[1]))
            continue
        threshold = threshold_text(item.code, rules)
        if manual_answer is not None:
            detail = "Réponse saisie" + (f" (seuil : {threshold})" if threshold else "")
            if measured is not None:
                detail = f"{measured[1]} ; réponse saisie"
            results.append(ChecklistItem(item, manual_answer, "saisie", detail))
        else:
            detail = "Non renseigné" + (f" (seuil : {threshold})" if threshold else "")
            if item.code == "inr" and measures.anticoagulant == "avk":
                detail = f"Patient sous AVK : INR requis (seuil : {threshold})"
            if item.code == "heparine_tca" and measures.anticoagulant == "heparine":
                detail = "Patient sous héparine non fractionnée : TCA à vérifier"
            results.append(ChecklistItem(item, None, None, detail))

    blocking = tuple(r.item.code for r in results if r.item.absolute and r.answer == "oui")
    unanswered = tuple(r.item.code for r in results if r.item.absolute and r.answer in (None, "inconnu"))
    return ChecklistResult(items=tuple(results), blocking=blocking, unanswered=unanswered)


# ---------------------------------------------------------------------------------------------------------------
# Doses
# ---------------------------------------------------------------------------------------------------------------

AGENTS: dict[str, str] = {"alteplase": "Altéplase", "tenecteplase": "Ténectéplase"}
ALTEPLASE_MG_PER_ML = Decimal("1")  # Actilyse reconstituted at 1 mg/mL
TENECTEPLASE_MG_PER_ML = Decimal("5")  # Metalyse 25 mg (5 000 U) reconstituted with 5 mL: 5 mg/mL
MIN_WEIGHT_KG = 20
MAX_WEIGHT_KG = 350

# Weight bands of the Metalyse 25 mg SmPC (stroke): upper bound (exclusive) in kg -> dose in mg.
METALYSE_STROKE_BANDS: tuple[tuple[float | None, float], ...] = (
    (60, 15.0),
    (70, 17.5),
    (80, 20.0),
    (90, 22.5),
    (None, 25.0),
)

_TENTH = Decimal("0.1")
_HUNDREDTH = Decimal("0.01")


@dataclass(frozen=True)
class Dose:
    agent: str  # "alteplase" | "tenecteplase"
    weight_kg: float
    total_mg: float
    bolus_mg: float
    infusion_mg: float
    infusion_minutes: int  # 0 for tenecteplase
    capped: bool  # the maximum dose is reached
    volume_ml: float
    text: str  # French one-line instruction


def _weight(weight_kg: Any) -> Decimal:
    if weight_kg is None:
        raise InvalidInput("Poids du patient requis pour calculer la dose.", field="weight_kg")
    if isinstance(weight_kg, bool) or not isinstance(weight_kg, int | float | Decimal):
        raise InvalidInput("Poids du patient invalide : nombre de kilogrammes attendu.", field="weight_kg")
    if isinstance(weight_kg, float) and not math.isfinite(weight_kg):
        raise InvalidInput("Poids du patient invalide : nombre de kilogrammes attendu.", field="weight_kg")
    if not MIN_WEIGHT_KG <= weight_kg <= MAX_WEIGHT_KG:
        raise InvalidInput(
            f"Poids de {_fr_number(weight_kg)} kg hors des limites admises ({MIN_WEIGHT_KG} à {MAX_WEIGHT_KG} kg).",
            field="weight_kg",
        )
    return Decimal(str(weight_kg))


def _round_tenth(value: Decimal) -> Decimal:
    return value.quantize(_TENTH, rounding=ROUND_HALF_UP)


def thrombolysis_dose(agent: str, weight_kg: float | None, rules: StrokeRules) -> Dose:
    """Weight-based dose, rounded to 0.1 mg (half up) after capping; bolus + infusion equal the total exactly."""
    if agent not in AGENTS:
        raise InvalidInput(
            f"Agent thrombolytique inconnu : « {agent} » (attendu : alteplase ou tenecteplase).",
            field="agent",
        )
    weight = _weight(weight_kg)
    if agent == "alteplase":
        per_kg, maximum = Decimal(str(rules.alteplase_mg_per_kg)), Decimal(str(rules.alteplase_max_mg))
    else:
        per_kg, maximum = Decimal(str(rules.tenecteplase_mg_per_kg)), Decimal(str(rules.tenecteplase_max_mg))
    raw = weight * per_kg
    capped = raw >= maximum
    total = _round_tenth(min(raw, maximum))
    cap_note = " (dose maximale)" if capped else ""

    if agent == "alteplase":
        bolus = _round_tenth(total * Decimal(str(rules.alteplase_bolus_fraction)))
        infusion = total - bolus
        minutes = int(rules.alteplase_infusion_minutes)
        volume = (total / ALTEPLASE_MG_PER_ML).quantize(_TENTH, rounding=ROUND_HALF_UP)
        text = (
            f"Altéplase {_fr_number(total)} mg{cap_note} : bolus {_fr_number(bolus)} mg en 1 minute, "
            f"puis {_fr_number(infusion)} mg en perfusion sur {minutes} minutes"
        )
    else:
        bolus, infusion, minutes = total, Decimal("0"), 0
        volume = (total / TENECTEPLASE_MG_PER_ML).quantize(_HUNDREDTH, rounding=ROUND_HALF_UP)
        text = (
            f"Ténectéplase {_fr_number(total)} mg{cap_note} : bolus IV unique en 5 à 10 secondes "
            f"({_fr_number(volume, 2)} mL de solution à 5 mg/mL)"
        )
    return Dose(
        agent=agent,
        weight_kg=float(weight),
        total_mg=float(total),
        bolus_mg=float(bolus),
        infusion_mg=float(infusion),
        infusion_minutes=minutes,
        capped=capped,
        volume_ml=float(volume),
        text=text,
    )


def metalyse_smpc_band_mg(weight_kg: float | None) -> float:
    """The tenecteplase dose of the weight band in the Metalyse 25 mg SmPC (stroke), for comparison with the
    per-kilogram dose of :func:`thrombolysis_dose` (see the domain doc: the two differ inside a band)."""
    weight = float(_weight(weight_kg))
    for upper, dose in METALYSE_STROKE_BANDS:
        if upper is None or weight < upper:
            return dose
    raise AssertionError("unreachable: the last band is open")  # pragma: no cover
