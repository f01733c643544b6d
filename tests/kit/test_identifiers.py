from datetime import date

import pytest

from telesante.kit import communes, identifiers
from telesante.kit.text import fold


@pytest.mark.parametrize("finess", ["350005179", "750712184", "540002698"])
def test_real_finess_numbers_pass(finess):
    assert identifiers.check_finess(finess) is None


def test_finess_bad_key_and_format():
    assert "clé" in identifiers.check_finess("350005178")
    assert "9 caractères" in identifiers.check_finess("35000517")


def test_rpps_luhn():
    good = identifiers.rpps_with_key("1000000123")
    assert identifiers.check_rpps(good) is None
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert "clé" in identifiers.check_rpps(bad)
    assert identifiers.idnps_from_rpps(good) == "8" + good


def test_nir_key_including_corsica():
    # 1 55 03 2A 004 123 : Corsica is computed with 2A -> 19
    body = "155032A004123"
    key = identifiers.nir_key(body)
    assert int(key) == 97 - int("1550319004123") % 97
    assert identifiers.check_nir(body + key) is None
    assert "clé" in identifiers.check_nir(body + f"{(int(key) + 1) % 97:02d}")
    assert "15 caractères" in identifiers.check_nir("12345")


def test_nir_against_traits():
    body = "2540335238001"
    nir = body + identifiers.nir_key(body)
    assert identifiers.check_nir_against_traits(nir, "F", date(1954, 3, 12)) is None
    assert "sexe" in identifiers.check_nir_against_traits(nir, "M", date(1954, 3, 12))
    assert "année" in identifiers.check_nir_against_traits(nir, "F", date(1955, 3, 12))
    assert "mois" in identifiers.check_nir_against_traits(nir, "F", date(1954, 4, 12))


def test_commune_codes():
    assert communes.is_known_commune("35238")
    assert communes.is_known_commune("2A004")
    assert communes.is_known_commune("20001")  # pre-1976 Corsican code, still valid as a birth place
    assert not communes.is_known_commune("75999")
    assert identifiers.check_commune("99352") is None  # born abroad (country code)
    assert identifiers.check_commune("ABCDE") is not None


def test_fold_is_accent_and_case_insensitive():
    assert fold("  Lefèvre-d’Arc ") == "LEFEVRE D ARC"
    assert fold("Œuvray") == "OEUVRAY"
