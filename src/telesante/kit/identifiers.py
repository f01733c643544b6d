"""Check digits and formats of French health identifiers (FINESS, RPPS, NIR/NIA, INSEE codes).

Sources are listed in docs/domains/directory.md and docs/domains/patients.md.
Every checker returns ``None`` when the value is valid, otherwise a French explanation.
"""

from __future__ import annotations

import re
from datetime import date

_FINESS_RE = re.compile(r"^(\d{2}|2A|2B)\d{7}$")
_RPPS_RE = re.compile(r"^\d{11}$")
# NIR: first digit 1 (man) or 2 (woman); NIA (numéro d'identification d'attente, built like a NIR): 7 or 8.
_NIR_RE = re.compile(r"^[1278]\d{4}(\d{2}|2A|2B)\d{6}\d{2}$")
_COMMUNE_RE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
_DEPARTEMENT_RE = re.compile(r"^(0[1-9]|1\d|2[1-9]|[3-8]\d|9[0-5]|2A|2B|97[1-6])$")

# Matricule INS OIDs (Référentiel INS, ANS).
OID_INS_NIR = "1.2.250.1.213.1.4.8"
OID_INS_NIA = "1.2.250.1.213.1.4.9"
OID_INS_NIR_TEST = "1.2.250.1.213.1.4.10"
OID_INS_NIR_DEMO = "1.2.250.1.213.1.4.11"
INS_OIDS = {
    OID_INS_NIR: "INS-NIR",
    OID_INS_NIA: "INS-NIA",
    OID_INS_NIR_TEST: "INS-NIR-TEST",
    OID_INS_NIR_DEMO: "INS-NIR-DEMO",
}


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_check_digit(digits: str) -> str:
    for candidate in "0123456789":
        if luhn_valid(digits + candidate):
            return candidate
    raise AssertionError("unreachable")


def check_finess(value: str) -> str | None:
    if not _FINESS_RE.match(value):
        return "Le numéro FINESS doit comporter 9 caractères (2 pour le département, dont 2A/2B, puis 7 chiffres)."
    if value[:2] in ("2A", "2B"):
        # No published rule for the key of Corsican numbers: accepted on format only (see directory.md).
        return None
    if not luhn_valid(value):
        return "La clé du numéro FINESS est incorrecte."
    return None


def finess_with_key(first_eight: str) -> str:
    return first_eight + luhn_check_digit(first_eight)


def check_rpps(value: str) -> str | None:
    if not _RPPS_RE.match(value):
        return "Le numéro RPPS doit comporter 11 chiffres."
    if not luhn_valid(value):
        return "La clé du numéro RPPS est incorrecte."
    return None


def rpps_with_key(first_ten: str) -> str:
    return first_ten + luhn_check_digit(first_ten)


def idnps_from_rpps(rpps: str) -> str:
    """Identifiant national de professionnel de santé: '8' followed by the RPPS number."""
    return "8" + rpps


def _nir_number(body13: str) -> int:
    # Corsica: 2A -> 19, 2B -> 18 before computing the key.
    return int(body13.replace("2A", "19").replace("2B", "18"))


def nir_key(body13: str) -> str:
    return f"{97 - (_nir_number(body13) % 97):02d}"


def check_nir(value: str) -> str | None:
    """Matricule INS (NIR or NIA): 13 characters and a 2-digit key = 97 - (number mod 97)."""
    if not _NIR_RE.match(value):
        return (
            "Le matricule INS doit comporter 15 caractères : 13 (sexe, année, mois, lieu, ordre) "
            "puis une clé de 2 chiffres."
        )
    if nir_key(value[:13]) != value[13:]:
        return "La clé du matricule INS est incorrecte."
    return None


def check_nir_against_traits(value: str, sex: str, birth_date: date) -> str | None:
    """The matricule repeats the sex and the year of birth; a mismatch is an identity error."""
    first = value[0]
    expected = {"1": "M", "2": "F", "7": "M", "8": "F"}.get(first)
    if expected and sex in ("M", "F") and expected != sex:
        return "Le premier chiffre du matricule INS ne correspond pas au sexe."
    if value[1:3] != f"{birth_date.year % 100:02d}":
        return "L'année de naissance du matricule INS ne correspond pas à la date de naissance."
    month = int(value[3:5])
    if 1 <= month <= 12 and month != birth_date.month:
        return "Le mois de naissance du matricule INS ne correspond pas à la date de naissance."
    return None


def check_commune(value: str) -> str | None:
    """Code officiel géographique (INSEE) of a commune, or 99CCC for a birth abroad."""
    if not _COMMUNE_RE.match(value):
        return "Le code INSEE doit comporter 5 caractères (ex. 75056, 2A004, 99352)."
    if value.startswith("99"):
        return None  # country of birth abroad: 99 + INSEE country code
    if value.startswith("97"):
        if value[2] not in "123456":
            return "Code INSEE d'outre-mer inconnu."
        return None
    if check_departement(value[:2]) is not None or value[:3] == "000":
        return "Le code INSEE ne correspond à aucun département."
    return None


def departement_of_commune(commune: str) -> str:
    return commune[:3] if commune.startswith("97") else commune[:2]


def check_departement(value: str) -> str | None:
    if not _DEPARTEMENT_RE.match(value):
        return "Code de département inconnu (01 à 95, 2A, 2B, 971 à 976)."
    return None
