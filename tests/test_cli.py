"""The ``telesante`` command, run in-process against a SQLite database of its own (not the conftest
transaction): each command opens its own engine and commits, exactly as an operator would run it."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from telesante.cli import alembic_ini_path, app
from telesante.config import Settings
from telesante.main import create_app

EMAIL = "operateur@exemple.fr"
PASSWORD = "un-mot-de-passe-solide-42"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def cli(data_dir: Path):
    """Run ``telesante ARGS…`` with TELESANTE_DATA_DIR pointing at a fresh directory (SQLite)."""
    runner = CliRunner()
    env = {"TELESANTE_DATA_DIR": str(data_dir), "TELESANTE_DATABASE_URL": None, "TELESANTE_DEMO": "0"}

    def invoke(*args: str, **extra_env: str):
        return runner.invoke(app, list(args), env={**env, **extra_env}, catch_exceptions=False)

    return invoke


@pytest.fixture
def migrated(cli) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output


@pytest.fixture
def admin_email(cli, migrated) -> str:
    result = cli(
        "account",
        "create-admin",
        "--email",
        EMAIL,
        "--family-name",
        "Opérateur",
        "--given-name",
        "Alex",
        "--password",
        PASSWORD,
    )
    assert result.exit_code == 0, result.output
    return EMAIL


def _db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "telesante.sqlite3")


def _get_me(data_dir: Path, token: str) -> httpx.Response:
    """GET /api/me with a bearer token, through the real application on the CLI's database."""

    async def call() -> httpx.Response:
        application = create_app(Settings(data_dir=data_dir, secret_key="cle-de-test-cli", demo=False))
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
                return await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        finally:
            await application.state.database.dispose()

    return asyncio.run(call())


def test_alembic_ini_is_found_from_the_package():
    assert alembic_ini_path().is_file()


def test_db_upgrade_builds_the_schema_and_check_agrees(cli, data_dir):
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    with _db(data_dir) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alembic_version", "patients", "accounts", "audit_events"} <= tables

    check = cli("db", "check")
    assert check.exit_code == 0, check.output


def test_token_create_prints_only_the_token_and_it_authenticates(cli, admin_email, data_dir):
    result = cli("token", "create", "--email", admin_email, "--name", "intégration", "--days", "30")

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert re.fullmatch(r"tsa_[A-Za-z0-9_\-]{20,}", token), result.stdout
    token_id = re.search(r"Jeton ([0-9a-f\-]{36})", result.stderr).group(1)

    me = _get_me(data_dir, token)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == admin_email
    assert me.json()["auth_method"] == "token"

    revoked = cli("token", "revoke", token_id)
    assert revoked.exit_code == 0, revoked.output
    assert _get_me(data_dir, token).status_code == 401


def test_domain_errors_are_french_messages_with_status_1(cli, migrated):
    result = cli("token", "create", "--email", "inconnu@exemple.fr")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Aucun compte actif pour inconnu@exemple.fr" in result.stderr
    assert "Traceback" not in result.output


def test_account_create_refuses_an_unknown_professional(cli, migrated):
    result = cli(
        "account",
        "create",
        "--email",
        "x@exemple.fr",
        "--professional-id",
        str(uuid.uuid4()),
        "--password",
        PASSWORD,
    )

    assert result.exit_code == 1
    assert "Professionnel introuvable" in result.stderr


def test_a_database_without_schema_asks_for_db_upgrade(cli):
    result = cli("audit", "verify")

    assert result.exit_code == 1
    assert "telesante db upgrade" in result.stderr
    assert "Traceback" not in result.output


def test_an_unreachable_database_is_a_message(cli):
    result = cli("audit", "verify", TELESANTE_DATABASE_URL="postgresql://postgres@127.0.0.1:1/absente")

    assert result.exit_code == 1
    assert "Base de données injoignable" in result.stderr
    assert "Traceback" not in result.output


def test_audit_verify_accepts_an_intact_chain_and_names_the_tampered_row(cli, admin_email, data_dir):
    intact = cli("audit", "verify")
    assert intact.exit_code == 0, intact.output
    rows = int(re.search(r"(\d+) ligne", intact.stdout).group(1))
    assert rows >= 2  # professional and membership created by create-admin

    # An attacker with database rights: the append-only trigger is dropped, then a row is rewritten.
    with _db(data_dir) as db:
        db.execute("DROP TRIGGER audit_events_no_update")
        db.execute("UPDATE audit_events SET actor = 'personne' WHERE seq = 2")

    tampered = cli("audit", "verify")
    assert tampered.exit_code == 1
    assert "seq=2" in tampered.stderr
    assert "contenu modifié" in tampered.stderr


def test_audit_verify_notices_a_deleted_row(cli, admin_email, data_dir):
    with _db(data_dir) as db:
        db.execute("DROP TRIGGER audit_events_no_delete")
        db.execute("DELETE FROM audit_events WHERE seq = 1")

    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert "seq=1" in result.stderr


def test_demo_seed_refuses_outside_demo_mode(cli, migrated, data_dir):
    result = cli("demo", "seed")

    assert result.exit_code == 2
    assert "TELESANTE_DEMO=1" in result.stderr
    with _db(data_dir) as db:
        assert db.execute("SELECT count(*) FROM organisations").fetchone() == (0,)


def test_dicom_peers_are_declared_per_organisation(cli, migrated, data_dir):
    from telesante.config import Settings
    from telesante.db import Database
    from telesante.directory import service as directory_service
    from telesante.directory.schemas import OrganisationCreate
    from telesante.kit.identifiers import finess_with_key

    finess = finess_with_key("35000999")

    async def organisation() -> None:
        database = Database(Settings(data_dir=data_dir, database_url=None))
        async with database.sessionmaker() as session:
            await directory_service.create_organisation(
                session,
                None,
                OrganisationCreate(
                    finess=finess,
                    name="CH de Fougères",
                    type="ch",
                    commune_insee="35115",
                    city="Fougères",
                    postal_code="35300",
                ),
            )
            await session.commit()
        await database.dispose()

    unknown = cli("dicom", "peer-add", "--finess", finess, "--ae", "CT_FOUGERES")
    assert unknown.exit_code == 1 and finess in unknown.stderr
    asyncio.run(organisation())
    added = cli(
        "dicom", "peer-add", "--finess", finess, "--ae", "CT_FOUGERES", "--description", "Scanner SAU"
    )
    assert added.exit_code == 0, added.output
    again = cli("dicom", "peer-add", "--finess", finess, "--ae", "CT_FOUGERES")
    assert again.exit_code == 1 and "déjà déclaré" in again.stderr
    bad = cli("dicom", "peer-add", "--finess", finess, "--ae", "TITRE_BIEN_TROP_LONG_POUR_DICOM")
    assert bad.exit_code == 1 and "16 caractères" in bad.stderr
    listed = cli("dicom", "peers")
    assert listed.stdout.splitlines() == ["CT_FOUGERES\tCH de Fougères\tactif\tScanner SAU"]
