import pytest

from telesante.auth import service
from telesante.directory.models import Role
from telesante.kit.errors import Conflict, Forbidden, NotFound
from telesante.kit.pagination import PageRequest
from tests.factories import make_actor, make_organisation, make_professional


async def test_api_token_stored_hashed_and_revocable(session):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    token, row = await service.create_api_token(session, email=actor.email, name="intégration")
    assert token not in row.token_hash and len(row.token_hash) == 64
    principal = await service.principal_for_api_token(session, token)
    assert principal is not None and principal.account_id == actor.account.id
    await service.revoke_api_token(session, row.id)
    assert await service.principal_for_api_token(session, token) is None


async def test_an_api_token_names_its_account_until_it_expires_or_the_account_is_deactivated(session):
    from datetime import timedelta

    from telesante.kit import clock

    org = await make_organisation(session)
    actor = await make_actor(session, org)
    token, row = await service.create_api_token(session, email=actor.email, name="passerelle")
    principal = await service.principal_for_api_token(session, token)
    assert principal.account_id == actor.account.id and principal.email == actor.email
    assert principal.display_name == actor.account.professional.display_name and principal.grants
    assert (
        await service.principal_for_api_token(session, token[:-1] + ("A" if token[-1] != "A" else "B"))
        is None
    )
    assert await service.principal_for_api_token(session, service.API_TOKEN_PREFIX + "_" + "x" * 40) is None
    row.expires_at = clock.now() - timedelta(seconds=1)
    await session.flush()
    assert await service.principal_for_api_token(session, token) is None
    row.expires_at = clock.now() + timedelta(days=1)
    actor.account.active = False
    await session.flush()
    assert await service.principal_for_api_token(session, token) is None
    actor.account.active = True
    await session.flush()
    assert (await service.principal_for_api_token(session, token)).account_id == actor.account.id


async def test_org_admin_sees_only_accounts_of_own_organisation(session):
    org_a, org_b = await make_organisation(session), await make_organisation(session)
    admin_a = await make_actor(session, org_a, Role.ORG_ADMIN)
    in_a = await make_actor(session, org_a)
    in_b = await make_actor(session, org_b)
    page = await service.list_accounts(session, admin_a.principal, PageRequest(0, 100))
    emails = {a.email for a in page.items}
    assert in_a.email in emails and in_b.email not in emails
    with pytest.raises(NotFound):
        await service.get_account(session, admin_a.principal, in_b.account.id)
    with pytest.raises(Forbidden):
        await service.list_accounts(session, in_a.principal, PageRequest(0, 10))


async def test_external_identity_links_once(session):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    other = await make_actor(session, org)
    await service.link_external_identity(
        session, actor.account.id, issuer="https://auth.esante.gouv.fr", subject="abc"
    )
    found = await service.account_for_external_identity(session, "https://auth.esante.gouv.fr", "abc")
    assert found.id == actor.account.id
    with pytest.raises(Conflict):
        await service.link_external_identity(
            session, other.account.id, issuer="https://auth.esante.gouv.fr", subject="abc"
        )


async def test_duplicate_email_refused(session):
    pro = await make_professional(session)
    other = await make_professional(session)
    await service.create_account(
        session, None, professional_id=pro.id, email="dup@test.fr", password="x" * 6 + "abcdef"
    )
    with pytest.raises(Conflict):
        await service.create_account(
            session, None, professional_id=other.id, email="DUP@test.fr", password="y" * 6 + "abcdef"
        )


def test_the_platform_hashes_passwords_with_argon2id_at_the_recommended_cost():
    """What a deployment uses (the suite itself hashes at the lowest cost, tests/factories.py): argon2-cffi's
    recommended parameters, RFC 9106's second recommended option (argon2id, 64 MiB, 3 passes, 4 lanes)."""
    from argon2 import Type
    from argon2.profiles import RFC_9106_LOW_MEMORY

    from tests.factories import PRODUCTION_PASSWORD_HASHER as hasher

    assert hasher.type is Type.ID
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        RFC_9106_LOW_MEMORY.time_cost,
        RFC_9106_LOW_MEMORY.memory_cost,
        RFC_9106_LOW_MEMORY.parallelism,
    )
    assert hasher.memory_cost >= 64 * 1024 and hasher.time_cost >= 3
    assert hasher.hash("un mot de passe").startswith("$argon2id$v=19$m=65536,t=3,p=4$")


async def test_a_login_rehashes_a_password_hashed_with_other_parameters(session, settings):
    """After a change of parameters (an upgrade of argon2-cffi, or accounts seeded by the tests for a live server),
    the next successful login stores the password hashed with the current ones, and it still logs in."""
    from argon2 import PasswordHasher

    from telesante.auth import security
    from tests.factories import PASSWORD

    org = await make_organisation(session)
    actor = await make_actor(session, org)
    older = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    actor.account.password_hash = older
    await session.flush()
    assert security.needs_rehash(older)
    refused = await service.login(
        session,
        settings,
        email=actor.email,
        password="pas le bon mot de passe",
        ip="192.0.2.1",
        user_agent="t",
    )
    assert not refused.ok and actor.account.password_hash == older  # only a right password is re-hashed
    outcome = await service.login(
        session, settings, email=actor.email, password=PASSWORD, ip="192.0.2.1", user_agent="t"
    )
    assert outcome.ok
    assert actor.account.password_hash != older and not security.needs_rehash(actor.account.password_hash)
    assert security.verify_password(actor.account.password_hash, PASSWORD)
    again = await service.login(
        session, settings, email=actor.email, password=PASSWORD, ip="192.0.2.1", user_agent="t"
    )
    assert again.ok
