"""Walks every route that takes a patient id and proves that only the treating professional gets through:
the colleague in another organisation and the outsider get 404/403 and learn nothing."""

from __future__ import annotations

from datetime import date

import pytest

from telesante.auth import service as auth_service
from telesante.consents import service as consent_service
from telesante.consents.models import ConsentScopeType
from telesante.consents.schemas import ConsentCreate
from telesante.directory import service as directory_service
from telesante.directory.models import Role
from telesante.directory.schemas import MembershipCreate
from telesante.monitoring import service as monitoring_service
from telesante.monitoring.schemas import ProgrammeCreate
from tests.factories import make_actor, make_organisation, make_patient, token_for, valid_nir
from tests.routes import iter_routes

NIR = valid_nir("F", date(1954, 3, 12))

# A valid request for each route taking a patient id: (query, json body, form body).
# A new route must be added here, otherwise test_every_patient_route_is_covered fails.
SAMPLES: dict[tuple[str, str], dict] = {
    ("GET", "/api/patients/{patient_id}"): {},
    ("PATCH", "/api/patients/{patient_id}"): {"json": {"phone": "02 99 00 00 00"}},
    ("POST", "/api/patients/{patient_id}/traits"): {
        "json": {
            "birth_family_name": "Lefebvre",
            "birth_given_names": "Elodie Marie",
            "birth_date": "1954-03-12",
            "sex": "F",
            "birth_place_insee": "35238",
            "reason": "erreur de saisie",
        }
    },
    ("GET", "/api/patients/{patient_id}/identity-status"): {},
    ("POST", "/api/patients/{patient_id}/identity-status"): {
        "json": {
            "status": "recuperee",
            "evidence": "teleservice_insi",
            "reason": "appel INSi",
            "ins_matricule": NIR,
        }
    },
    ("POST", "/api/patients/{patient_id}/local-identifiers"): {
        "json": {"organisation_id": "{org_id}", "value": "IPP-9"}
    },
    ("GET", "/api/patients/{patient_id}/care-relationships"): {},
    ("GET", "/api/patients/{patient_id}/access-log"): {},
    ("GET", "/api/patients/{patient_id}/consents"): {},
    ("POST", "/api/patients/{patient_id}/consents"): {
        "json": {
            "scope_type": "act",
            "scope_code": "teleconsultation",
            "decision": "given",
            "information_text_id": "{notice_id}",
        }
    },
    ("POST", "/api/patients/{patient_id}/consents/{consent_id}/withdraw"): {"json": {"reason": "retrait"}},
    ("GET", "/api/patients/{patient_id}/consents/check"): {
        "params": {"scope_type": "act", "scope_code": "teleconsultation"}
    },
    ("GET", "/fhir/Patient/{patient_id}"): {},
    ("GET", "/api/patients/{patient_id}/monitoring"): {},
    ("POST", "/api/patients/{patient_id}/monitoring"): {
        "json": {
            "programme_id": "{programme_id}",
            "indication": "Insuffisance cardiaque",
            "prescriber_name": "Dr Martin",
            "decision": "refused",
            "conventional_follow_up_offered": True,
        }
    },
}
# HTML pages taking a patient id (bearer tokens work on pages too, and are exempt from CSRF).
# {page_org_id}: a second organisation of the treating professional, where the patient has no IPP yet.
PAGE_SAMPLES: dict[tuple[str, str], dict] = {
    ("GET", "/patients/{patient_id}"): {},
    ("GET", "/patients/{patient_id}/acces"): {},
    ("GET", "/patients/{patient_id}/statut"): {},
    ("POST", "/patients/{patient_id}/statut"): {
        "form": {"status": "validee", "evidence": "cni", "reason": "CNI présentée"}
    },
    ("GET", "/patients/{patient_id}/coordonnees"): {},
    ("POST", "/patients/{patient_id}/coordonnees"): {"form": {"phone": "02 99 00 00 00"}},
    ("GET", "/patients/{patient_id}/traits"): {},
    ("POST", "/patients/{patient_id}/traits"): {
        "form": {
            "birth_family_name": "Lefevre",
            "birth_given_names": "Elodie Marie Jeanne",
            "birth_date": "1954-03-12",
            "sex": "F",
            "birth_place_insee": "35238",
            "reason": "prénom oublié",
        }
    },
    ("GET", "/patients/{patient_id}/ipp"): {},
    ("POST", "/patients/{patient_id}/ipp"): {
        "form": {"organisation_id": "{page_org_id}", "value": "IPP-PAGE-1"}
    },
    ("GET", "/patients/{patient_id}/consentements/nouveau"): {
        "params": {"scope_type": "act", "scope_code": "teleconsultation"}
    },
    ("POST", "/patients/{patient_id}/consentements/nouveau"): {
        "form": {
            "scope_type": "act",
            "scope_code": "teleconsultation",
            "decision": "given",
            "information_text_id": "{notice_id}",
            "method": "oral",
            "given_by": "patient",
        }
    },
    ("GET", "/patients/{patient_id}/telesurveillance"): {},
    ("POST", "/patients/{patient_id}/telesurveillance"): {
        "form": {
            "programme_id": "{programme_id}",
            "indication": "Insuffisance cardiaque",
            "prescriber_name": "Dr Martin",
            "decision": "refused",
            "conventional_follow_up_offered": "oui",
        }
    },
    ("GET", "/patients/{patient_id}/consentements/{consent_id}/retrait"): {},
    ("POST", "/patients/{patient_id}/consentements/{consent_id}/retrait"): {
        "form": {"reason": "ne souhaite plus"}
    },
}


def _patient_routes(app) -> list[tuple[str, str]]:
    return sorted({(m, p) for m, p in iter_routes(app) if "{patient_id}" in p})


def test_every_patient_route_is_covered(app):
    missing = [r for r in _patient_routes(app) if r not in SAMPLES and r not in PAGE_SAMPLES]
    assert not missing, f"routes taking a patient id without an access test sample: {missing}"


@pytest.fixture
async def world(session):
    here, elsewhere = (
        await make_organisation(session, "CH de Dinan"),
        await make_organisation(session, "CH de Redon"),
    )
    second = await make_organisation(session, "CH de Dinan — site de Léhon")
    treating = await make_actor(session, here, Role.REQUESTER)
    await directory_service.add_membership(
        session,
        None,
        MembershipCreate(
            professional_id=treating.professional.id, organisation_id=second.id, role=Role.REQUESTER
        ),
    )
    treating.principal = await auth_service.build_principal(session, treating.account, "session")
    colleague = await make_actor(session, elsewhere, Role.REQUESTER)
    outsider = await make_actor(session, None, Role.EVALUATOR)
    patient = await make_patient(session, treating, organisation_id=here.id)
    notice = (
        await consent_service.list_information_texts(session, ConsentScopeType.ACT, "teleconsultation")
    )[0]
    consent = await consent_service.record_consent(
        session,
        treating.principal,
        patient.id,
        ConsentCreate(
            scope_type="act", scope_code="teleconsultation", decision="given", information_text_id=notice.id
        ),
    )
    admin = await make_actor(session, here, Role.ORG_ADMIN)
    programme = await monitoring_service.create_programme(
        session,
        admin.principal,
        ProgrammeCreate(organisation_id=here.id, code="insuffisance_cardiaque", team_name="Équipe IC"),
    )
    ids = {
        "programme_id": str(programme.id),
        "patient_id": str(patient.id),
        "consent_id": str(consent.id),
        "org_id": str(here.id),
        "page_org_id": str(second.id),
        "notice_id": str(notice.id),
    }
    headers = {
        name: await token_for(session, actor)
        for name, actor in (("treating", treating), ("colleague", colleague), ("outsider", outsider))
    }

    async def fresh_consent() -> str:
        again = await consent_service.record_consent(
            session,
            treating.principal,
            patient.id,
            ConsentCreate(
                scope_type="act",
                scope_code="teleconsultation",
                decision="given",
                information_text_id=notice.id,
            ),
        )
        return str(again.id)

    return ids, headers, fresh_consent


def _fill(value, ids):
    if isinstance(value, str):
        for key, v in ids.items():
            value = value.replace("{" + key + "}", v)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def _call(client, method, path, sample, ids, headers):
    return await client.request(
        method,
        _fill(path, ids),
        headers=headers,
        params=sample.get("params"),
        json=_fill(sample["json"], ids) if "json" in sample else None,
        data=_fill(sample["form"], ids) if "form" in sample else None,
    )


async def test_only_the_treating_professional_gets_through(app, client, world):
    ids, headers, fresh_consent = world
    routes = _patient_routes(app)
    samples = {**SAMPLES, **PAGE_SAMPLES}
    assert len(routes) >= len(SAMPLES)
    for method, path in routes:
        for who in ("colleague", "outsider"):
            response = await _call(client, method, path, samples[(method, path)], ids, headers[who])
            assert response.status_code in (403, 404), (
                who,
                method,
                path,
                response.status_code,
                response.text[:300],
            )
            assert "LEFEVRE" not in response.text and "Lefèvre" not in response.text
    # The same requests succeed for the treating professional (so the samples are meaningful).
    for method, path in routes:
        if "{consent_id}" in path:  # each withdrawal needs a consent still in force
            ids = {**ids, "consent_id": await fresh_consent()}
        response = await _call(client, method, path, samples[(method, path)], ids, headers["treating"])
        assert response.status_code < 400, (method, path, response.status_code, response.text[:300])
