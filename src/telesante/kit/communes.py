"""Offline lookup of French INSEE commune codes (Code officiel géographique).

Two tables, extracted from the npm package ``@etalab/decoupage-administratif``
(see ``data/LICENCE-communes.md`` for provenance, licence and how to regenerate them):

- ``telesante/kit/data/communes.csv`` (``code;nom;departement``): current communes,
  delegated and associated communes and municipal arrondissements (Paris, Lyon,
  Marseille), so codes written on birth records made before a merger are recognised
  as long as INSEE still lists them;
- ``telesante/kit/data/communes_anciennes.csv`` (``code;code_actuel``): codes that
  vanished without keeping a delegated/associated status (for instance the pre-1976
  Corsican ``20xxx`` codes, now ``2A``/``2B``), each mapped to the current commune
  that absorbed it.

Birth places in French patient identities use the code in force at the date of
birth, so both kinds of code are accepted by :func:`is_known_commune`.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

_DATA_PACKAGE = "telesante.kit.data"
_DATA_FILE = "communes.csv"
_HISTORIC_FILE = "communes_anciennes.csv"
_HISTORIC_SUFFIX = " (ancien code)"


@lru_cache(maxsize=1)
def _communes() -> dict[str, tuple[str, str]]:
    """Load the table once: INSEE code -> (name, département code)."""
    table: dict[str, tuple[str, str]] = {}
    source = resources.files(_DATA_PACKAGE).joinpath(_DATA_FILE)
    with source.open("r", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            table.setdefault(row["code"], (row["nom"], row["departement"]))
    return table


@lru_cache(maxsize=1)
def _historic() -> dict[str, str]:
    """Load the table once: vanished INSEE code -> code of the current commune that absorbed it."""
    table: dict[str, str] = {}
    source = resources.files(_DATA_PACKAGE).joinpath(_HISTORIC_FILE)
    with source.open("r", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            table.setdefault(row["code"], row["code_actuel"])
    return table


def _normalise(code: str) -> str:
    """Trim surrounding spaces and upper-case the Corsican letter ('2a004' -> '2A004')."""
    return code.strip().upper()


def commune_name(code: str) -> str | None:
    """Official name of the commune with this INSEE code, or ``None`` if unknown.

    For a code shared by a current commune and a delegated commune (the chef-lieu
    of a commune nouvelle), the current commune's name is returned. For a historic
    code (see :func:`is_historic_code`), it is the name of the current commune that
    absorbed it followed by ``" (ancien code)"``, e.g. ``'20001'`` -> ``'Afa (ancien code)'``.
    """
    normalised = _normalise(code)
    entry = _communes().get(normalised)
    if entry:
        return entry[0]
    successor = _historic().get(normalised)
    if successor is None:
        return None
    current = _communes().get(successor)
    return current[0] + _HISTORIC_SUFFIX if current else None


def is_known_commune(code: str) -> bool:
    """Whether this INSEE code is known: current, delegated, associated, arrondissement or historic."""
    normalised = _normalise(code)
    return normalised in _communes() or normalised in _historic()


def is_historic_code(code: str) -> bool:
    """Whether this is a vanished code, listed only as a former code of a current commune ('20001')."""
    normalised = _normalise(code)
    return normalised not in _communes() and normalised in _historic()


def current_code(code: str) -> str | None:
    """Code to use today for this INSEE code, or ``None`` if unknown.

    A code of the main table (current, delegated, associated commune or arrondissement)
    is returned as is (normalised); a historic code is mapped to the current commune
    that absorbed it ('20001' -> '2A001').
    """
    normalised = _normalise(code)
    if normalised in _communes():
        return normalised
    return _historic().get(normalised)


def departement_of(code: str) -> str | None:
    """Département code of the commune ('01', '2A', '974', '988'…), or ``None`` if unknown.

    This is the département given by the COG, which is normally the code's prefix;
    for the few associated communes attached to a chef-lieu across a département
    border (e.g. '02285' Escaufourt, attached to a Nord commune) it is the
    chef-lieu's département ('59').

    Historic codes (see :func:`is_historic_code`) give ``None``: their département at
    the time may differ from today's (``'20001'`` was in Corse, ``'20'``); use
    ``departement_of(current_code(code))`` for the current one.
    """
    entry = _communes().get(_normalise(code))
    return entry[1] if entry else None
