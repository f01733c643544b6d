"""``telesante demo seed`` on a SQLite database of its own, run twice: the second run changes nothing.

The seed goes through the real services (argon2 hashing, audit rows...), so it is seeded once per module.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from telesante.auth import service as auth_service
from telesante.cli import app
from telesante.config import Settings
from telesante.db import Database
from telesante.demo.region import ORGANISATIONS, PATIENTS_BY_REGISTRANT, SHARED_RADIOLOGY
from telesante.demo.seed import DEMO_PASSWORD, DEMO_TOTP_SECRET
from telesante.directory.models import ADMIN_ROLES, Role
from telesante.kit import communes, identifiers
from telesante.kit.models import Base

pytestmark = pytest.mark.slow


@dataclass
class Seeded:
    data_dir: Path
    first_output: str
    second_output: str
    counts_after_first: dict[str, int]
    counts_after_second: dict[str, int]

    def rows(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.data_dir / "telesante.sqlite3") as db:
            return db.execute(sql, params).fetchall()


def _table_counts(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(data_dir / "telesante.sqlite3") as db:
        return {
            table.name: db.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0]  # noqa: S608
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Seeded:
    data_dir = tmp_path_factory.mktemp("demo")
    runner = CliRunner()
    env = {"TELESANTE_DATA_DIR": str(data_dir), "TELESANTE_DATABASE_URL": None, "TELESANTE_DEMO": "1"}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    first = runner.invoke(app, ["demo", "seed"], env=env, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    counts_first = _table_counts(data_dir)
    second = runner.invoke(app, ["demo", "seed"], env=env, catch_exceptions=False)
    assert second.exit_code == 0, second.output
    return Seeded(data_dir, first.stdout, second.stdout, counts_first, _table_counts(data_dir))


def test_second_run_changes_nothing(seeded):
    assert seeded.counts_after_second == seeded.counts_after_first
    created = [int(n) for n in re.findall(r"(\d+) créé\(s\)", seeded.second_output)]
    assert created and not any(created), seeded.second_output


def test_about_two_hundred_patients_spread_over_the_region(seeded):
    assert seeded.counts_after_first["patients"] == sum(n for _, n in PATIENTS_BY_REGISTRANT) == 200
    holders = seeded.rows("SELECT count(DISTINCT organisation_id) FROM care_relationships")[0][0]
    assert holders >= 10
    statuses = Counter(dict(seeded.rows("SELECT identity_status, count(*) FROM patients GROUP BY 1")))
    assert set(statuses) == {"provisoire", "recuperee", "validee", "qualifiee"}
    assert seeded.counts_after_first["consents"] > 0


def test_every_role_has_an_account(seeded):
    roles = {
        role
        for (role,) in seeded.rows(
            "SELECT DISTINCT m.role FROM accounts a "
            "JOIN memberships m ON m.professional_id = a.professional_id"
        )
    }
    assert roles == {role.value for role in Role}


def test_administrators_have_totp_and_nobody_must_change_password(seeded):
    accounts = seeded.rows(
        "SELECT a.email, a.totp_secret, a.totp_enabled_at, a.must_change_password, m.role FROM accounts a "
        "JOIN memberships m ON m.professional_id = a.professional_id"
    )
    admins = [row for row in accounts if row[4] in {r.value for r in ADMIN_ROLES}]
    assert {row[0] for row in admins} >= {"admin@demo.telesante.fr", "admin.chu@demo.telesante.fr"}
    for email, secret, enabled_at, _, _ in admins:
        assert secret == DEMO_TOTP_SECRET and enabled_at is not None, email
    assert not any(row[3] for row in accounts)
    assert all(row[0].endswith("@demo.telesante.fr") for row in accounts)
    assert DEMO_TOTP_SECRET in seeded.first_output and DEMO_PASSWORD in seeded.first_output


def test_identifiers_have_the_real_format(seeded):
    for finess, commune in seeded.rows("SELECT finess, commune_insee FROM organisations"):
        assert identifiers.check_finess(finess) is None
        assert communes.is_known_commune(commune)
    for (rpps,) in seeded.rows("SELECT rpps FROM professionals WHERE rpps IS NOT NULL"):
        assert identifiers.check_rpps(rpps) is None
    for matricule, oid, place in seeded.rows(
        "SELECT ins_matricule, ins_oid, birth_place_insee FROM patients WHERE ins_matricule IS NOT NULL"
    ):
        assert identifiers.check_nir(matricule) is None
        assert oid == identifiers.OID_INS_NIR_DEMO
        assert matricule[5:10] == place
    assert len(seeded.rows("SELECT id FROM organisations")) == len(ORGANISATIONS)


def test_radiologists_are_shared_by_three_hospitals(seeded):
    rows = seeded.rows(
        "SELECT p.family_name, count(DISTINCT m.organisation_id) FROM memberships m "
        "JOIN professionals p ON p.id = m.professional_id "
        "JOIN organisation_services s ON s.id = m.service_id "
        "WHERE m.role = 'expert' AND s.type = 'radiologie' GROUP BY p.id"
    )
    assert len(rows) >= 2
    assert all(count == len(SHARED_RADIOLOGY) for _, count in rows)


def test_demo_accounts_log_in_with_the_documented_credentials(seeded):
    settings = Settings(data_dir=seeded.data_dir, secret_key="cle-de-test", demo=True)

    async def login(email: str, password: str):
        database = Database(settings)
        try:
            async with database.sessionmaker() as session:
                outcome = await auth_service.login(
                    session, settings, email=email, password=password, ip="192.0.2.1", user_agent="test"
                )
                await session.rollback()
                return outcome
        finally:
            await database.dispose()

    clinician = asyncio.run(login("urgentiste@demo.telesante.fr", DEMO_PASSWORD))
    assert clinician.ok and clinician.next_step is None
    admin = asyncio.run(login("admin@demo.telesante.fr", DEMO_PASSWORD))
    assert admin.ok and admin.next_step == "totp"
    assert len(pyotp.TOTP(DEMO_TOTP_SECRET).now()) == 6


def test_audit_chain_of_the_seed_is_intact(seeded):
    env = {"TELESANTE_DATA_DIR": str(seeded.data_dir), "TELESANTE_DATABASE_URL": None}
    result = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert f"{seeded.counts_after_first['audit_events']} ligne(s)" in result.stdout


def test_head_trauma_offer_routes_to_the_neurosurgeon_on_call(seeded):
    rows = seeded.rows(
        "SELECT o.routing, o.form_code, o.urgent, r.name FROM offers o JOIN oncall_rotas r ON r.id = o.rota_id"
    )
    assert sorted(rows) == [
        ("on_call", "alerte_avc", 1, "Astreinte TéléAVC de la région"),
        ("on_call", "trauma_cranien", 1, "Astreinte de neurochirurgie du CHU"),
    ]
    on_duty = seeded.rows(
        "SELECT p.family_name, s.role FROM oncall_shifts s JOIN professionals p ON p.id = s.professional_id "
        "JOIN oncall_rotas r ON r.id = s.rota_id "
        "WHERE r.name = 'Astreinte de neurochirurgie du CHU' AND s.starts_at <= ? AND s.ends_at > ? "
        "AND s.cancelled_at IS NULL ORDER BY s.role DESC",
        *(2 * [datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")]),
    )
    assert [role for _, role in on_duty] == ["primary", "backup"]


def test_a_head_ct_is_received_and_matched_to_its_patient(seeded):
    studies = seeded.rows("SELECT patient_match, instance_count, modalities, patient_id FROM imaging_studies")
    assert len(studies) == 1
    match, count, modalities, patient_id = studies[0]
    assert (match, count, modalities) == ("ipp", 120, "CT") and patient_id is not None
    assert seeded.rows("SELECT count(*) FROM offers WHERE form_code = 'teleradiologie'") == [(1,)]
