import pytest
from pydantic import ValidationError

from telesante.consents import service
from telesante.consents.models import ConsentScopeType
from telesante.consents.schemas import ConsentCreate
from telesante.directory.models import Role
from telesante.kit.errors import InvalidInput, NotFound
from tests.factories import make_actor, make_organisation, make_patient


async def _notice(session, code="teleconsultation"):
    texts = await service.list_information_texts(session, ConsentScopeType.ACT, code)
    assert len(texts) == 1
    return texts[0]


async def test_consent_lifecycle_and_check(session):
    org = await make_organisation(session)
    actor = await make_actor(session, org, Role.ASSISTANT)
    patient = await make_patient(session, actor)
    check = await service.check_consent(
        session, actor.principal, patient.id, ConsentScopeType.ACT, "teleconsultation"
    )
    assert check.state == "absent" and not check.allowed
    with pytest.raises(service.ConsentRequired):
        await service.require_consent(
            session, actor.principal, patient.id, ConsentScopeType.ACT, "teleconsultation"
        )
    notice = await _notice(session)
    consent = await service.record_consent(
        session,
        actor.principal,
        patient.id,
        ConsentCreate(
            scope_type="act", scope_code="teleconsultation", decision="given", information_text_id=notice.id
        ),
    )
    assert consent.organisation_id == org.id and consent.collected_by_name == actor.principal.display_name
    ok = await service.require_consent(
        session, actor.principal, patient.id, ConsentScopeType.ACT, "teleconsultation"
    )
    assert ok.state == "given"
    # Consent for one act does not cover another.
    other = await service.check_consent(
        session, actor.principal, patient.id, ConsentScopeType.ACT, "teleexpertise"
    )
    assert other.state == "absent"
    await service.withdraw_consent(session, actor.principal, patient.id, consent.id, "ne souhaite plus")
    withdrawn = await service.check_consent(
        session, actor.principal, patient.id, ConsentScopeType.ACT, "teleconsultation"
    )
    assert withdrawn.state == "withdrawn" and not withdrawn.allowed


async def test_refusal_blocks(session):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    patient = await make_patient(session, actor)
    notice = await _notice(session, "teleexpertise")
    await service.record_consent(
        session,
        actor.principal,
        patient.id,
        ConsentCreate(
            scope_type="act", scope_code="teleexpertise", decision="refused", information_text_id=notice.id
        ),
    )
    with pytest.raises(service.ConsentRequired) as caught:
        await service.require_consent(
            session, actor.principal, patient.id, ConsentScopeType.ACT, "teleexpertise"
        )
    assert "refusé" in caught.value.message


async def test_notice_must_match_scope_and_representative_must_be_named(session):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    patient = await make_patient(session, actor)
    notice = await _notice(session, "teleexpertise")
    with pytest.raises(InvalidInput):
        await service.record_consent(
            session,
            actor.principal,
            patient.id,
            ConsentCreate(
                scope_type="act",
                scope_code="teleconsultation",
                decision="given",
                information_text_id=notice.id,
            ),
        )
    with pytest.raises(ValidationError):
        ConsentCreate(
            scope_type="act",
            scope_code="teleconsultation",
            decision="given",
            information_text_id=notice.id,
            given_by="legal_representative",
        )
    with pytest.raises(ValidationError):
        ConsentCreate(
            scope_type="act", scope_code="radiographie", decision="given", information_text_id=notice.id
        )


async def test_consents_are_scoped(session):
    org, elsewhere = await make_organisation(session), await make_organisation(session)
    actor = await make_actor(session, org)
    colleague = await make_actor(session, elsewhere)
    patient = await make_patient(session, actor)
    with pytest.raises(NotFound):
        await service.list_consents(session, colleague.principal, patient.id)
    with pytest.raises(NotFound):
        await service.check_consent(
            session, colleague.principal, patient.id, ConsentScopeType.ACT, "teleconsultation"
        )
