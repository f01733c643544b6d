"""Defects found in review, pinned so they stay fixed."""

import inspect
from datetime import date, timedelta

import pyotp
import pytest
from pydantic import ValidationError

from telesante.audit.repository import AuditRepository
from telesante.auth import service as auth_service
from telesante.consents import service as consent_service
from telesante.consents.models import ConsentScopeType
from telesante.consents.schemas import ConsentCreate
from telesante.directory import service as directory_service
from telesante.directory.models import Role
from telesante.directory.schemas import MembershipCreate
from telesante.kit.errors import Forbidden, InvalidInput, NotFound
from telesante.kit.pagination import PageRequest
from telesante.patients import service as patient_service
from telesante.patients.repository import PatientCriteria
from telesante.patients.schemas import BreakGlassCreate, LocalIdentifierCreate
from tests.factories import PASSWORD, make_actor, make_organisation, make_patient, patient_data, valid_nir
from tests.helpers import csrf_token, login


async def test_org_admin_cannot_take_over_an_account_by_adding_it_to_their_organisation(session):
    org = await make_organisation(session)
    org_admin = await make_actor(session, org, Role.ORG_ADMIN)
    regional = await make_actor(session, None, Role.REGIONAL_ADMIN)
    elsewhere = await make_actor(session, await make_organisation(session), Role.EXPERT)
    for target in (regional, elsewhere):
        await directory_service.add_membership(
            session,
            org_admin.principal,
            MembershipCreate(
                professional_id=target.professional.id, organisation_id=org.id, role=Role.REQUESTER
            ),
        )
        with pytest.raises(NotFound):
            await auth_service.reset_password(
                session, org_admin.principal, target.account.id, "x" * 12 + "abc", reset_totp=True
            )
    with pytest.raises(Forbidden):  # administrators are appointed by the regional administrator
        await directory_service.add_membership(
            session,
            org_admin.principal,
            MembershipCreate(
                professional_id=elsewhere.professional.id, organisation_id=org.id, role=Role.ORG_ADMIN
            ),
        )


async def test_break_glass_cannot_be_turned_into_lasting_access(session, settings):
    here, there = await make_organisation(session), await make_organisation(session)
    treating = await make_actor(session, here)
    emergency = await make_actor(session, there)
    patient = await make_patient(session, treating, ins_matricule=valid_nir("F", date(1954, 3, 12)))
    await patient_service.break_glass(
        session,
        emergency.principal,
        settings,
        BreakGlassCreate(
            reason="Patient inconscient, aucune autre source d'information",
            ins_matricule=patient.ins_matricule,
        ),
    )
    with pytest.raises(Forbidden):
        await patient_service.add_local_identifier(
            session,
            emergency.principal,
            patient.id,
            LocalIdentifierCreate(organisation_id=there.id, value="IPP1"),
        )


async def test_break_glass_identification_must_be_exact(session, settings):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    with pytest.raises(ValidationError):
        BreakGlassCreate(
            reason="Urgence vitale sans autre source",
            birth_family_name="lefevre",
            first_given_name="%",
            birth_date=date(1954, 3, 12),
        )
    other = await make_actor(session, await make_organisation(session))
    await make_patient(session, other)
    await make_patient(session, other, birth_given_names="Elodie Jeanne", confirm_duplicate=True)
    with pytest.raises(InvalidInput, match="matricule INS"):
        await patient_service.break_glass(
            session,
            actor.principal,
            settings,
            BreakGlassCreate(
                reason="Urgence vitale sans autre source",
                birth_family_name="lefevre",
                first_given_name="elodie",
                birth_date=date(1954, 3, 12),
            ),
        )


async def test_totp_failures_are_not_reset_by_a_new_password_login(session, client, settings):
    org = await make_organisation(session)
    admin = await make_actor(session, org, Role.ORG_ADMIN, totp=True)
    secret = admin.account.totp_secret
    wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    for _ in range(settings.login_max_failures):
        client.cookies.clear()
        await login(client, admin.email, PASSWORD)
        token = await csrf_token(client, "/connexion/code")
        await client.post("/connexion/code", data={"code": wrong, "csrf_token": token})
    client.cookies.clear()
    await login(client, admin.email, PASSWORD)  # refused: locked
    assert (await client.get("/connexion/code")).status_code == 303


async def test_search_appears_in_each_found_patients_access_log(session):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    patient = await make_patient(session, actor)
    await patient_service.search_patients(
        session, actor.principal, PatientCriteria(family="lef"), PageRequest()
    )
    log = await AuditRepository(session).list_for_patient(patient.id, PageRequest(0, 5))
    assert log.items[0].action == "search" and "lef" in log.items[0].details


async def test_reading_consents_and_history_is_audited(session):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    patient = await make_patient(session, actor)
    repo = AuditRepository(session)
    before = (await repo.list_for_patient(patient.id, PageRequest(0, 1))).total
    await consent_service.list_consents(session, actor.principal, patient.id)
    await consent_service.check_consent(
        session, actor.principal, patient.id, ConsentScopeType.ACT, "teleexpertise"
    )
    await patient_service.list_status_changes(session, actor.principal, patient.id)
    await patient_service.list_care_relationships(session, actor.principal, patient.id)
    assert (await repo.list_for_patient(patient.id, PageRequest(0, 1))).total == before + 4


def test_names_are_checked_after_normalisation():
    with pytest.raises(ValidationError, match="au plus 100"):
        patient_data(birth_family_name="ﬃ" * 100)


async def test_trusted_person_does_not_consent_and_minors_consent_through_their_representative(session):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    notice = (
        await consent_service.list_information_texts(session, ConsentScopeType.ACT, "teleconsultation")
    )[0]
    with pytest.raises(ValidationError, match="personne de confiance"):
        ConsentCreate(
            scope_type="act",
            scope_code="teleconsultation",
            decision="given",
            information_text_id=notice.id,
            given_by="trusted_person",
            representative_name="Jean Dupont",
        )
    child = await make_patient(
        session, actor, birth_family_name="Petit", birth_date=date.today() - timedelta(days=3000)
    )
    with pytest.raises(InvalidInput, match="mineur"):
        await consent_service.record_consent(
            session,
            actor.principal,
            child.id,
            ConsentCreate(
                scope_type="act",
                scope_code="teleconsultation",
                decision="given",
                information_text_id=notice.id,
            ),
        )
    ok = await consent_service.record_consent(
        session,
        actor.principal,
        child.id,
        ConsentCreate(
            scope_type="act",
            scope_code="teleconsultation",
            decision="given",
            information_text_id=notice.id,
            given_by="legal_representative",
            representative_name="Marie Petit (mère)",
        ),
    )
    assert ok.given_by == "legal_representative"


def test_nia_matricule_is_accepted():
    from telesante.kit import identifiers

    body = "8540335238001"
    assert identifiers.check_nir(body + identifiers.nir_key(body)) is None


async def test_commit_happens_before_the_response_is_sent(app, session, client, monkeypatch):
    org = await make_organisation(session)
    actor = await make_actor(session, org)
    events: list[str] = []
    original_commit = type(session).commit

    async def commit(self):
        if any(frame.function == "get_session" for frame in inspect.stack()):
            events.append("commit")  # the request's own commit, not the harness's
        return await original_commit(self)

    monkeypatch.setattr(type(session), "commit", commit)
    inner = app.middleware_stack or app.build_middleware_stack()

    async def probe(scope, receive, send):
        async def spy(message):
            if message["type"] == "http.response.start":
                events.append("response")
            await send(message)

        await inner(scope, receive, spy)

    app.middleware_stack = probe
    await login(client, actor.email, PASSWORD)
    # The POST that logs in writes (attempt, session): its commit must come before its response starts.
    assert events[-2:] == ["commit", "response"], events
