"""The ``telesante`` command: serve the application, migrate the database, seed the demo region, manage
API tokens and accounts, verify the audit chain.

Each command that touches the database opens its own engine from :class:`~telesante.config.Settings`, runs
in **one transaction** (committed on success, rolled back on error) and disposes of the engine. Domain errors
print their French message on stderr and exit with status 1; a user never sees a traceback.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

import telesante
from telesante.config import Settings
from telesante.db import Database, transaction
from telesante.kit import context
from telesante.kit.errors import DomainError

T = TypeVar("T")

app = typer.Typer(
    help="Télésanté — plateforme régionale de télémédecine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Base de données : migrations Alembic.", no_args_is_help=True)
demo_app = typer.Typer(help="Région de démonstration (TELESANTE_DEMO=1).", no_args_is_help=True)
token_app = typer.Typer(help="Jetons d'API (Authorization: Bearer).", no_args_is_help=True)
account_app = typer.Typer(help="Comptes utilisateurs (chemin opérateur).", no_args_is_help=True)
audit_app = typer.Typer(help="Journal d'audit chaîné.", no_args_is_help=True)
jobs_app = typer.Typer(help="Minuteries durables (escalades, délais de réponse).", no_args_is_help=True)
dicom_app = typer.Typer(help="Émetteurs DICOM connus (titres AE par établissement).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(token_app, name="token")
app.add_typer(account_app, name="account")
app.add_typer(audit_app, name="audit")
app.add_typer(jobs_app, name="jobs")
app.add_typer(dicom_app, name="dicom")


# --- plumbing -------------------------------------------------------------------------------------------


def _settings() -> Settings:
    """A fresh Settings for each command (not the cached one: the environment is what counts)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"TELESANTE_{'_'.join(map(str, error['loc'])).upper()} : {error['msg']}" for error in exc.errors()
        )
        raise _fail(f"Configuration invalide — {problems}", code=2) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _run(work: Callable[[AsyncSession], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run ``work(session)`` in one transaction on a fresh engine; domain errors become exit status 1."""
    settings = settings or _settings()

    async def main() -> T:
        context.bind(context.RequestContext(channel="cli"))
        database = Database(settings)
        try:
            async with transaction(database.sessionmaker) as session:
                return await work(session)
        finally:
            await database.dispose()

    with _database_errors():
        try:
            return asyncio.run(main())
        except DomainError as exc:
            raise _fail(exc.message) from None


@contextmanager
def _database_errors() -> Iterator[None]:
    """Database failures become a one-line French message and exit status 1 (no traceback)."""
    try:
        yield
    except SQLAlchemyError as exc:
        hint = ""
        if isinstance(exc, OperationalError | ProgrammingError):  # missing table, server down
            hint = "\nLa base est-elle joignable et à jour ? Lancez « telesante db upgrade »."
        raise _fail(f"Erreur de base de données : {_first_line(exc)}{hint}") from None
    except OSError as exc:  # connection refused, unknown host (the driver's own errors)
        raise _fail(f"Base de données injoignable : {exc}") from None


def _first_line(exc: SQLAlchemyError) -> str:
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0]


def alembic_ini_path() -> Path:
    """alembic.ini at the root of the source tree (editable install: src/telesante -> ../..)."""
    return Path(telesante.__file__).resolve().parents[2] / "alembic.ini"


def _alembic_config(settings: Settings):
    from alembic.config import Config

    ini = alembic_ini_path()
    if not ini.is_file():
        raise _fail(f"Fichier de configuration Alembic introuvable : {ini}")
    if settings.effective_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    config = Config(str(ini))
    config.attributes["url"] = settings.effective_database_url
    return config


def _parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _fail(f"{what} invalide : « {value} » n'est pas un identifiant (UUID).") from None


# --- serve ----------------------------------------------------------------------------------------------


@app.command()
def serve(
    reload: Annotated[bool, typer.Option(help="Recharger à chaque modification (développement).")] = False,
) -> None:
    """Lancer le serveur web (uvicorn) sur TELESANTE_HOST:TELESANTE_PORT."""
    import uvicorn

    from telesante.web import zerocopy

    settings = _settings()
    uvicorn.run(
        "telesante.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        reload=reload,
        log_level=settings.log_level.lower(),
        proxy_headers=False,
        http=zerocopy.protocol(),  # uvicorn's httptools protocol, plus files sent by the kernel (web/zerocopy.py)
    )


# --- db -------------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Révision cible.")] = "head") -> None:
    """Appliquer les migrations (alembic upgrade head)."""
    from alembic import command

    settings = _settings()
    config = _alembic_config(settings)
    with _database_errors():
        command.upgrade(config, revision)
    typer.echo(f"Base à jour ({_safe_url(settings)}).", err=True)


@db_app.command("check")
def db_check() -> None:
    """Vérifier que les modèles et les migrations concordent (alembic check)."""
    from alembic import command
    from alembic.util import AutogenerateDiffsDetected, CommandError

    config = _alembic_config(_settings())
    try:
        with _database_errors():
            command.check(config)
    except AutogenerateDiffsDetected as exc:
        raise _fail(f"Les modèles diffèrent des migrations : {exc}") from None
    except CommandError as exc:
        raise _fail(f"Vérification impossible : {exc}") from None
    typer.echo("Modèles et migrations concordent.")


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.effective_database_url).render_as_string(hide_password=True)


# --- demo -----------------------------------------------------------------------------------------------


@demo_app.command("seed")
def demo_seed() -> None:
    """Créer la région fictive « Armor-Vilaine » (idempotent : une seconde exécution ne change rien)."""
    settings = _settings()
    if not settings.demo:
        raise _fail(
            "Le mode démonstration est désactivé : la région fictive n'est créée que si TELESANTE_DEMO=1.",
            code=2,
        )
    from telesante.demo import seed
    from telesante.storage.blobs import make_blob_store

    store = make_blob_store(settings)
    summary = _run(lambda session: seed.seed_demo(session, store), settings)
    typer.echo(seed.format_summary(summary))


# --- tokens ---------------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    email: Annotated[str, typer.Option("--email", help="Adresse du compte.")],
    name: Annotated[str, typer.Option("--name", help="Nom du jeton (usage).")] = "cli",
    days: Annotated[int | None, typer.Option(help="Validité en jours (sans limite par défaut).")] = None,
) -> None:
    """Créer un jeton d'API : la valeur est affichée seule sur la sortie standard, une seule fois."""
    from telesante.auth import service as auth_service

    async def work(session: AsyncSession) -> tuple[str, str]:
        token, api_token = await auth_service.create_api_token(
            session, email=email, name=name, valid_days=days
        )
        return token, str(api_token.id)

    token, token_id = _run(work)
    typer.echo(f"Jeton {token_id} créé pour {email.strip().lower()}.", err=True)
    typer.echo(token)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="Identifiant du jeton (UUID).")]) -> None:
    """Révoquer un jeton d'API."""
    from telesante.auth import service as auth_service

    parsed = _parse_uuid(token_id, "Identifiant de jeton")

    async def work(session: AsyncSession) -> None:
        await auth_service.revoke_api_token(session, parsed)

    _run(work)
    typer.echo(f"Jeton {parsed} révoqué.")


# --- DICOM peers ----------------------------------------------------------------------------------------


@dicom_app.command("peer-add")
def dicom_peer_add(
    finess: Annotated[str, typer.Option("--finess", help="FINESS de l'établissement émetteur.")],
    ae_title: Annotated[str, typer.Option("--ae", help="Titre AE appelant (scanner, PACS).")],
    description: Annotated[str, typer.Option(help="Description (ex. « Scanner des urgences »).")] = "",
) -> None:
    """Déclarer un émetteur DICOM d'un établissement : seuls les émetteurs connus peuvent envoyer."""
    from telesante.directory.repository import OrganisationRepository
    from telesante.imaging import service as imaging_service
    from telesante.kit.errors import NotFound

    async def work(session: AsyncSession) -> str:
        organisation = await OrganisationRepository(session).get_by_finess(finess.strip())
        if organisation is None:
            raise NotFound(f"Aucun établissement de FINESS {finess.strip()}.")
        peer = await imaging_service.register_peer(session, None, organisation.id, ae_title, description)
        return f"Émetteur « {peer.ae_title} » déclaré pour {organisation.name}."

    typer.echo(_run(work))


@dicom_app.command("peers")
def dicom_peers() -> None:
    """Lister les émetteurs DICOM déclarés."""
    from telesante.imaging import service as imaging_service

    async def work(session: AsyncSession) -> list[str]:
        return [
            f"{peer.ae_title}\t{name}\t{'actif' if peer.active else 'inactif'}\t{peer.description}"
            for peer, name in await imaging_service.list_peers(session)
        ]

    for line in _run(work):
        typer.echo(line)


PasswordOption = Annotated[
    str,
    typer.Option(
        prompt=True, hide_input=True, confirmation_prompt=True, help="Mot de passe (demandé s'il est omis)."
    ),
]

# --- accounts -------------------------------------------------------------------------------------------


@account_app.command("create")
def account_create(
    email: Annotated[str, typer.Option("--email", help="Adresse électronique (identifiant de connexion).")],
    professional_id: Annotated[str, typer.Option(help="Professionnel de l'annuaire (UUID).")],
    password: PasswordOption,
) -> None:
    """Créer le compte d'un professionnel déjà inscrit dans l'annuaire."""
    from telesante.auth import service as auth_service

    parsed = _parse_uuid(professional_id, "Identifiant de professionnel")

    async def work(session: AsyncSession) -> str:
        account = await auth_service.create_account(
            session, None, professional_id=parsed, email=email, password=password
        )
        return str(account.id)

    account_id = _run(work)
    typer.echo(f"Compte {account_id} créé pour {email.strip().lower()}.")


@account_app.command("create-admin")
def account_create_admin(
    email: Annotated[str, typer.Option("--email", help="Adresse électronique (identifiant de connexion).")],
    family_name: Annotated[str, typer.Option("--family-name", help="Nom de famille.")],
    given_name: Annotated[str, typer.Option("--given-name", help="Prénom.")],
    password: PasswordOption,
) -> None:
    """Premier administrateur régional d'une installation neuve (professionnel, rattachement et compte).

    Le second facteur (TOTP) est enrôlé à la première connexion.
    """
    from telesante.auth import service as auth_service
    from telesante.directory import service as directory_service
    from telesante.directory.models import Profession, Role
    from telesante.directory.schemas import MembershipCreate, ProfessionalCreate
    from telesante.kit.schemas import parse_input

    try:
        data = parse_input(
            ProfessionalCreate,
            {
                "family_name": family_name,
                "given_name": given_name,
                "profession": Profession.ADMINISTRATIF,
                "email": email,
            },
        )
    except DomainError as exc:
        raise _fail(exc.message) from None

    async def work(session: AsyncSession) -> str:
        professional = await directory_service.create_professional(session, None, data)
        await directory_service.add_membership(
            session, None, MembershipCreate(professional_id=professional.id, role=Role.REGIONAL_ADMIN)
        )
        account = await auth_service.create_account(
            session, None, professional_id=professional.id, email=email, password=password
        )
        return str(account.id)

    account_id = _run(work)
    typer.echo(f"Administrateur régional {account_id} créé pour {email.strip().lower()} (TOTP à enrôler).")


# --- audit ----------------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Recalculer toute la chaîne d'empreintes du journal d'audit ; statut 1 à la première ligne altérée."""
    from telesante.audit.service import verify_chain

    report = _run(verify_chain)
    if report.ok:
        typer.echo(f"Journal d'audit intègre : {report.rows} ligne(s), empreinte de tête {report.head_hash}.")
        return
    raise _fail(
        f"Journal d'audit ALTÉRÉ à la ligne seq={report.first_bad_seq} : {report.problem}. "
        f"{report.rows} ligne(s) vérifiée(s) avant elle, dernière empreinte sûre {report.head_hash}."
    )


# --- jobs -----------------------------------------------------------------------------------------------


@jobs_app.command("run-due")
def jobs_run_due(
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="Nombre maximal de minuteries exécutées.")
    ] = 500,
) -> None:
    """Exécuter une fois les minuteries échues (sans attendre l'instance web ; sûr en parallèle de celle-ci)."""
    from telesante.jobs.runner import load_handlers, worker_name
    from telesante.jobs.service import run_due_jobs

    settings = _settings()

    async def main() -> int:
        context.bind(context.RequestContext(channel="cli"))
        load_handlers()
        database = Database(settings)
        try:
            return await run_due_jobs(
                database.sessionmaker,
                worker=f"cli:{worker_name()}",
                limit=limit,
                lease=timedelta(seconds=settings.jobs_lease_seconds),
            )
        finally:
            await database.dispose()

    with _database_errors():
        done = asyncio.run(main())
    typer.echo(f"{done} minuterie(s) exécutée(s).")


if __name__ == "__main__":  # pragma: no cover
    app()
