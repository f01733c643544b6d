"""Directory rules: who may register organisations, services, professionals and memberships."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.directory.models import (
    REGIONAL_ROLES,
    Membership,
    Organisation,
    OrganisationService,
    OrganisationType,
    Profession,
    Professional,
    Role,
)
from telesante.directory.repository import (
    MembershipRepository,
    OrganisationRepository,
    ProfessionalRepository,
    ServiceRepository,
)
from telesante.directory.schemas import (
    MembershipCreate,
    OrganisationCreate,
    OrganisationUpdate,
    ProfessionalCreate,
    ProfessionalUpdate,
    ServiceCreate,
)
from telesante.kit import clock, identifiers
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.kit.pagination import Page, PageRequest


def _require_regional_admin(principal: Principal | None) -> None:
    if principal is not None and not principal.is_regional_admin:
        raise Forbidden("Réservé à l'administrateur régional.")


def _require_org_admin(principal: Principal | None, organisation_id: uuid.UUID | None) -> None:
    if principal is not None and not principal.can_administer(organisation_id):
        raise Forbidden("Réservé aux administrateurs de cet établissement.")


# --- organisations ----------------------------------------------------------------------------------------


async def create_organisation(
    session: AsyncSession, principal: Principal | None, data: OrganisationCreate
) -> Organisation:
    """principal=None means the operator (CLI, demo seed)."""
    _require_regional_admin(principal)
    repo = OrganisationRepository(session)
    if await repo.get_by_finess(data.finess):
        raise Conflict(f"Un établissement porte déjà le numéro FINESS {data.finess}.", field="finess")
    organisation = await repo.add(Organisation(**data.model_dump()))
    await record_access(
        session, principal, action=Action.CREATE, object_type="Organisation", object_id=organisation.id
    )
    return organisation


async def update_organisation(
    session: AsyncSession, principal: Principal, organisation_id: uuid.UUID, data: OrganisationUpdate
) -> Organisation:
    organisation = await get_organisation(session, organisation_id)
    _require_org_admin(principal, organisation.id)
    changes = data.model_dump(exclude_unset=True)
    if ("latitude" in changes) != ("longitude" in changes):
        raise InvalidInput("Latitude et longitude vont ensemble : renseignez les deux.", field="latitude")
    for key, value in changes.items():
        setattr(organisation, key, value)
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Organisation",
        object_id=organisation.id,
        details={"fields": sorted(changes)},
    )
    return organisation


async def get_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> Organisation:
    organisation = await OrganisationRepository(session).get_detail(organisation_id)
    if organisation is None:
        raise NotFound("Établissement introuvable.")
    return organisation


async def get_organisation_by_finess(session: AsyncSession, finess: str) -> Organisation:
    organisation = await OrganisationRepository(session).get_by_finess(finess)
    if organisation is None:
        raise NotFound("Établissement introuvable.")
    return organisation


async def list_organisations(
    session: AsyncSession,
    page: PageRequest,
    *,
    query: str = "",
    type_: OrganisationType | None = None,
    departement: str | None = None,
    finess: str | None = None,
) -> Page[Organisation]:
    return await OrganisationRepository(session).list_organisations(
        page, query=query.strip(), type_=type_, departement=departement, finess=finess
    )


async def add_service(
    session: AsyncSession, principal: Principal | None, organisation_id: uuid.UUID, data: ServiceCreate
) -> OrganisationService:
    organisation = await get_organisation(session, organisation_id)
    _require_org_admin(principal, organisation.id)
    repo = ServiceRepository(session)
    if await repo.get_by_name(organisation.id, data.name):
        raise Conflict("Un service porte déjà ce nom dans cet établissement.", field="name")
    service = await repo.add(OrganisationService(organisation_id=organisation.id, **data.model_dump()))
    await record_access(
        session, principal, action=Action.CREATE, object_type="OrganisationService", object_id=service.id
    )
    return service


async def members_of(
    session: AsyncSession, organisation_id: uuid.UUID
) -> list[tuple[Membership, Professional]]:
    await get_organisation(session, organisation_id)
    return await ProfessionalRepository(session).members_of(organisation_id)


# --- professionals ----------------------------------------------------------------------------------------


async def create_professional(
    session: AsyncSession, principal: Principal | None, data: ProfessionalCreate
) -> Professional:
    if principal is not None and not principal.is_admin:
        raise Forbidden("Réservé aux administrateurs.")
    repo = ProfessionalRepository(session)
    if data.rpps:
        if await repo.get_by_rpps(data.rpps):
            raise Conflict(f"Le numéro RPPS {data.rpps} est déjà enregistré.", field="rpps")
        idnps = identifiers.idnps_from_rpps(data.rpps)
    else:
        # No national identifier: a platform-local one, never published as an IDNPS.
        idnps = f"LOCAL-{uuid.uuid4().hex[:12].upper()}"
    professional = await repo.add(
        Professional(
            rpps=data.rpps,
            idnps=idnps,
            family_name=data.family_name.upper(),
            given_name=data.given_name,
            profession=data.profession,
            specialty=data.specialty,
            phone=data.phone,
            email=str(data.email or ""),
        )
    )
    await record_access(
        session, principal, action=Action.CREATE, object_type="Professional", object_id=professional.id
    )
    return professional


async def update_professional(
    session: AsyncSession, principal: Principal, professional_id: uuid.UUID, data: ProfessionalUpdate
) -> Professional:
    professional = await get_professional(session, professional_id)
    if not principal.is_regional_admin:
        org_ids = {m.organisation_id for m in professional.memberships if m.ended_at is None}
        if not org_ids & principal.admin_organisation_ids():
            raise Forbidden("Ce professionnel n'appartient pas à un établissement que vous administrez.")
    changes = data.model_dump(exclude_unset=True)
    for key, value in changes.items():
        setattr(professional, key, value.upper() if key == "family_name" and value else value)
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Professional",
        object_id=professional.id,
        details={"fields": sorted(changes)},
    )
    return professional


async def get_professional(session: AsyncSession, professional_id: uuid.UUID) -> Professional:
    professional = await ProfessionalRepository(session).get_detail(professional_id)
    if professional is None:
        raise NotFound("Professionnel introuvable.")
    return professional


async def get_professional_by_idnps(session: AsyncSession, idnps: str) -> Professional:
    professional = await ProfessionalRepository(session).get_by_idnps(idnps)
    if professional is None:
        raise NotFound("Professionnel introuvable.")
    return professional


async def list_professionals(
    session: AsyncSession,
    page: PageRequest,
    *,
    query: str = "",
    profession: Profession | None = None,
    organisation_id: uuid.UUID | None = None,
    idnps: str | None = None,
    family: str | None = None,
) -> Page[Professional]:
    return await ProfessionalRepository(session).list_professionals(
        page,
        query=query.strip(),
        profession=profession,
        organisation_id=organisation_id,
        idnps=idnps,
        family=family,
    )


async def memberships_of(session: AsyncSession, professional_id: uuid.UUID) -> list[tuple[Membership, str]]:
    return await MembershipRepository(session).list_for_professional(professional_id)


# --- memberships ------------------------------------------------------------------------------------------


async def add_membership(
    session: AsyncSession, principal: Principal | None, data: MembershipCreate
) -> Membership:
    if data.role in REGIONAL_ROLES or data.role == Role.ORG_ADMIN:
        # Administrators are appointed by the regional administrator only.
        _require_regional_admin(principal)
        if data.role == Role.ORG_ADMIN and data.organisation_id is None:
            raise InvalidInput("Un établissement est requis pour ce rôle.", field="organisation_id")
    else:
        if data.organisation_id is None:
            raise InvalidInput("Un établissement est requis pour ce rôle.", field="organisation_id")
        _require_org_admin(principal, data.organisation_id)
    if data.role == Role.REGIONAL_ADMIN and data.organisation_id is not None:
        raise InvalidInput(
            "Le rôle d'administrateur régional ne se rattache pas à un établissement.",
            field="organisation_id",
        )
    await get_professional(session, data.professional_id)
    if data.organisation_id is not None:
        organisation = await get_organisation(session, data.organisation_id)
        if data.service_id is not None and data.service_id not in {s.id for s in organisation.services}:
            raise InvalidInput("Ce service n'appartient pas à l'établissement choisi.", field="service_id")
    elif data.service_id is not None:
        raise InvalidInput("Un service suppose un établissement.", field="service_id")
    repo = MembershipRepository(session)
    existing = await repo.find(data.professional_id, data.organisation_id, data.service_id, data.role)
    if existing is not None:
        if existing.ended_at is None:
            raise Conflict("Ce professionnel a déjà ce rôle ici.", field="role")
        existing.ended_at = None
        await session.flush()
        membership = existing
    else:
        membership = await repo.add(Membership(**data.model_dump()))
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="Membership",
        object_id=membership.id,
        details={"role": data.role.value},
    )
    return membership


async def end_membership(session: AsyncSession, principal: Principal, membership_id: uuid.UUID) -> Membership:
    membership = await MembershipRepository(session).get(membership_id)
    if membership is None:
        raise NotFound("Rattachement introuvable.")
    if membership.role in REGIONAL_ROLES or membership.role == Role.ORG_ADMIN:
        _require_regional_admin(principal)
    else:
        _require_org_admin(principal, membership.organisation_id)
    if membership.ended_at is None:
        membership.ended_at = clock.now()
        await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Membership",
        object_id=membership.id,
        details={"ended": True},
    )
    return membership


async def regional_overview(session: AsyncSession) -> dict:
    """Directory figures for the home page (no personal data)."""
    from telesante.directory.repository import DirectoryStatisticsRepository

    repo = DirectoryStatisticsRepository(session)
    return {
        "organisations_by_type": await repo.count_organisations_by_type(),
        "professionals": await repo.count_active_professionals(),
    }


async def organisation_names(session: AsyncSession, ids) -> dict[uuid.UUID, str]:
    """Display names of several organisations in one query (unknown ids are absent)."""
    from telesante.directory.repository import names_by_id

    return await names_by_id(session, Organisation, {i for i in ids if i is not None})


async def service_names(session: AsyncSession, ids) -> dict[uuid.UUID, str]:
    from telesante.directory.repository import names_by_id

    return await names_by_id(session, OrganisationService, {i for i in ids if i is not None})
