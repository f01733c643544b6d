"""French public holidays (jours fériés, Code du travail L.3133-1), for schedules that skip them.

Eleven days in metropolitan France: 1 January, Easter Monday, 1 May, 8 May, Ascension Thursday (Easter + 39 days),
Whit Monday (Easter + 50), 14 July, 15 August, 1 November, 11 November, 25 December. Alsace-Moselle adds Good
Friday and 26 December (local law, Code du travail L.3134-13); the ``zone`` setting chooses. Whit Monday is the usual
"journée de solidarité" and many services work that day: it stays a holiday here, and a doctor who works it adds the
slots by hand (documented in docs/domains/scheduling.md). Overseas departments' own days (abolition of slavery)
are not included.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

ZONES = ("metropole", "alsace-moselle")


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


@lru_cache(maxsize=64)
def public_holidays(year: int, zone: str = "metropole") -> dict[date, str]:
    """The public holidays of ``year``, date → French name."""
    if zone not in ZONES:
        raise ValueError(f"zone inconnue : {zone}")
    easter = easter_sunday(year)
    days = {
        date(year, 1, 1): "Jour de l'an",
        easter + timedelta(days=1): "Lundi de Pâques",
        date(year, 5, 1): "Fête du Travail",
        date(year, 5, 8): "Victoire 1945",
        easter + timedelta(days=39): "Ascension",
        easter + timedelta(days=50): "Lundi de Pentecôte",
        date(year, 7, 14): "Fête nationale",
        date(year, 8, 15): "Assomption",
        date(year, 11, 1): "Toussaint",
        date(year, 11, 11): "Armistice 1918",
        date(year, 12, 25): "Noël",
    }
    if zone == "alsace-moselle":
        days[easter - timedelta(days=2)] = "Vendredi saint"
        days[date(year, 12, 26)] = "Saint-Étienne"
    return days


def is_public_holiday(day: date, zone: str = "metropole") -> bool:
    return day in public_holidays(day.year, zone)
