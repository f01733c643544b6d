"""Consent rules: recorded before any act, against the information notice actually shown; withdrawable;
the latest decision for a scope governs. ``require_consent`` is what every act calls before starting."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.consents.models import (
    Consent,
    ConsentDecision,
    ConsentGiver,
    ConsentScopeType,
    InformationText,
)
from telesante.consents.repository import ConsentRepository, InformationTextRepository
from telesante.consents.schemas import ConsentCheck, ConsentCreate, InformationTextCreate, scope_problem
from telesante.kit import clock
from telesante.kit.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from telesante.patients.service import PatientAccess, age_on, read_patient_data, require_patient_access


def is_minor(birth_date) -> bool:
    return age_on(birth_date, clock.to_paris(clock.now()).date()) < 18


class ConsentRequired(DomainError):
    status_code = 409
    code = "consentement-requis"
    title = "Consentement requis"


async def list_information_texts(
    session: AsyncSession, scope_type: ConsentScopeType | None = None, scope_code: str | None = None
) -> list[InformationText]:
    return await InformationTextRepository(session).list_current(scope_type, scope_code)


async def publish_information_text(
    session: AsyncSession, principal: Principal | None, data: InformationTextCreate
) -> InformationText:
    """A new version of a notice; the previous current versions of the same scope are retired."""
    if principal is not None and not principal.is_regional_admin:
        raise Forbidden("Réservé à l'administrateur régional.")
    repo = InformationTextRepository(session)
    if await repo.find(data.scope_type, data.scope_code, data.version):
        raise Conflict("Cette version de notice existe déjà.", field="version")
    now = clock.now()
    for previous in await repo.list_current(data.scope_type, data.scope_code):
        previous.retired_at = now
    text = await repo.add(InformationText(**data.model_dump(), published_at=now))
    await record_access(
        session, principal, action=Action.CREATE, object_type="InformationText", object_id=text.id
    )
    return text


async def record_consent(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, data: ConsentCreate
) -> Consent:
    access = await require_patient_access(session, principal, patient_id)
    if data.given_by == ConsentGiver.PATIENT and is_minor(access.patient.birth_date):
        raise InvalidInput(
            "Patient mineur : la décision est recueillie auprès du titulaire de l'autorité parentale "
            "(représentant légal), l'avis du mineur étant recherché (L.1111-4 CSP).",
            field="given_by",
        )
    text = await InformationTextRepository(session).get(data.information_text_id)
    if text is None or text.scope_type != data.scope_type or text.scope_code != data.scope_code:
        raise InvalidInput(
            "La notice d'information ne correspond pas à ce périmètre.", field="information_text_id"
        )
    if text.retired_at is not None:
        raise InvalidInput(
            "Cette version de la notice d'information n'est plus en vigueur.", field="information_text_id"
        )
    organisation_id = data.organisation_id
    if organisation_id is None and len(principal.clinical_organisation_ids) == 1:
        organisation_id = next(iter(principal.clinical_organisation_ids))
    if organisation_id is not None and organisation_id not in principal.clinical_organisation_ids:
        raise InvalidInput("Vous n'exercez pas dans cet établissement.", field="organisation_id")
    consent = await ConsentRepository(session).add(
        Consent(
            patient_id=patient_id,
            **data.model_dump(exclude={"organisation_id"}),
            organisation_id=organisation_id,
            collected_by_account_id=principal.account_id,
            collected_by_name=principal.display_name[:200],
            collected_at=clock.now(),
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="Consent",
        object_id=consent.id,
        patient_id=patient_id,
        details={
            "scope": f"{data.scope_type.value}:{data.scope_code}",
            "decision": data.decision.value,
            "information": f"{text.scope_code} v{text.version}",
        },
        break_glass=access.via_break_glass,
    )
    return consent


async def withdraw_consent(
    session: AsyncSession, principal: Principal, patient_id: uuid.UUID, consent_id: uuid.UUID, reason: str
) -> Consent:
    access = await require_patient_access(session, principal, patient_id)
    consent = await ConsentRepository(session).get(consent_id)
    if consent is None or consent.patient_id != patient_id:
        raise NotFound("Consentement introuvable.")
    if consent.withdrawn_at is not None:
        raise Conflict("Ce consentement a déjà été retiré.")
    if consent.decision != ConsentDecision.GIVEN:
        raise Conflict(
            "Seul un consentement donné peut être retiré ; enregistrez plutôt une nouvelle décision."
        )
    consent.withdrawn_at = clock.now()
    consent.withdrawn_by_account_id = principal.account_id
    consent.withdrawn_by_name = principal.display_name[:200]
    consent.withdrawal_reason = reason.strip()
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="Consent",
        object_id=consent.id,
        patient_id=patient_id,
        details={"withdrawn": True},
        break_glass=access.via_break_glass,
    )
    return consent


async def list_consents(session: AsyncSession, principal: Principal, patient_id: uuid.UUID) -> list[Consent]:
    await read_patient_data(session, principal, patient_id, "Consents")
    return await ConsentRepository(session).list_for_patient(patient_id)


async def check_consent(
    session: AsyncSession,
    principal: Principal,
    patient_id: uuid.UUID,
    scope_type: ConsentScopeType,
    scope_code: str,
    *,
    checked: PatientAccess | None = None,
) -> ConsentCheck:
    """State of consent for a scope: the latest decision governs; a withdrawn consent no longer counts.
    ``checked``: the patient gate's answer to this principal earlier in the transaction (see ``read_patient_data``)."""
    problem = scope_problem(scope_type, scope_code)
    if problem:
        raise InvalidInput(problem, field="scope_code")
    await read_patient_data(
        session,
        principal,
        patient_id,
        "ConsentCheck",
        details={"scope": f"{scope_type}:{scope_code}"},
        checked=checked,
    )
    latest = await ConsentRepository(session).latest(patient_id, scope_type, scope_code)
    base = {"patient_id": patient_id, "scope_type": scope_type, "scope_code": scope_code}
    if latest is None:
        return ConsentCheck(
            **base, state="absent", allowed=False, message="Aucun consentement recueilli pour ce périmètre."
        )
    dated = {"consent_id": latest.id, "collected_at": latest.collected_at}
    if latest.withdrawn_at is not None:
        return ConsentCheck(
            **base,
            **dated,
            state="withdrawn",
            allowed=False,
            message=f"Consentement retiré le {clock.format_paris(latest.withdrawn_at)}.",
        )
    if latest.decision == ConsentDecision.REFUSED:
        return ConsentCheck(**base, **dated, state="refused", allowed=False, message="Le patient a refusé.")
    return ConsentCheck(
        **base,
        **dated,
        state="given",
        allowed=True,
        message=f"Consentement recueilli le {clock.format_paris(latest.collected_at)}.",
    )


async def require_consent(
    session: AsyncSession,
    principal: Principal,
    patient_id: uuid.UUID,
    scope_type: ConsentScopeType,
    scope_code: str,
) -> ConsentCheck:
    """Raise ConsentRequired unless the patient's current decision for this scope is a given consent."""
    check = await check_consent(session, principal, patient_id, scope_type, scope_code)
    if not check.allowed:
        raise ConsentRequired(f"Consentement requis avant l'acte : {check.message}", field="consent")
    return check
