"""The quality dashboard's arithmetic (pure): per hospital and month, how many alerts, how many thrombolyses and
thrombectomies, and the distribution of the pathway's delays against their targets.

Delays are whole minutes between two stamped milestones (``StrokeMilestone.at``, the server's time or a time
corrected by hand with its reason). A delay is counted only for the cases that have both ends:

- onset → needle: cases thrombolysed whose onset time is known (a wake-up stroke's last-seen-well time is not an
  onset: it is left out, as registries do);
- door → imaging: arrival → « imagerie disponible »;
- door → needle: arrival → needle;
- alert → acknowledgement: the alert → the neurologist taking it.

Rates are over all the alerts of the month; a case still without decision counts in the alerts only."""

from __future__ import annotations

import csv
import io
import statistics
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from telesante.kit import clock
from telesante.stroke.models import DISPOSITION_LABELS, Disposition, Milestone


@dataclass(frozen=True)
class Distribution:
    """Minutes: count, median, quartiles, extremes, and how many within the target (when there is one)."""

    count: int
    median: float | None
    p25: float | None
    p75: float | None
    minimum: int | None
    maximum: int | None
    target: int | None
    within_target: int

    @property
    def share_within_target(self) -> float | None:
        if self.target is None or not self.count:
            return None
        return self.within_target / self.count


def distribution(values: Iterable[int], target: int | None = None) -> Distribution:
    ordered = sorted(values)
    if not ordered:
        return Distribution(0, None, None, None, None, None, target, 0)
    if len(ordered) == 1:
        p25 = p75 = float(ordered[0])
    else:
        p25, _median, p75 = statistics.quantiles(ordered, n=4, method="inclusive")
    return Distribution(
        count=len(ordered),
        median=float(statistics.median(ordered)),
        p25=p25,
        p75=p75,
        minimum=ordered[0],
        maximum=ordered[-1],
        target=target,
        within_target=sum(1 for v in ordered if target is not None and v <= target),
    )


@dataclass(frozen=True)
class CaseTimes:
    """One case's line of the dashboard (no identity: the case number only)."""

    case_id: uuid.UUID
    alert_at: datetime
    disposition: Disposition | None
    thrombectomy: bool | None
    onset_to_needle: int | None
    door_to_imaging: int | None
    door_to_needle: int | None
    alert_to_acknowledged: int | None


def _between(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((clock.as_utc(end) - clock.as_utc(start)).total_seconds() // 60)


def case_times(
    *,
    case_id: uuid.UUID,
    alert_at: datetime,
    onset_known: bool,
    last_known_well_at: datetime | None,
    disposition: Disposition | None,
    thrombectomy: bool | None,
    stamps: Mapping[Milestone, datetime],
) -> CaseTimes:
    arrival = stamps.get(Milestone.ARRIVAL)
    needle = stamps.get(Milestone.NEEDLE)
    return CaseTimes(
        case_id=case_id,
        alert_at=clock.as_utc(alert_at),
        disposition=disposition,
        thrombectomy=thrombectomy,
        onset_to_needle=_between(last_known_well_at, needle) if onset_known else None,
        door_to_imaging=_between(arrival, stamps.get(Milestone.IMAGING_AVAILABLE)),
        door_to_needle=_between(arrival, needle),
        alert_to_acknowledged=_between(stamps.get(Milestone.ALERT), stamps.get(Milestone.ACKNOWLEDGED)),
    )


@dataclass(frozen=True)
class MonthQuality:
    alerts: int
    thrombolyses: int
    thrombectomies: int
    undecided: int
    onset_to_needle: Distribution
    door_to_imaging: Distribution
    door_to_needle: Distribution
    alert_to_acknowledged: Distribution
    cases: list[CaseTimes]

    @property
    def thrombolysis_rate(self) -> float | None:
        return self.thrombolyses / self.alerts if self.alerts else None

    @property
    def thrombectomy_rate(self) -> float | None:
        return self.thrombectomies / self.alerts if self.alerts else None


def month_quality(
    cases: list[CaseTimes], *, door_to_imaging_target: int, door_to_needle_target: int
) -> MonthQuality:
    def values(attribute: str) -> list[int]:
        return [v for c in cases if (v := getattr(c, attribute)) is not None]

    return MonthQuality(
        alerts=len(cases),
        thrombolyses=sum(1 for c in cases if c.disposition == Disposition.THROMBOLYSIS),
        thrombectomies=sum(1 for c in cases if c.thrombectomy),
        undecided=sum(1 for c in cases if c.disposition is None),
        onset_to_needle=distribution(values("onset_to_needle")),
        door_to_imaging=distribution(values("door_to_imaging"), door_to_imaging_target),
        door_to_needle=distribution(values("door_to_needle"), door_to_needle_target),
        alert_to_acknowledged=distribution(values("alert_to_acknowledged")),
        cases=cases,
    )


CSV_COLUMNS = [
    "dossier",
    "alerte (heure de Paris)",
    "décision",
    "thrombectomie",
    "début → aiguille (min)",
    "porte → imagerie (min)",
    "porte → aiguille (min)",
    "alerte → neurologue (min)",
]


def _cell(value: object) -> str:
    """French spreadsheets read « 12,5 », not « 12.5 »: decimals with a comma."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    return str(value)


def to_csv(hospital: str, month: str, quality: MonthQuality) -> str:
    """One line per alert (no identity), then the month's summary; semicolon-separated with a BOM, as French
    spreadsheets expect."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for case in quality.cases:
        writer.writerow(
            [
                case.case_id,
                clock.format_paris(case.alert_at),
                DISPOSITION_LABELS[case.disposition] if case.disposition else "en attente",
                {True: "oui", False: "non", None: ""}[case.thrombectomy],
                _cell(case.onset_to_needle),
                _cell(case.door_to_imaging),
                _cell(case.door_to_needle),
                _cell(case.alert_to_acknowledged),
            ]
        )
    writer.writerow([])
    writer.writerow(["établissement", hospital])
    writer.writerow(["mois", month])
    writer.writerow(["alertes", quality.alerts])
    writer.writerow(["thrombolyses", quality.thrombolyses])
    writer.writerow(["thrombectomies", quality.thrombectomies])
    for label, d in (
        ("début → aiguille", quality.onset_to_needle),
        ("porte → imagerie", quality.door_to_imaging),
        ("porte → aiguille", quality.door_to_needle),
        ("alerte → neurologue", quality.alert_to_acknowledged),
    ):
        writer.writerow(
            [
                f"{label} : médiane (min)",
                _cell(d.median),
                "dans l'objectif",
                f"{d.within_target}/{d.count}" if d.target is not None else "",
            ]
        )
    return "\ufeff" + out.getvalue()
