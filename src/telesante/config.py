"""Every setting of Télésanté, read from ``TELESANTE_*`` environment variables.

Each field is documented in ``docs/settings.md``; keep both in step.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    dicom_port: int = Field(
        11112,
        ge=0,
        le=65535,
        description="Port du récepteur DICOM (C-ECHO, C-STORE) démarré avec la plateforme ; 0 = pas de récepteur.",
    )
    dicom_host: str = Field(
        "127.0.0.1", description="Adresse d'écoute du récepteur DICOM (0.0.0.0 : toutes)."
    )
    dicom_ae_title: str = Field(
        "TELESANTE",
        min_length=1,
        max_length=16,
        pattern=r"^[ -\[\]-~]+$",
        description="Titre AE du récepteur DICOM (16 caractères ASCII au plus, sans barre oblique inverse).",
    )
    dicomweb_max_upload_bytes: int = Field(
        4 * 1024**3,
        ge=1024**2,
        description="Taille maximale d'un envoi STOW-RS (une étude entière en une requête), en octets.",
    )
    dicom_max_instance_bytes: int = Field(
        1024**3,
        ge=1024**2,
        description="Taille maximale d'une instance DICOM reçue (STOW-RS, dépôt depuis le navigateur), en octets.",
    )
    dicomweb_cors_origins: str = Field(
        "",
        description=(
            "Origines autorisées à appeler /dicomweb depuis un navigateur (visionneuse OHIF hébergée ailleurs), "
            "séparées par des virgules : https://ohif.chu.example.fr. Vide : aucune."
        ),
    )
    dicom_parse_processes: int = Field(
        2,
        ge=0,
        le=16,
        description="Processus auxiliaires qui lisent les fichiers DICOM reçus par STOW-RS (0 : dans le serveur).",
    )
    teleradiology_read_minutes_vital: int = Field(
        30,
        ge=5,
        le=10080,
        description="Téléradiologie : délai d'interprétation visé en urgence vitale, en minutes, depuis la réception "
        "des images.",
    )
    teleradiology_read_minutes_urgent: int = Field(
        120,
        ge=5,
        le=10080,
        description="Téléradiologie : délai d'interprétation visé en urgence, en minutes.",
    )
    teleradiology_read_minutes_scheduled: int = Field(
        2880,
        ge=5,
        le=43200,
        description="Téléradiologie : délai d'interprétation visé pour un examen programmé.",
    )
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
    sqlite_batch_part: int = Field(
        500,
        ge=1,
        le=100_000,
        description="SQLite : observations d'un lot FHIR enregistrées par transaction (le verrou d'écriture passe entre deux).",
    )
    sqlite_part_ms: int = Field(
        70,
        ge=0,
        le=10_000,
        description="SQLite : durée visée (ms) de chaque partie d'un lot FHIR (le verrou d'écriture tenu) ; 0 : parties de taille fixe.",
    )
    sqlite_checkpoint_ms: int = Field(
        100,
        ge=0,
        le=60_000,
        description="SQLite : intervalle (ms) des points de contrôle du journal faits en arrière-plan ; 0 : par l'écrivain, tous les 1 000 pages.",
    )
    gc_freeze: bool = Field(
        True,
        description="Au démarrage, soustraire au ramasse-miettes les objets chargés et espacer ses passes.",
    )
    jobs_enabled: bool = Field(
        True,
        description="Exécuter les minuteries (délais de réponse, escalades d'astreinte) dans cette instance.",
    )
    jobs_poll_seconds: float = Field(
        5.0, ge=0.5, le=300, description="Intervalle de scrutation des minuteries dues (secondes)."
    )
    jobs_lease_seconds: int = Field(
        300,
        ge=10,
        le=86_400,
        description="Bail d'une minuterie prise par une instance : passé ce délai sans fin d'exécution (instance "
        "arrêtée en cours), une autre instance la reprend.",
    )
    jobs_max_attempts: int = Field(
        5,
        ge=1,
        le=50,
        description="Nombre maximal d'essais d'une minuterie en échec (délai doublé à chaque essai).",
    )
    oncall_ack_minutes: int = Field(
        5,
        ge=1,
        le=120,
        description="Délai d'acquittement par défaut d'un appel d'astreinte avant escalade (minutes) : titulaire, "
        "puis second recours, puis chef de service.",
    )
    public_holidays: Literal["metropole", "alsace-moselle"] = Field(
        "metropole",
        description="Jours fériés que les disponibilités récurrentes sautent : metropole (11 jours) ou "
        "alsace-moselle (plus le Vendredi saint et le 26 décembre).",
    )
    scheduling_horizon_days: int = Field(
        92,
        ge=7,
        le=366,
        description="Créneaux proposés à la réservation : jusqu'à combien de jours à l'avance.",
    )
    appointment_reminder_hours: int = Field(
        24,
        ge=0,
        le=168,
        description="Rappel d'une téléconsultation programmée (courriel et SMS), en heures avant l'heure ; 0 : aucun.",
    )
    sms_backend: Literal["log"] = Field(
        "log",
        description="Passerelle SMS : log (les messages sont écrits dans le journal, numéro masqué). Une passerelle "
        "d'opérateur s'ajoute comme une classe de telesante.notifications.sms.",
    )
    video_stun_urls: str = Field(
        "",
        description="Serveurs STUN des appels vidéo, séparés par des virgules (stun:turn.example.fr:3478). "
        "Vide : aucun (appels sur le même réseau seulement, ou TURN).",
    )
    video_turn_urls: str = Field(
        "",
        description="Serveurs TURN (coturn), séparés par des virgules : turn:turn.example.fr:3478?transport=udp, "
        "turns:turn.example.fr:443?transport=tcp.",
    )
    video_turn_secret: SecretStr | None = Field(
        None,
        description="Secret partagé avec coturn (static-auth-secret, use-auth-secret) : des identifiants TURN "
        "à durée limitée en sont dérivés pour chaque participant.",
    )
    video_turn_ttl_seconds: int = Field(
        4 * 3600, ge=300, le=48 * 3600, description="Durée de validité des identifiants TURN, en secondes."
    )
    video_max_participants: int = Field(
        4, ge=2, le=4, description="Participants admis au plus dans un appel (maillage pair à pair)."
    )
    video_guest_link_hours: int = Field(
        24, ge=1, le=24 * 14, description="Durée de validité d'un lien d'invitation à un appel, en heures."
    )
    # --- TéléAVC: the region's thrombolysis protocol (docs/domains/stroke.md gives each value's source) -------
    stroke_iv_window_minutes: int = Field(
        270,
        ge=60,
        le=24 * 60,
        description="Fenêtre de la thrombolyse IV après le dernier moment vu normal (min).",
    )
    stroke_thrombectomy_window_minutes: int = Field(
        360, ge=60, le=24 * 60, description="Fenêtre standard de la thrombectomie (min)."
    )
    stroke_thrombectomy_extended_minutes: int = Field(
        1440,
        ge=60,
        le=48 * 60,
        description="Fenêtre de la thrombectomie chez des patients sélectionnés par l'imagerie (min).",
    )
    stroke_window_warning_minutes: int = Field(
        30,
        ge=1,
        le=120,
        description="Une fenêtre passe à l'orange quand il reste au plus ce nombre de minutes.",
    )
    stroke_door_to_imaging_target_minutes: int = Field(
        25, ge=1, le=240, description="Objectif porte-imagerie (min)."
    )
    stroke_door_to_needle_target_minutes: int = Field(
        60, ge=1, le=240, description="Objectif porte-aiguille (min)."
    )
    stroke_max_systolic: int = Field(
        185,
        ge=120,
        le=250,
        description="Pression systolique au-delà de laquelle la thrombolyse est contre-indiquée.",
    )
    stroke_max_diastolic: int = Field(
        110,
        ge=60,
        le=150,
        description="Pression diastolique au-delà de laquelle la thrombolyse est contre-indiquée.",
    )
    stroke_min_platelets: int = Field(
        100_000,
        ge=10_000,
        le=500_000,
        description="Plaquettes (/mm³) en dessous desquelles la thrombolyse est contre-indiquée.",
    )
    stroke_max_inr: float = Field(
        1.7, ge=1.0, le=5.0, description="INR au-delà duquel la thrombolyse est contre-indiquée."
    )
    stroke_doac_hours: int = Field(
        48,
        ge=0,
        le=168,
        description="Prise d'un anticoagulant oral direct depuis moins de ce nombre d'heures : contre-indication.",
    )
    stroke_lmwh_hours: int = Field(
        24,
        ge=0,
        le=168,
        description="HBPM à dose curative depuis moins de ce nombre d'heures : contre-indication.",
    )
    stroke_glucose_min_mmol: float = Field(
        2.8,
        ge=1.0,
        le=5.0,
        description="Glycémie (mmol/L) en dessous de laquelle il faut corriger avant de décider.",
    )
    stroke_glucose_max_mmol: float = Field(
        22.2,
        ge=10.0,
        le=40.0,
        description="Glycémie (mmol/L) au-delà de laquelle il faut corriger avant de décider.",
    )
    stroke_alteplase_mg_per_kg: float = Field(0.9, gt=0, le=2, description="Dose d'altéplase (mg/kg).")
    stroke_alteplase_max_mg: float = Field(90.0, gt=0, le=200, description="Dose maximale d'altéplase (mg).")
    stroke_alteplase_bolus_fraction: float = Field(
        0.10, gt=0, lt=1, description="Part de la dose d'altéplase donnée en bolus d'une minute."
    )
    stroke_alteplase_infusion_minutes: int = Field(
        60, ge=1, le=240, description="Durée de la perfusion du reste de la dose d'altéplase (min)."
    )
    stroke_tenecteplase_mg_per_kg: float = Field(
        0.25, gt=0, le=1, description="Dose de ténectéplase (mg/kg)."
    )
    stroke_tenecteplase_max_mg: float = Field(
        25.0, gt=0, le=100, description="Dose maximale de ténectéplase (mg)."
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Adresse publique de la plateforme, pour les liens des courriels de notification.",
    )
    smtp_host: str | None = Field(
        None, description="Serveur SMTP des notifications par courriel. Absent : aucun courriel n'est envoyé."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="Port du serveur SMTP.")
    smtp_security: Literal["starttls", "ssl", "none"] = Field(
        "starttls",
        description="Chiffrement SMTP : starttls (587), ssl (465) ou none (relais local seulement).",
    )
    smtp_user: str | None = Field(None, description="Identifiant SMTP (facultatif).")
    smtp_password: SecretStr | None = Field(None, description="Mot de passe SMTP (facultatif).")
    smtp_from: str = Field("Télésanté <no-reply@telesante.local>", description="Expéditeur des courriels.")
    smtp_timeout_seconds: float = Field(10.0, gt=0, le=120, description="Délai maximal d'un envoi SMTP.")
    redis_url: SecretStr | None = Field(
        None,
        description="URL Redis (redis://hôte:6379/0, rediss://… ou unix://…) : bus d'évènements partagé entre "
        "plusieurs instances. Absent : bus en mémoire (une seule instance).",
    )
    events_redis_channel: str = Field(
        "telesante:events",
        min_length=1,
        max_length=200,
        description="Canal Redis des évènements (distinct par installation partageant un même Redis).",
    )
    events_heartbeat_seconds: int = Field(
        15,
        ge=1,
        le=300,
        description="Intervalle des commentaires de maintien du flux /evenements (secondes).",
    )
    events_stream_max_seconds: int = Field(
        900,
        ge=1,
        le=86_400,
        description="Durée maximale d'une connexion /evenements ; le navigateur se reconnecte (et se réauthentifie).",
    )
    max_attachment_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1024,
        description="Taille maximale d'un document joint (PDF, JPEG, PNG), en octets (20 Mo par défaut).",
    )
    blob_backend: Literal["filesystem", "s3"] | None = Field(
        None,
        description="Stockage des fichiers : filesystem (data_dir/blobs) ou s3. Absent : s3 si TELESANTE_S3_BUCKET "
        "est défini, sinon filesystem.",
    )
    blob_direct_writes: bool = Field(
        True,
        description="Stockage filesystem : écrire les fichiers de 64 Kio à 16 Mio (images DICOM, PDF) en E/S directes "
        "(O_DIRECT), sans passer par le cache de pages.",
    )
    opentelemetry: bool = Field(
        False,
        description="Traces, métriques et journaux OpenTelemetry de FastAPI, quand un SDK OpenTelemetry est configuré "
        "dans le processus. Désactivé : FastAPI ne le cherche pas à chaque requête.",
    )
    zero_copy_send: bool = Field(
        True,
        description="Serveur HTTP (sans TLS) : envoyer les images DICOM déjà en cache de pages directement depuis le "
        "fichier projeté en mémoire, sans copie dans le processus ; et recevoir les corps STOW-RS d'au moins 1 Mio "
        "directement dans les tampons remis à l'application.",
    )
    s3_endpoint_url: str | None = Field(
        None, description="Adresse du service compatible S3 (MinIO, Ceph, Scaleway…). Absent : AWS."
    )
    s3_bucket: str | None = Field(None, description="Compartiment (bucket) S3 des fichiers.")
    s3_region: str | None = Field(None, description="Région S3 (ex. fr-par, eu-west-3).")
    s3_access_key_id: str | None = Field(
        None, description="Identifiant de clé d'accès S3. Absent : chaîne d'identification standard de boto3."
    )
    s3_secret_access_key: SecretStr | None = Field(None, description="Clé d'accès secrète S3.")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto",
        description="Adressage S3 : path (https://hôte/bucket/clé, MinIO/Ceph), virtual (https://bucket.hôte/clé) "
        "ou auto.",
    )
    s3_prefix: str = Field(
        "",
        max_length=200,
        pattern=r"^([A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*)?$",
        description="Préfixe des clés dans le compartiment (plusieurs installations dans un même bucket).",
    )

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

    @field_validator("dicomweb_cors_origins")
    @classmethod
    def _check_origins(cls, value: str) -> str:
        origins = [origin.strip() for origin in value.split(",") if origin.strip()]
        for origin in origins:
            if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
                raise ValueError(
                    f"Origine « {origin} » invalide : schéma, hôte et port seulement (https://ohif.example.fr), "
                    "sans chemin ni joker."
                )
        return ",".join(origins)

    @field_validator("video_stun_urls", "video_turn_urls")
    @classmethod
    def _check_ice_urls(cls, value: str, info) -> str:
        schemes = ("stun:", "stuns:") if info.field_name == "video_stun_urls" else ("turn:", "turns:")
        urls = [url.strip() for url in value.split(",") if url.strip()]
        for url in urls:
            if not url.startswith(schemes) or not re.fullmatch(
                r"[a-z]+:[A-Za-z0-9.\[\]:-]+(\?transport=(udp|tcp))?", url
            ):
                raise ValueError(
                    f"Adresse « {url} » invalide : attendu {schemes[0]}hôte:port (RFC 7064/7065), "
                    "éventuellement ?transport=udp ou tcp."
                )
        return ",".join(urls)

    @property
    def video_stun_url_list(self) -> list[str]:
        return [url.strip() for url in self.video_stun_urls.split(",") if url.strip()]

    @property
    def video_turn_url_list(self) -> list[str]:
        return [url.strip() for url in self.video_turn_urls.split(",") if url.strip()]

    @property
    def dicomweb_cors_origin_list(self) -> list[str]:
        return [origin for origin in self.dicomweb_cors_origins.split(",") if origin]

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from redis.connection import parse_url  # the client library's own parser

        try:
            parse_url(value.get_secret_value().strip())
        except ValueError:
            raise ValueError(
                "URL Redis attendue : redis://hôte:6379/0, rediss://hôte:6380/0 ou unix:///chemin/redis.sock"
            ) from None
        return SecretStr(value.get_secret_value().strip())

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'telesante.sqlite3').resolve()}"

    @property
    def effective_blob_backend(self) -> Literal["filesystem", "s3"]:
        if self.blob_backend is not None:
            return self.blob_backend
        return "s3" if self.s3_bucket else "filesystem"

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
