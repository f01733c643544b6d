"""Every setting of Télésanté, read from ``TELESANTE_*`` environment variables.

Each field is documented in ``docs/settings.md``; keep both in step.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TELESANTE_", extra="ignore")

    data_dir: Path = Field(
        Path("./var"), description="Dossier des données locales (base SQLite, clé, fichiers)."
    )
    database_url: str | None = Field(
        None,
        description="URL SQLAlchemy. Par défaut SQLite (WAL) dans data_dir. "
        "PostgreSQL : postgresql+asyncpg://utilisateur@hôte:5432/base",
    )
    host: str = Field("127.0.0.1", description="Adresse d'écoute du serveur web.")
    port: int = Field(8000, ge=1, le=65535, description="Port d'écoute du serveur web.")
    secret_key: SecretStr | None = Field(
        None,
        description="Clé secrète (CSRF). Générée dans data_dir/secret_key au premier lancement si absente.",
    )
    demo: bool = Field(False, description="Mode démonstration : région fictive et comptes de démonstration.")
    cookie_secure: bool = Field(True, description="Cookies marqués Secure (HTTPS ou 127.0.0.1/localhost).")
    session_hours: int = Field(12, ge=1, le=72, description="Durée de vie d'une session web, en heures.")
    session_idle_minutes: int = Field(
        60, ge=5, le=720, description="Inactivité au-delà de laquelle une session expire."
    )
    login_max_failures: int = Field(
        5, ge=1, description="Échecs de mot de passe avant verrouillage du compte."
    )
    login_lockout_minutes: int = Field(15, ge=1, description="Durée du verrouillage après trop d'échecs.")
    login_ip_limit: int = Field(30, ge=1, description="Tentatives de connexion par adresse IP par fenêtre.")
    login_ip_window_minutes: int = Field(10, ge=1, description="Fenêtre du limiteur de tentatives par IP.")
    break_glass_hours: int = Field(12, ge=1, le=72, description="Durée d'un accès d'urgence (bris de glace).")
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Taille maximale d'un corps de requête (octets)."
    )
    log_level: str = Field("INFO", description="Niveau de journalisation (DEBUG, INFO, WARNING, ERROR).")

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.removeprefix("sqlite:///")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'telesante.sqlite3').resolve()}"

    def effective_secret_key(self) -> str:
        """The configured key, else the one kept in data_dir (created on first use, mode 0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
