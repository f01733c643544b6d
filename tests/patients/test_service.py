import json
from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from telesante.audit.repository import AuditRepository
from telesante.directory.models import Role
from telesante.kit import clock
from telesante.kit.errors import Conflict, Forbidden, InvalidInput, NotFound
from telesante.kit.pagination import PageRequest
from telesante.patients import service
from telesante.patients.models import IdentityEvidence, IdentityStatus
from telesante.patients.repository import PatientCriteria, PatientRepository
from telesante.patients.schemas import (
    BreakGlassCreate,
    IdentityStatusChangeCreate,
    PatientUpdate,
    TraitsCorrection,
)
from tests.factories import make_actor, make_organisation, make_patient, patient_data, valid_nir


@pytest.fixture
async def actors(session):
    """The three actors of every access test."""
    here, elsewhere = (
        await make_organisation(session, "CH de Fougères"),
        await make_organisation(session, "CH de Vitré"),
    )
    treating = await make_actor(session, here, Role.REQUESTER)
    colleague = await make_actor(session, elsewhere, Role.EXPERT)
    outsider = await make_actor(session, None, Role.EVALUATOR)
    return treating, colleague, outsider


async def test_names_are_stored_as_ins_traits_and_search_is_accent_insensitive(session, actors):
    treating, _, _ = actors
    patient = await make_patient(
        session, treating, birth_family_name="Lefèvre", birth_given_names="Élodie Anne"
    )
    assert patient.birth_family_name == "LEFEVRE" and patient.first_given_name == "ELODIE"
    for family, given in (("lefevre", ""), ("LEFÈV", ""), ("lef", "élo"), ("", "anne")):
        page = await service.search_patients(
            session, treating.principal, PatientCriteria(family=family, given=given), PageRequest()
        )
        assert [p.id for p in page.items] == [patient.id], (family, given)


async def test_three_actors(session, actors):
    treating, colleague, outsider = actors
    patient = await make_patient(session, treating)
    assert (await service.get_patient(session, treating.principal, patient.id)).patient.id == patient.id
    for other in (colleague, outsider):
        with pytest.raises(NotFound):
            await service.get_patient(session, other.principal, patient.id)
        page = await service.search_patients(
            session, other.principal, PatientCriteria(family="lefevre"), PageRequest()
        )
        assert page.total == 0


async def test_an_act_link_opens_access_to_the_other_organisation(session, actors):
    treating, colleague, _ = actors
    patient = await make_patient(session, treating)
    org_of_colleague = next(iter(colleague.principal.clinical_organisation_ids))
    await service.link_patient_to_organisation(
        session, treating.principal, patient.id, org_of_colleague, "demande:1"
    )
    assert (await service.get_patient(session, colleague.principal, patient.id)).via_break_glass is False


async def test_every_read_is_audited_with_who_and_what(session, actors):
    treating, _, _ = actors
    patient = await make_patient(session, treating)
    await service.get_patient(session, treating.principal, patient.id)
    page = await AuditRepository(session).list_for_patient(patient.id, PageRequest(0, 10))
    actions = [e.action for e in page.items]
    assert actions[:2] == ["read", "create"]
    read = page.items[0]
    assert read.account_id == treating.account.id
    assert "requester" in read.roles and "CH de Fougères" in read.organisations
    assert read.object_type == "Patient" and read.object_id == str(patient.id)


async def test_duplicate_warning_then_confirmation(session, actors):
    treating, colleague, _ = actors
    first = await make_patient(session, treating)
    with pytest.raises(Conflict) as caught:
        await make_patient(session, treating, birth_given_names="Elodie")
    duplicates = caught.value.extra["duplicates"]
    assert duplicates == [{"id": str(first.id), "display": first.display_name}]
    # A colleague elsewhere is warned too, without learning who or where.
    with pytest.raises(Conflict) as hidden:
        await make_patient(session, colleague)
    assert hidden.value.extra["duplicates"][0]["id"] is None
    second, warnings = await service.register_patient(
        session, treating.principal, patient_data(confirm_duplicate=True)
    )
    assert second.id != first.id and warnings


async def test_same_ins_with_other_traits_is_refused(session, actors):
    treating, _, _ = actors
    nir = valid_nir("F", date(1954, 3, 12))
    await make_patient(session, treating, ins_matricule=nir)
    with pytest.raises(service.InsTraitsMismatch):
        await make_patient(
            session, treating, ins_matricule=nir, birth_family_name="Autre", confirm_duplicate=True
        )


# --- registration of an INS the platform already holds: the shared identity is attached (RNIV) ----------------

NIR = valid_nir("F", date(1954, 3, 12))


async def _audit_rows(session, patient_id):
    page = await AuditRepository(session).list_for_patient(patient_id, PageRequest(0, 50))
    return page.items


async def test_an_existing_ins_with_agreeing_traits_is_attached_to_the_other_organisation(session, actors):
    treating, colleague, _ = actors
    existing = await make_patient(session, treating, ins_matricule=NIR, ipp="FOU-1")
    org_b = next(iter(colleague.principal.clinical_organisation_ids))
    with pytest.raises(NotFound):  # before: hospital B cannot see A's patient
        await service.get_patient(session, colleague.principal, existing.id)

    # Accents, case and hyphens folded: the traits typed by B agree with the stored ones.
    data = patient_data(
        ins_matricule=NIR, birth_family_name="lefevre", birth_given_names="elodie marie", ipp="VIT-7"
    )
    patient, warnings = await service.register_patient(session, colleague.principal, data)
    assert patient.id == existing.id and warnings == [service.ATTACHED_BY_INS]
    assert (await service.get_patient(session, colleague.principal, existing.id)).via_break_glass is False
    relations = await service.list_care_relationships(session, colleague.principal, existing.id)
    assert sorted((r.organisation_id == org_b, r.kind.value) for r in relations) == [
        (False, "registered"),
        (True, "registered"),
    ]
    identifiers = await PatientRepository(session).get_local_identifier_for(existing.id, org_b)
    assert identifiers is not None and identifiers.value == "VIT-7"
    attached = [e for e in await _audit_rows(session, existing.id) if '"attached_by":"ins"' in e.details]
    assert len(attached) == 1 and attached[0].account_id == colleague.account.id
    details = json.loads(attached[0].details)
    assert attached[0].action == "create" and attached[0].object_type == "CareRelationship"
    assert details["organisation_id"] == str(org_b) and details["ipp_added"] is True
    assert details["matched_traits"] == sorted(service.STRICT_TRAITS)


async def test_an_unknown_birth_place_is_not_compared(session, actors):
    treating, colleague, _ = actors
    existing = await make_patient(session, treating, ins_matricule=NIR)
    patient, _ = await service.register_patient(
        session, colleague.principal, patient_data(ins_matricule=NIR, birth_place_insee="99999")
    )
    assert patient.id == existing.id
    rows = [e for e in await _audit_rows(session, existing.id) if '"attached_by":"ins"' in e.details]
    assert "birth_place_insee" not in json.loads(rows[0].details)["matched_traits"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"birth_family_name": "Martin"},
        {"birth_given_names": "Elodie"},  # the full list of given names is a strict trait
        {"birth_given_names": "Marie Elodie"},
        {"birth_date": date(1954, 3, 13)},
        {"birth_place_insee": "29019"},
    ],
)
async def test_an_existing_ins_with_other_traits_is_refused_without_revealing_them(
    session, actors, overrides
):
    treating, colleague, _ = actors
    existing = await make_patient(session, treating, ins_matricule=NIR)
    org_b = next(iter(colleague.principal.clinical_organisation_ids))
    before = len(await _audit_rows(session, existing.id))
    with pytest.raises(Conflict) as caught:
        await service.register_patient(
            session, colleague.principal, patient_data(ins_matricule=NIR, ipp="VIT-7", **overrides)
        )
    error = caught.value
    assert (
        error.status_code == 409 and error.field == "ins_matricule" and error.code == "ins-traits-divergents"
    )
    assert "identitovigilance" in error.message and "diffèrent" in error.message
    for stored in ("LEFEVRE", "ELODIE", "1954", "35238", str(existing.id)):
        assert stored not in error.message and stored not in str(error.extra)
    with pytest.raises(NotFound):
        await service.get_patient(session, colleague.principal, existing.id)
    assert await PatientRepository(session).get_local_identifier(org_b, "VIT-7") is None
    relations = await PatientRepository(session).list_care_relationships(existing.id)
    assert [r.organisation_id for r in relations] == list(treating.principal.clinical_organisation_ids)
    assert len(await _audit_rows(session, existing.id)) == before


async def test_an_outsider_cannot_attach_an_existing_ins(session, actors):
    treating, _, outsider = actors
    existing = await make_patient(session, treating, ins_matricule=NIR)
    with pytest.raises(Forbidden):
        await service.register_patient(session, outsider.principal, patient_data(ins_matricule=NIR))
    assert len(await PatientRepository(session).list_care_relationships(existing.id)) == 1


async def test_an_ins_already_followed_is_returned_without_a_second_relationship(session, actors):
    treating, colleague, _ = actors
    existing = await make_patient(session, treating, ins_matricule=NIR, ipp="FOU-1")
    org_b = next(iter(colleague.principal.clinical_organisation_ids))
    await service.link_patient_to_organisation(session, treating.principal, existing.id, org_b, "demande:1")
    for actor, ipp in ((colleague, None), (treating, "FOU-1")):
        patient, warnings = await service.register_patient(
            session, actor.principal, patient_data(ins_matricule=NIR, ipp=ipp)
        )
        assert patient.id == existing.id and warnings == [service.ALREADY_FOLLOWED_BY_INS]
    relations = await PatientRepository(session).list_care_relationships(existing.id)
    assert len(relations) == 2  # A's registration and B's act, nothing more
    rows = [e for e in await _audit_rows(session, existing.id) if '"attached_by":"ins"' in e.details]
    assert [(e.action, e.object_type) for e in rows] == [("read", "Patient")] * 2
    # Another IPP for a patient who already has one in the organisation is refused, as on the record.
    with pytest.raises(Conflict, match="déjà un IPP"):
        await service.register_patient(
            session, treating.principal, patient_data(ins_matricule=NIR, ipp="FOU-2")
        )


async def test_attaching_with_an_ipp_taken_in_the_organisation_writes_nothing(session, actors):
    treating, colleague, _ = actors
    existing = await make_patient(session, treating, ins_matricule=NIR)
    await make_patient(session, colleague, birth_family_name="Autre", ipp="VIT-7")
    with pytest.raises(Conflict, match="IPP est déjà attribué"):
        await service.register_patient(
            session, colleague.principal, patient_data(ins_matricule=NIR, ipp="VIT-7")
        )
    assert len(await PatientRepository(session).list_care_relationships(existing.id)) == 1


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"birth_date": date.today() + timedelta(days=2)}, "futur"),
        ({"birth_place_insee": "75999"}, "aucune commune"),
        ({"ins_matricule": "254033523800199"}, "clé"),
        ({"ins_matricule": valid_nir("M", date(1954, 3, 12))}, "sexe"),
        ({"birth_family_name": "Dupont3"}, "lettres"),
        ({"first_given_name": "Anne"}, "premier prénom"),
    ],
)
def test_bad_traits_are_refused_with_a_french_message(overrides, fragment):
    with pytest.raises(ValidationError) as caught:
        patient_data(**overrides)
    assert fragment in str(caught.value)


async def test_registration_needs_a_clinical_role(session, actors):
    _, _, outsider = actors
    with pytest.raises(Forbidden):
        await service.register_patient(session, outsider.principal, patient_data())


async def test_identity_status_rules(session, actors):
    treating, _, _ = actors
    patient = await make_patient(session, treating)
    nir = valid_nir("F", date(1954, 3, 12))

    async def change(status, evidence, **kw):
        return await service.change_identity_status(
            session,
            treating.principal,
            patient.id,
            IdentityStatusChangeCreate(status=status, evidence=evidence, reason="contrôle", **kw),
        )

    with pytest.raises(InvalidInput):  # qualifiée straight from provisoire
        await change(IdentityStatus.QUALIFIEE, IdentityEvidence.CNI, ins_matricule=nir)
    with pytest.raises(InvalidInput):  # récupérée without INSi
        await change(IdentityStatus.RECUPEREE, IdentityEvidence.CNI, ins_matricule=nir)
    with pytest.raises(InvalidInput):  # livret de famille for an adult
        await change(IdentityStatus.VALIDEE, IdentityEvidence.LIVRET_FAMILLE)
    await change(IdentityStatus.RECUPEREE, IdentityEvidence.TELESERVICE_INSI, ins_matricule=nir)
    with pytest.raises(InvalidInput):  # qualification needs a high-trust document
        await change(IdentityStatus.QUALIFIEE, IdentityEvidence.AUCUN)
    qualified = await change(IdentityStatus.QUALIFIEE, IdentityEvidence.PASSEPORT)
    assert qualified.identity_status == IdentityStatus.QUALIFIEE and qualified.ins_matricule == nir
    history = await service.list_status_changes(session, treating.principal, patient.id)
    assert [h.to_status for h in history] == ["qualifiee", "recuperee", "provisoire"]


async def test_correcting_a_trait_downgrades_to_provisoire(session, actors):
    treating, _, _ = actors
    patient = await make_patient(session, treating)
    await service.change_identity_status(
        session,
        treating.principal,
        patient.id,
        IdentityStatusChangeCreate(
            status=IdentityStatus.VALIDEE, evidence=IdentityEvidence.CNI, reason="CNI vue"
        ),
    )
    corrected = await service.correct_traits(
        session,
        treating.principal,
        patient.id,
        TraitsCorrection(
            birth_family_name="Lefebvre",
            birth_given_names="Elodie Marie",
            birth_date=date(1954, 3, 12),
            sex="F",
            birth_place_insee="35238",
            reason="erreur de saisie",
        ),
    )
    assert (
        corrected.identity_status == IdentityStatus.PROVISOIRE and corrected.search_birth_family == "LEFEBVRE"
    )


async def test_break_the_glass_grants_limited_flagged_access(session, actors, settings):
    treating, colleague, outsider = actors
    patient = await make_patient(session, treating)
    with pytest.raises(NotFound):
        await service.get_patient(session, colleague.principal, patient.id)
    request = BreakGlassCreate(
        reason="Patient inconscient aux urgences, pas d'autre source",
        birth_family_name="lefevre",
        first_given_name="elodie",
        birth_date=date(1954, 3, 12),
    )
    with pytest.raises(Forbidden):
        await service.break_glass(session, outsider.principal, settings, request)
    grants = await service.break_glass(session, colleague.principal, settings, request)
    assert [g.patient_id for g in grants] == [patient.id]
    access = await service.get_patient(session, colleague.principal, patient.id)
    assert access.via_break_glass is True
    events = await AuditRepository(session).list_for_patient(patient.id, PageRequest(0, 5))
    assert events.items[0].break_glass and events.items[1].action == "break_glass"
    # Expired after the configured duration.
    later = clock.now() + timedelta(hours=settings.break_glass_hours, minutes=1)
    clock.set_clock(lambda: later)
    with pytest.raises(NotFound):
        await service.get_patient(session, colleague.principal, patient.id)


async def test_break_glass_reason_is_mandatory():
    with pytest.raises(ValidationError):
        BreakGlassCreate(reason="urgence", ins_matricule=valid_nir("F", date(1954, 3, 12)))


async def test_access_log_lists_readers_and_is_scoped(session, actors):
    treating, colleague, _ = actors
    patient = await make_patient(session, treating)
    await service.get_patient(session, treating.principal, patient.id)
    log = await service.access_log(session, treating.principal, patient.id, PageRequest(0, 50))
    assert {e.action for e in log.items} >= {"create", "read"}
    assert all(e.patient_id == patient.id for e in log.items)
    with pytest.raises(NotFound):
        await service.access_log(session, colleague.principal, patient.id, PageRequest())


async def test_search_follows_renames_through_the_per_organisation_keys(session, actors):
    treating, colleague, _ = actors
    patient = await make_patient(session, treating)
    org_of_colleague = next(iter(colleague.principal.clinical_organisation_ids))
    await service.link_patient_to_organisation(
        session, treating.principal, patient.id, org_of_colleague, "acte:1"
    )
    await service.update_patient(
        session, treating.principal, patient.id, PatientUpdate(used_family_name="Le Bihan")
    )
    await service.correct_traits(
        session,
        treating.principal,
        patient.id,
        TraitsCorrection(
            birth_family_name="Kervella",
            birth_given_names="Elodie Marie",
            birth_date=date(1954, 3, 12),
            sex="F",
            birth_place_insee="35238",
            reason="erreur de saisie",
        ),
    )
    for who in (treating, colleague):
        for family in ("kerv", "le bihan"):
            page = await service.search_patients(
                session, who.principal, PatientCriteria(family=family), PageRequest()
            )
            assert [p.id for p in page.items] == [patient.id], (who.email, family)
        old = await service.search_patients(
            session, who.principal, PatientCriteria(family="lefevre"), PageRequest()
        )
        assert old.total == 0
        # The given names and birth date the care keys hold follow the correction too.
        for given, born, found in (("mar", date(1954, 3, 12), True), ("anne", None, False)):
            page = await service.search_patients(
                session,
                who.principal,
                PatientCriteria(family="kerv", given=given, birth_date=born),
                PageRequest(),
            )
            assert [p.id for p in page.items] == ([patient.id] if found else []), (who.email, given)


async def test_name_search_lists_each_patient_once_in_name_order_with_its_total(session, actors):
    treating, colleague, outsider = actors
    here = next(iter(treating.principal.clinical_organisation_ids))
    # Matched by both names (birth MARTIN, used MARTINEZ), linked twice to the same organisation.
    both = await make_patient(
        session, treating, birth_family_name="Martin", used_family_name="Martinez", birth_given_names="Alice"
    )
    await service.link_patient_to_organisation(session, treating.principal, both.id, here, "acte:7")
    older = await make_patient(
        session, treating, birth_family_name="Martin", birth_given_names="Alice", birth_date=date(1940, 1, 2)
    )
    by_used = await make_patient(
        session,
        treating,
        birth_family_name="Kerhervé",
        used_family_name="Martineau",
        birth_given_names="Zoé",
        sex="F",
    )
    man = await make_patient(
        session, treating, birth_family_name="Martinez", birth_given_names="Yves", sex="M"
    )
    await make_patient(session, treating, birth_family_name="Marchand")
    # Sorted by birth name, given names, birth date: KERHERVE, MARTIN ALICE 1940, MARTIN ALICE 1954, MARTINEZ.
    expected = [by_used.id, older.id, both.id, man.id]

    async def search(who, offset=0, limit=20, **criteria):
        return await service.search_patients(
            session, who.principal, PatientCriteria(**criteria), PageRequest(offset, limit)
        )

    page = await search(treating, family="mart")
    assert [p.id for p in page.items] == expected and page.total == 4
    page = await search(treating, family="mart", offset=1, limit=2)
    assert [p.id for p in page.items] == expected[1:3] and page.total == 4 and page.has_next
    page = await search(treating, family="mart", offset=10)  # past the end: still the total
    assert page.items == [] and page.total == 4
    page = await search(treating, family="martine")
    assert [p.id for p in page.items] == [by_used.id, both.id, man.id] and page.total == 3
    page = await search(treating, family="mart", sex="F")
    assert [p.id for p in page.items] == [by_used.id, older.id, both.id] and page.total == 3
    page = await search(treating, family="mart", given="alice", birth_date=date(1954, 3, 12))
    assert [p.id for p in page.items] == [both.id] and page.total == 1
    for other in (colleague, outsider):
        page = await search(other, family="mart")
        assert page.items == [] and page.total == 0


async def test_name_search_adds_live_emergency_grants_once(session, actors, settings):
    treating, colleague, _ = actors
    patient = await make_patient(session, treating, birth_family_name="Le Goff")
    await make_patient(session, treating, birth_family_name="Le Gall")

    async def search():
        return await service.search_patients(
            session, colleague.principal, PatientCriteria(family="le g"), PageRequest()
        )

    assert (await search()).total == 0
    request = BreakGlassCreate(
        reason="Patient inconscient aux urgences, antécédents nécessaires",
        birth_family_name="le goff",
        first_given_name="elodie",
        birth_date=date(1954, 3, 12),
    )
    await service.break_glass(session, colleague.principal, settings, request)
    page = await search()
    assert [p.id for p in page.items] == [patient.id] and page.total == 1
    # Later linked by an act as well: still listed once.
    elsewhere = next(iter(colleague.principal.clinical_organisation_ids))
    await service.link_patient_to_organisation(session, treating.principal, patient.id, elsewhere, "acte:9")
    page = await search()
    assert [p.id for p in page.items] == [patient.id] and page.total == 1
    later = clock.now() + timedelta(hours=settings.break_glass_hours, minutes=1)
    clock.set_clock(lambda: later)
    assert [p.id for p in (await search()).items] == [patient.id]  # through the act now
