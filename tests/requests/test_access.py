"""Walks every route that takes a request id (API and pages) with the three actors: the requester gets through,
the clinician of another hospital and the outsider get 404/403 and learn nothing about the patient."""

from __future__ import annotations

import pytest

from telesante.requests import service
from telesante.requests.schemas import RequestCreate
from tests.factories import token_for
from tests.offers.test_forms import head_trauma_answers
from tests.requests.test_service import MAX, a_pdf
from tests.routes import iter_routes

# A valid call for each route taking a request id, made by the requester (the treating professional).
SAMPLES: dict[tuple[str, str], dict] = {
    ("GET", "/api/requests/{request_id}"): {},
    ("PATCH", "/api/requests/{request_id}"): {"json": {"answers": head_trauma_answers()}},
    ("POST", "/api/requests/{request_id}/attachments"): {
        "files": {"file": ("ct.pdf", "{pdf}", "application/pdf")}
    },
    ("GET", "/api/requests/{request_id}/attachments/{attachment_id}"): {},
    ("POST", "/api/requests/{request_id}/send"): {
        "json": {"emergency_exemption": "Patient inconscient, seul"}
    },
    ("POST", "/api/requests/{request_id}/accept"): {"expected": 403},
    ("POST", "/api/requests/{request_id}/decline"): {"json": {"reason": "hors champ"}, "expected": 403},
    ("POST", "/api/requests/{request_id}/cancel"): {"json": {"reason": "erreur de patient"}},
    ("POST", "/api/requests/{request_id}/messages"): {"json": {"kind": "information", "body": "INR 2,8"}},
    ("POST", "/api/requests/{request_id}/answer"): {
        "json": {"answers": {"decision": "autre", "decision_details": "x"}, "conclusion": "avis"},
        "expected": 403,
    },
    ("POST", "/api/requests/{request_id}/report"): {
        "json": {
            "conclusion": "Avis",
            "prescriptions": "aucune",
            "participants": [{"name": "Dr Expert", "role": "neurochirurgien"}],
            "performed_at": "2026-11-23T10:00:00Z",
            "technical_incident": False,
        },
        "expected": 403,
    },
    ("GET", "/api/requests/{request_id}/report.pdf"): {"expected": 404},
    ("POST", "/api/requests/{request_id}/close"): {"expected": 409},
    ("GET", "/demandes/{request_id}"): {},
    ("POST", "/demandes/{request_id}/brouillon"): {"form": {"mechanism": "agression"}, "expected": 303},
    ("POST", "/demandes/{request_id}/envoyer"): {"form": {}, "expected": 422},  # the draft was just emptied
    ("POST", "/demandes/{request_id}/accepter"): {"expected": 403},
    ("POST", "/demandes/{request_id}/refuser"): {"form": {"reason": "hors champ"}, "expected": 403},
    ("POST", "/demandes/{request_id}/annuler"): {"form": {"reason": "erreur"}, "expected": 303},
    ("POST", "/demandes/{request_id}/messages"): {
        "form": {"kind": "information", "body": "x"},
        "expected": 409,
    },
    ("POST", "/demandes/{request_id}/documents"): {
        "files": {"file": ("ct.pdf", "{pdf}", "application/pdf")},
        "expected": 303,
    },
    ("GET", "/demandes/{request_id}/documents/{attachment_id}"): {},
    ("POST", "/demandes/{request_id}/repondre"): {"form": {"conclusion": "avis"}, "expected": 403},
    ("GET", "/demandes/{request_id}/compte-rendu.pdf"): {"expected": 404},
    ("POST", "/demandes/{request_id}/compte-rendu"): {"form": {"conclusion": "x"}, "expected": 422},
    ("POST", "/demandes/{request_id}/cloturer"): {"expected": 409},
    # imaging of the case: a study that is not the patient's is not found; attaching an unknown one is refused
    ("GET", "/demandes/{request_id}/imagerie/{study_uid}"): {"expected": 404},
    # teleradiology: this request is not one (its justification is refused for the parties, unseen for others)
    ("POST", "/demandes/{request_id}/justification"): {
        "form": {"decision": "justifie", "protocol": "TDM"},
        "expected": 409,
    },
    ("POST", "/demandes/{request_id}/imagerie/joindre"): {
        "form": {"study_id": "5d1c2f0e-0000-4000-8000-000000000000"},
        "expected": 422,
    },
    ("GET", "/fhir/ServiceRequest/{request_id}"): {},
    ("GET", "/fhir/Task/{request_id}"): {},
    ("GET", "/fhir/QuestionnaireResponse/{request_id}"): {},
}


def _request_routes(app) -> list[tuple[str, str]]:
    return sorted({(m, p) for m, p in iter_routes(app) if "{request_id}" in p})


def test_every_request_route_is_covered(app):
    missing = [r for r in _request_routes(app) if r not in SAMPLES]
    assert not missing, f"routes taking a request id without an access test sample: {missing}"


@pytest.fixture
async def world(session, region, offer, patient, store, app):
    app.state.blob_store = store
    draft = await service.create_request(
        session,
        region.requester.principal,
        RequestCreate(offer_id=offer.id, patient_id=patient.id, answers=head_trauma_answers()),
    )
    attachment = await service.add_attachment(
        session, region.requester.principal, store, draft.id, "scanner.pdf", a_pdf(), max_bytes=MAX
    )
    ids = {"request_id": str(draft.id), "attachment_id": str(attachment.id), "study_uid": "1.2.250.1.999.1"}
    headers = {
        "treating": await token_for(session, region.requester),
        "colleague": await token_for(session, region.colleague),
        "outsider": await token_for(session, region.outsider),
    }
    return ids, headers


def _fill(path: str, ids: dict[str, str]) -> str:
    for key, value in ids.items():
        path = path.replace("{" + key + "}", value)
    return path


async def _call(client, method, path, sample, ids, headers):
    files = None
    if "files" in sample:
        files = {k: (name, a_pdf(), kind) for k, (name, _, kind) in sample["files"].items()}
    return await client.request(
        method,
        _fill(path, ids),
        headers=headers,
        json=sample.get("json"),
        data=sample.get("form"),
        files=files,
        follow_redirects=False,
    )


async def test_only_the_parties_get_through(app, client, world):
    ids, headers = world
    routes = _request_routes(app)
    for method, path in routes:
        for who in ("colleague", "outsider"):
            response = await _call(client, method, path, SAMPLES[(method, path)], ids, headers[who])
            assert response.status_code in (403, 404), (
                who,
                method,
                path,
                response.status_code,
                response.text[:300],
            )
            assert "LE GOFF" not in response.text, (who, method, path)
    # The requester's calls behave as the state allows (so that the samples are meaningful), the draft first.
    order = sorted(routes, key=lambda r: ("cancel" in r[1] or "annuler" in r[1] or "send" in r[1], r))
    for method, path in order:
        sample = SAMPLES[(method, path)]
        if "send" in path or "cancel" in path or "annuler" in path:
            continue  # they end the draft; checked below on their own
        response = await _call(client, method, path, sample, ids, headers["treating"])
        assert response.status_code == sample.get(
            "expected", 200 if method == "GET" else response.status_code
        ), (
            method,
            path,
            response.status_code,
            response.text[:300],
        )
        assert response.status_code < 500
    restored = await client.patch(
        _fill("/api/requests/{request_id}", ids),
        json={"answers": head_trauma_answers()},
        headers=headers["treating"],
    )
    assert restored.status_code == 200, restored.text
    sent = await _call(
        client,
        "POST",
        "/api/requests/{request_id}/send",
        SAMPLES[("POST", "/api/requests/{request_id}/send")],
        ids,
        headers["treating"],
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "sent"
