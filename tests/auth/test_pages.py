from datetime import timedelta

import pyotp

from telesante.auth.repository import AccountRepository
from telesante.directory.models import Role
from telesante.kit import clock
from tests.factories import PASSWORD, make_actor, make_organisation
from tests.helpers import csrf_token, login


async def test_login_then_home_shows_name(session, client):
    org = await make_organisation(session)
    actor = await make_actor(session, org, Role.REQUESTER)
    response = await login(client, actor.email, PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    home = await client.get("/")
    assert home.status_code == 200
    assert actor.professional.family_name in home.text


async def test_wrong_password_is_generic_and_counted_then_locks(session, client, settings):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    for _ in range(settings.login_max_failures):
        response = await login(client, actor.email, "mauvais-mot-de-passe")
        assert response.status_code == 401
        assert "Adresse électronique ou mot de passe incorrect" in response.text
    # Now even the right password is refused until the lock expires.
    response = await login(client, actor.email, PASSWORD)
    assert response.status_code == 401 and "mot de passe incorrect" in response.text
    account = await AccountRepository(session).get_by_email(actor.email)
    await session.refresh(account)
    assert account.locked_until is not None
    later = clock.now() + timedelta(minutes=settings.login_lockout_minutes + 1)
    clock.set_clock(lambda: later)
    response = await login(client, actor.email, PASSWORD)
    assert response.status_code == 303


async def test_unknown_email_gets_same_message(session, client):
    response = await login(client, "personne@nulle-part.fr", PASSWORD)
    assert response.status_code == 401
    assert "Adresse électronique ou mot de passe incorrect" in response.text


async def test_ip_throttling(session, client, settings):
    settings.login_ip_limit = 3
    for _ in range(3):
        await login(client, "x@y.fr", "faux-mot-de-passe")
    response = await login(client, "x@y.fr", "faux-mot-de-passe")
    assert response.status_code == 429
    assert "Trop de tentatives" in response.text


async def test_admin_must_use_totp_and_code_cannot_be_replayed(session, client):
    org = await make_organisation(session)
    admin = await make_actor(session, org, Role.ORG_ADMIN, totp=True)
    secret = admin.account.totp_secret  # requests that roll back expire ORM objects held by the test
    response = await login(client, admin.email, PASSWORD)
    assert response.headers["location"] == "/connexion/code"
    assert (await client.get("/")).status_code == 303  # not signed in before the second factor
    code = pyotp.TOTP(secret).now()
    token = await csrf_token(client, "/connexion/code")
    bad = await client.post(
        "/connexion/code", data={"code": "000000" if code != "000000" else "111111", "csrf_token": token}
    )
    assert bad.status_code == 401
    ok = await client.post("/connexion/code", data={"code": code, "csrf_token": token})
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    assert (await client.get("/")).status_code == 200
    # Same code on a new login is refused (replay).
    client.cookies.clear()
    await login(client, admin.email, PASSWORD)
    token = await csrf_token(client, "/connexion/code")
    replay = await client.post("/connexion/code", data={"code": code, "csrf_token": token})
    assert replay.status_code == 401


async def test_admin_without_totp_must_enrol(session, client):
    org = await make_organisation(session)
    admin = await make_actor(session, org, Role.ORG_ADMIN)
    response = await login(client, admin.email, PASSWORD)
    assert response.headers["location"] == "/connexion/activation-2fa"
    page = await client.get("/connexion/activation-2fa")
    account = await AccountRepository(session).get_by_email(admin.email)
    assert account.totp_secret and account.totp_secret in page.text
    token = await csrf_token(client, "/connexion/activation-2fa")
    done = await client.post(
        "/connexion/activation-2fa", data={"code": pyotp.TOTP(account.totp_secret).now(), "csrf_token": token}
    )
    assert done.status_code == 303
    await session.refresh(account)
    assert account.totp_enabled_at is not None
    assert (await client.get("/admin/comptes")).status_code == 200


async def test_post_without_csrf_is_refused(session, client):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    await login(client, actor.email, PASSWORD)
    response = await client.post("/deconnexion")
    assert response.status_code == 403
    assert "CSRF" in response.text


async def test_admin_reset_forces_password_change(session, client):
    org = await make_organisation(session)
    admin = await make_actor(session, org, Role.ORG_ADMIN, totp=True)
    user = await make_actor(session, org, Role.REQUESTER)
    from telesante.auth import service

    await service.reset_password(
        session, admin.principal, user.account.id, "provisoire-123456", reset_totp=False
    )
    response = await login(client, user.email, "provisoire-123456")
    assert response.headers["location"] == "/mot-de-passe"
    assert (await client.get("/")).status_code == 303  # must change first
    token = await csrf_token(client, "/mot-de-passe")
    short = await client.post(
        "/mot-de-passe",
        data={
            "current_password": "provisoire-123456",
            "new_password": "court",
            "confirm_password": "court",
            "csrf_token": token,
        },
    )
    assert short.status_code == 422 and "12 caractères" in short.text
    done = await client.post(
        "/mot-de-passe",
        data={
            "current_password": "provisoire-123456",
            "new_password": "un-nouveau-secret-long",
            "confirm_password": "un-nouveau-secret-long",
            "csrf_token": token,
        },
    )
    assert done.status_code == 303
    assert (await login(client, user.email, "un-nouveau-secret-long")).headers["location"] == "/"


async def test_security_headers(session, client):
    response = await client.get("/connexion")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-request-id"]
