"""Test set-up through the real services (no raw inserts)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, time, timedelta

import pyotp
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.auth import security
from telesante.auth import service as auth_service
from telesante.auth.models import Account
from telesante.auth.principal import Principal
from telesante.config import Settings
from telesante.directory import service as directory_service
from telesante.directory.models import Organisation, OrganisationType, Profession, Professional, Role
from telesante.directory.schemas import MembershipCreate, OrganisationCreate, ProfessionalCreate
from telesante.kit import clock, identifiers
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Offer, Routing
from telesante.offers.schemas import OfferCreate
from telesante.patients import service as patient_service
from telesante.patients.models import Patient
from telesante.patients.schemas import PatientCreate
from telesante.scheduling import service as scheduling_service
from telesante.scheduling.schemas import PatternCreate

# The tests make thousands of accounts and PINs. At argon2-cffi's recommended cost (64 MiB, 3 passes: about 0.1 s a
# hash here) hashing was half of the suite's CPU time, so every process importing this module (pytest, the live
# servers' seed) hashes with argon2id at its lowest cost instead: the same algorithm and code. A live server keeps the
# platform's parameters and re-hashes at login; tests/auth/test_service.py checks both and the parameters kept here.
PRODUCTION_PASSWORD_HASHER = security.use_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))

PASSWORD = "motdepasse-de-test-42"
_counter = itertools.count(1)


def valid_finess(n: int, departement: str = "35") -> str:
    return identifiers.finess_with_key(f"{departement}{n:06d}")


def valid_rpps(n: int) -> str:
    return identifiers.rpps_with_key(f"1{n:09d}")


def valid_nir(sex: str, birth: date, commune: str = "35238", order: int = 1) -> str:
    body = f"{1 if sex == 'M' else 2}{birth.year % 100:02d}{birth.month:02d}{commune}{order:03d}"
    return body + identifiers.nir_key(body)


async def make_organisation(session: AsyncSession, name: str | None = None, **kwargs) -> Organisation:
    n = next(_counter)
    data = {
        "finess": valid_finess(n + 1000),
        "name": name or f"Établissement {n}",
        "type": OrganisationType.CH,
        "commune_insee": "35238",
        "city": "Rennes",
        "postal_code": "35000",
    }
    data.update(kwargs)
    return await directory_service.create_organisation(session, None, OrganisationCreate(**data))


async def make_professional(
    session: AsyncSession, family: str = "Martin", profession=Profession.MEDECIN
) -> Professional:
    n = next(_counter)
    return await directory_service.create_professional(
        session,
        None,
        ProfessionalCreate(
            rpps=valid_rpps(n + 5000),
            family_name=f"{family}{n}",
            given_name="Claire",
            profession=profession,
            specialty="Neurologie",
        ),
    )


@dataclass
class Actor:
    account: Account
    professional: Professional
    principal: Principal
    email: str


async def make_actor(
    session: AsyncSession,
    organisation: Organisation | None,
    role: Role = Role.REQUESTER,
    *,
    totp: bool = False,
    profession: Profession = Profession.MEDECIN,
) -> Actor:
    professional = await make_professional(session, profession=profession)
    await directory_service.add_membership(
        session,
        None,
        MembershipCreate(
            professional_id=professional.id,
            organisation_id=organisation.id if organisation else None,
            role=role,
        ),
    )
    email = f"user{next(_counter)}@test.telesante.fr"
    account = await auth_service.create_account(
        session, None, professional_id=professional.id, email=email, password=PASSWORD
    )
    if totp:
        account.totp_secret = pyotp.random_base32()
        account.totp_enabled_at = clock.now()
        await session.flush()
    account = await auth_service.AccountRepository(session).get_with_professional(account.id)
    principal = await auth_service.build_principal(session, account, "session")
    return Actor(account, professional, principal, email)


async def token_for(session: AsyncSession, actor: Actor) -> dict[str, str]:
    token, _ = await auth_service.create_api_token(session, email=actor.email, name="test")
    return {"Authorization": f"Bearer {token}"}


def patient_data(**overrides) -> PatientCreate:
    data = {
        "birth_family_name": "Lefèvre",
        "birth_given_names": "Élodie Marie",
        "birth_date": date(1954, 3, 12),
        "sex": "F",
        "birth_place_insee": "35238",
    }
    data.update(overrides)
    return PatientCreate(**data)


async def make_patient(session: AsyncSession, actor: Actor, **overrides) -> Patient:
    patient, _ = await patient_service.register_patient(session, actor.principal, patient_data(**overrides))
    return patient


async def make_teleconsultation_agenda(
    session: AsyncSession, organisation_id, admin: Actor, doctor: Actor, title: str, days: int = 2
) -> Offer:
    """A teleconsultation offer of the organisation (created by its admin), and the doctor's slots every half hour,
    day and night, from today for ``days`` days (so that a test or a browser story finds a free slot at any hour)."""
    offer = await offer_service.create_offer(
        session,
        admin.principal,
        OfferCreate(
            organisation_id=organisation_id,
            title=title,
            act_type=ActType.TELECONSULTATION,
            form_code="question_generique",
            routing=Routing.POOL,
            response_minutes=60 * 24,
        ),
    )
    today = clock.to_paris(clock.now()).date()
    await scheduling_service.add_pattern(
        session,
        doctor.principal,
        PatternCreate(
            professional_id=doctor.professional.id,
            offer_id=offer.id,
            weekdays=[1, 2, 3, 4, 5, 6, 7],
            start_time=time(0, 0),
            end_time=time(23, 30),
            slot_minutes=30,
            valid_from=today,
            valid_until=today + timedelta(days=days),
            skip_public_holidays=False,
        ),
        Settings(),
    )
    return offer
