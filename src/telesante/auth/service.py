"""Login (password, TOTP), throttling and lockout, sessions, API tokens, account administration."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pyotp
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth import security
from telesante.auth.models import Account, ApiToken, ExternalIdentity, LoginAttempt, WebSession
from telesante.auth.principal import Grant, Principal
from telesante.auth.repository import (
    AccountRepository,
    ApiTokenRepository,
    ExternalIdentityRepository,
    LoginAttemptRepository,
    WebSessionRepository,
)
from telesante.config import Settings
from telesante.db import after_commit
from telesante.directory.models import ADMIN_ROLES, REGIONAL_ROLES, Role
from telesante.directory.repository import ProfessionalRepository
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from telesante.kit.pagination import Page, PageRequest

SESSION_PREFIX = "tss"
API_TOKEN_PREFIX = "tsa"  # noqa: S105 - a prefix, not a secret
TOTP_ISSUER = "Télésanté"
GENERIC_LOGIN_ERROR = (
    "Adresse électronique ou mot de passe incorrect (après plusieurs échecs, le compte est verrouillé "
    "quelques minutes)."
)
LOCKED_ERROR = "Compte temporairement verrouillé après trop d'échecs : réessayez dans quelques minutes."


@dataclass
class LoginOutcome:
    ok: bool
    error: str | None = None
    session_token: str | None = None
    next_step: str | None = None  # None | "totp" | "totp_enrol" | "change_password"


RevocationListener = Callable[[uuid.UUID], None]
_revocation_listeners: list[RevocationListener] = []


def on_credentials_revoked(listener: RevocationListener) -> None:
    """``listener(account_id)`` runs in this process once a transaction that closed that account's sessions or
    tokens (logout, password change or reset, deactivation, token revoked) has committed: decisions kept in memory
    for the account (the imaging frames fast path) are dropped at once, not when they expire."""
    if listener not in _revocation_listeners:
        _revocation_listeners.append(listener)


def _credentials_revoked(session: AsyncSession, account_id: uuid.UUID) -> None:
    async def notify() -> None:
        for listener in _revocation_listeners:
            listener(account_id)

    after_commit(session, notify)


async def build_principal(session: AsyncSession, account: Account, auth_method: str) -> Principal:
    grants = await AccountRepository(session).active_grants(account.professional_id)
    return Principal(
        account_id=account.id,
        email=account.email,
        professional_id=account.professional_id,
        display_name=account.professional.display_name,
        grants=tuple(Grant(m.role, m.organisation_id, name, m.service_id) for m, name in grants),
        auth_method=auth_method,
    )


async def requires_totp(session: AsyncSession, account: Account) -> bool:
    """TOTP is mandatory for administrators, and for anyone who enrolled."""
    if account.totp_enabled_at is not None:
        return True
    grants = await AccountRepository(session).active_grants(account.professional_id)
    return any(m.role in ADMIN_ROLES for m, _ in grants)


async def login(
    session: AsyncSession, settings: Settings, *, email: str, password: str, ip: str, user_agent: str
) -> LoginOutcome:
    """Check a password. Failures are *returned* (not raised) so that their count is committed."""
    now = clock.now()
    email = email.strip().lower()
    attempts = LoginAttemptRepository(session)
    window_start = now - timedelta(minutes=settings.login_ip_window_minutes)
    if await attempts.count_failures_from_ip(ip, window_start) >= settings.login_ip_limit:
        raise TooManyRequests(
            "Trop de tentatives de connexion depuis cette adresse. Réessayez dans quelques minutes."
        )
    account = await AccountRepository(session).get_by_email(email)
    password_ok = security.verify_password(account.password_hash if account else None, password)
    if account is None or not account.active:
        await attempts.add(LoginAttempt(email=email[:254], ip=ip, succeeded=False, at=now))
        return LoginOutcome(False, GENERIC_LOGIN_ERROR)
    if account.locked_until is not None and account.locked_until > now:
        await attempts.add(LoginAttempt(email=email, ip=ip, succeeded=False, at=now))
        return LoginOutcome(False, GENERIC_LOGIN_ERROR)
    if not password_ok:
        await attempts.add(LoginAttempt(email=email, ip=ip, succeeded=False, at=now))
        account.failed_logins += 1
        if account.failed_logins >= settings.login_max_failures:
            account.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
            account.failed_logins = 0
        await session.flush()
        return LoginOutcome(False, GENERIC_LOGIN_ERROR)

    await attempts.add(LoginAttempt(email=email, ip=ip, succeeded=True, at=now))
    needs_totp = await requires_totp(session, account)
    if not needs_totp:  # with a second factor, failures are cleared only once the code is right
        account.failed_logins = 0
    account.locked_until = None
    if security.needs_rehash(account.password_hash or ""):
        account.password_hash = security.hash_password(password)
    token = security.new_token(SESSION_PREFIX)
    web_session = WebSession(
        token_hash=security.token_digest(token),
        account_id=account.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_hours),
        mfa_passed=not needs_totp,
        ip=ip[:64],
        user_agent=user_agent[:300],
    )
    await WebSessionRepository(session).add(web_session)
    if needs_totp:
        step = "totp" if account.totp_enabled_at else "totp_enrol"
    elif account.must_change_password:
        step = "change_password"
    else:
        step = None
        account.last_login_at = now
    await session.flush()
    return LoginOutcome(True, session_token=token, next_step=step)


async def session_from_token(
    session: AsyncSession, settings: Settings, token: str | None
) -> WebSession | None:
    if not token or not token.startswith(SESSION_PREFIX + "_") or len(token) > 100:
        return None
    web_session = await WebSessionRepository(session).get_by_hash(security.token_digest(token))
    now = clock.now()
    if web_session is None or web_session.revoked_at is not None or web_session.expires_at <= now:
        return None
    if now - web_session.last_seen_at > timedelta(minutes=settings.session_idle_minutes):
        return None
    if now - web_session.last_seen_at > timedelta(minutes=1):
        web_session.last_seen_at = now
    return web_session


async def principal_for_session(session: AsyncSession, web_session: WebSession) -> Principal | None:
    if not web_session.mfa_passed:
        return None
    account = await AccountRepository(session).get_with_professional(web_session.account_id)
    if account is None or not account.active or account.must_change_password:
        return None
    return await build_principal(session, account, "session")


async def principal_for_api_token(session: AsyncSession, token: str) -> Principal | None:
    if not token.startswith(API_TOKEN_PREFIX + "_") or len(token) > 100:
        return None
    found = await ApiTokenRepository(session).get_with_account(security.token_digest(token))
    now = clock.now()
    if found is None:
        return None
    api_token, account = found
    if api_token.revoked_at is not None:
        return None
    if api_token.expires_at is not None and api_token.expires_at <= now:
        return None
    if not account.active:
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at > timedelta(minutes=1):
        api_token.last_used_at = now
    return await build_principal(session, account, "token")


async def get_session_account(session: AsyncSession, web_session: WebSession) -> Account:
    account = await AccountRepository(session).get_with_professional(web_session.account_id)
    if account is None:
        raise NotFound("Compte introuvable.")
    return account


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, issuer=TOTP_ISSUER)


def _matching_step(secret: str, code: str) -> int | None:
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp = _totp(secret)
    current = int(clock.now().timestamp()) // totp.interval
    for step in (current - 1, current, current + 1):  # tolerate 30 s of clock drift
        if totp.generate_otp(step) == code:
            return step
    return None


async def verify_totp(
    session: AsyncSession, settings: Settings, web_session: WebSession, code: str
) -> str | None:
    """Second factor of a pending session; returns an error message or None. A used code cannot be replayed."""
    account = await get_session_account(session, web_session)
    if not account.totp_secret or account.totp_enabled_at is None:
        return "Aucun second facteur n'est enregistré pour ce compte."
    if account.locked_until is not None and account.locked_until > clock.now():
        web_session.revoked_at = clock.now()
        await session.flush()
        return LOCKED_ERROR
    step = _matching_step(account.totp_secret, code)
    if step is None or (account.totp_last_step is not None and step <= account.totp_last_step):
        account.failed_logins += 1
        if account.failed_logins >= settings.login_max_failures:
            account.locked_until = clock.now() + timedelta(minutes=settings.login_lockout_minutes)
            account.failed_logins = 0
            await WebSessionRepository(session).revoke_all_for(account.id, clock.now())
        await session.flush()
        return "Code de vérification incorrect ou déjà utilisé."
    account.totp_last_step = step
    account.failed_logins = 0
    web_session.mfa_passed = True
    if not account.must_change_password:
        account.last_login_at = clock.now()
    await session.flush()
    return None


async def begin_totp_enrolment(session: AsyncSession, web_session: WebSession) -> tuple[str, str]:
    """Give the account a new secret (not active until confirmed); returns (secret, otpauth URI)."""
    account = await get_session_account(session, web_session)
    if account.totp_enabled_at is not None:
        raise Conflict("Le second facteur est déjà activé pour ce compte.")
    if not account.totp_secret:
        account.totp_secret = pyotp.random_base32()
        await session.flush()
    uri = _totp(account.totp_secret).provisioning_uri(name=account.email, issuer_name=TOTP_ISSUER)
    return account.totp_secret, uri


async def confirm_totp_enrolment(session: AsyncSession, web_session: WebSession, code: str) -> str | None:
    account = await get_session_account(session, web_session)
    if not account.totp_secret or account.totp_enabled_at is not None:
        return "Aucune activation de second facteur n'est en cours."
    step = _matching_step(account.totp_secret, code)
    if step is None:
        return "Code de vérification incorrect : vérifiez l'heure de votre téléphone et recommencez."
    account.totp_enabled_at = clock.now()
    account.totp_last_step = step
    web_session.mfa_passed = True
    await session.flush()
    return None


async def change_own_password(
    session: AsyncSession, web_session: WebSession, current_password: str, new_password: str
) -> str | None:
    account = await get_session_account(session, web_session)
    if not security.verify_password(account.password_hash, current_password):
        return "Le mot de passe actuel est incorrect."
    problem = security.password_problem(new_password)
    if problem:
        return problem
    if security.verify_password(account.password_hash, new_password):
        return "Le nouveau mot de passe doit être différent de l'actuel."
    now = clock.now()
    account.password_hash = security.hash_password(new_password)
    account.password_changed_at = now
    account.must_change_password = False
    await WebSessionRepository(session).revoke_all_for(account.id, now)
    await session.flush()
    _credentials_revoked(session, account.id)
    return None


async def logout(session: AsyncSession, web_session: WebSession) -> None:
    web_session.revoked_at = clock.now()
    await session.flush()
    _credentials_revoked(session, web_session.account_id)


# --- administration -------------------------------------------------------------------------------------


async def _administered_account(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID
) -> Account:
    account = await AccountRepository(session).get_with_professional(account_id)
    if account is None:
        raise NotFound("Compte introuvable.")
    if principal.is_regional_admin:
        return account
    grants = await AccountRepository(session).active_grants(account.professional_id)
    if not _only_within(grants, principal):
        raise NotFound("Compte introuvable.")
    return account


def _only_within(grants, principal: Principal) -> bool:
    """An organisation administrator manages an account only if *every* active role of it is a non-admin role
    inside organisations they administer; administrators and people working elsewhere are the regional
    administrator's (otherwise adding someone to one's organisation would hand over their account)."""
    mine = principal.admin_organisation_ids()
    return bool(grants) and all(
        m.organisation_id in mine and m.role not in ADMIN_ROLES and m.role not in REGIONAL_ROLES
        for m, _ in grants
    )


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Réservé aux administrateurs.")


async def list_accounts(
    session: AsyncSession, principal: Principal, page: PageRequest, query: str = ""
) -> Page[Account]:
    require_admin(principal)
    scope = None if principal.is_regional_admin else principal.admin_organisation_ids()
    return await AccountRepository(session).list_accounts(page, organisation_ids=scope, query=query.strip())


async def get_account(session: AsyncSession, principal: Principal, account_id: uuid.UUID) -> Account:
    require_admin(principal)
    return await _administered_account(session, principal, account_id)


async def create_account(
    session: AsyncSession,
    principal: Principal | None,
    *,
    professional_id: uuid.UUID,
    email: str,
    password: str,
) -> Account:
    """Create an account for a professional of the directory. ``principal=None`` is the CLI (operator)."""
    email = email.strip().lower()
    professional = await ProfessionalRepository(session).get(professional_id)
    if professional is None:
        raise InvalidInput("Professionnel introuvable dans l'annuaire.", field="professional_id")
    if principal is not None:
        require_admin(principal)
        if not principal.is_regional_admin:
            grants = await AccountRepository(session).active_grants(professional_id)
            if not _only_within(grants, principal):
                raise Forbidden(
                    "Ce professionnel exerce hors de votre établissement ou a un rôle d'administration : "
                    "seul l'administrateur régional peut lui créer un compte."
                )
    problem = security.password_problem(password)
    if problem:
        raise InvalidInput(problem, field="password")
    repo = AccountRepository(session)
    if await repo.get_by_email(email):
        raise Conflict("Un compte existe déjà avec cette adresse électronique.", field="email")
    if await repo.get_by_professional(professional_id):
        raise Conflict("Ce professionnel a déjà un compte.", field="professional_id")
    account = Account(
        email=email,
        password_hash=security.hash_password(password),
        professional_id=professional_id,
        must_change_password=principal is not None,
        password_changed_at=clock.now(),
    )
    await repo.add(account)
    await record_access(session, principal, action=Action.CREATE, object_type="Account", object_id=account.id)
    return account


async def reset_password(
    session: AsyncSession,
    principal: Principal,
    account_id: uuid.UUID,
    temporary_password: str,
    *,
    reset_totp: bool,
) -> Account:
    """Administrator reset: temporary password to change at next login; sessions closed; lock lifted."""
    require_admin(principal)
    account = await _administered_account(session, principal, account_id)
    problem = security.password_problem(temporary_password)
    if problem:
        raise InvalidInput(problem, field="temporary_password")
    now = clock.now()
    account.password_hash = security.hash_password(temporary_password)
    account.password_changed_at = now
    account.must_change_password = True
    account.failed_logins = 0
    account.locked_until = None
    if reset_totp:
        account.totp_secret = None
        account.totp_enabled_at = None
        account.totp_last_step = None
    await WebSessionRepository(session).revoke_all_for(account.id, now)
    await session.flush()
    _credentials_revoked(session, account.id)
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Account",
        object_id=account.id,
        details={"password_reset": True, "totp_reset": reset_totp},
    )
    return account


async def set_account_active(
    session: AsyncSession, principal: Principal, account_id: uuid.UUID, active: bool
) -> Account:
    require_admin(principal)
    account = await _administered_account(session, principal, account_id)
    if account.id == principal.account_id and not active:
        raise InvalidInput("Vous ne pouvez pas désactiver votre propre compte.")
    account.active = active
    if not active:
        await WebSessionRepository(session).revoke_all_for(account.id, clock.now())
        _credentials_revoked(session, account.id)
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Account",
        object_id=account.id,
        details={"active": active},
    )
    return account


# --- API tokens -----------------------------------------------------------------------------------------


async def create_api_token(
    session: AsyncSession, *, email: str, name: str = "cli", valid_days: int | None = None
) -> tuple[str, ApiToken]:
    """Create a bearer token; the clear value is returned once and only its SHA-256 is stored."""
    account = await AccountRepository(session).get_by_email(email)
    if account is None or not account.active:
        raise NotFound(f"Aucun compte actif pour {email}.")
    if valid_days is not None and valid_days < 1:
        raise InvalidInput("La durée de validité doit être d'au moins un jour.", field="valid_days")
    token = security.new_token(API_TOKEN_PREFIX)
    api_token = ApiToken(
        account_id=account.id,
        name=name[:100],
        prefix=token[:12],
        token_hash=security.token_digest(token),
        expires_at=clock.now() + timedelta(days=valid_days) if valid_days else None,
    )
    await ApiTokenRepository(session).add(api_token)
    return token, api_token


async def revoke_api_token(
    session: AsyncSession, token_id: uuid.UUID, principal: Principal | None = None
) -> ApiToken:
    api_token = await ApiTokenRepository(session).get(token_id)
    if api_token is None or (
        principal is not None
        and api_token.account_id != principal.account_id
        and not principal.is_regional_admin
    ):
        raise NotFound("Jeton introuvable.")
    if api_token.revoked_at is None:
        api_token.revoked_at = clock.now()
        await session.flush()
        _credentials_revoked(session, api_token.account_id)
    return api_token


async def list_api_tokens(session: AsyncSession, principal: Principal) -> list[ApiToken]:
    return await ApiTokenRepository(session).list_for_account(principal.account_id)


# --- external identities (Pro Santé Connect, later) -----------------------------------------------------


async def link_external_identity(
    session: AsyncSession, account_id: uuid.UUID, *, issuer: str, subject: str
) -> ExternalIdentity:
    repo = ExternalIdentityRepository(session)
    existing = await repo.get_by_subject(issuer, subject)
    if existing is not None:
        if existing.account_id != account_id:
            raise Conflict("Cette identité externe est déjà liée à un autre compte.")
        return existing
    return await repo.add(ExternalIdentity(account_id=account_id, issuer=issuer, subject=subject))


async def account_for_external_identity(session: AsyncSession, issuer: str, subject: str) -> Account | None:
    identity = await ExternalIdentityRepository(session).get_by_subject(issuer, subject)
    if identity is None:
        return None
    return await AccountRepository(session).get_with_professional(identity.account_id)


def role_list(principal: Principal) -> list[Role]:
    return sorted(principal.roles)
