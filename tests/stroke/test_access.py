"""Walks every route that takes a stroke case id (API and pages) with the three actors: the emergency doctor gets
through, the clinician of another hospital and the outsider get 404/403 and learn nothing about the patient."""

from __future__ import annotations

from telesante.stroke import service
from tests.factories import token_for
from tests.routes import iter_routes
from tests.stroke.test_service import NIHSS_14, alert

# A valid call for each route taking a case id, made by the emergency doctor (the treating professional).
SAMPLES: dict[tuple[str, str], dict] = {
    ("GET", "/api/stroke/cases/{case_id}"): {},
    ("POST", "/api/stroke/cases/{case_id}/acknowledge"): {"expected": 403},  # not a neurologist of the rota
    ("POST", "/api/stroke/cases/{case_id}/milestones"): {"json": {"kind": "video_started"}, "expected": 201},
    ("POST", "/api/stroke/cases/{case_id}/nihss"): {"json": {"items": NIHSS_14}, "expected": 201},
    ("PATCH", "/api/stroke/cases/{case_id}/measures"): {"json": {"weight_kg": 70}},
    ("PATCH", "/api/stroke/cases/{case_id}/checklist"): {"json": {"answers": {"hemorragie_imagerie": "non"}}},
    ("POST", "/api/stroke/cases/{case_id}/decision"): {
        "json": {"disposition": "monitoring", "reasons": "NIHSS 2"},
        "expected": 403,  # the neurologist decides
    },
    ("GET", "/avc/{case_id}"): {},
    ("POST", "/avc/{case_id}/prendre"): {"expected": 403},
    ("POST", "/avc/{case_id}/jalons"): {"form": {"kind": "imaging_available"}, "expected": 303},
    ("POST", "/avc/{case_id}/nihss"): {
        "form": {f"item_{k}": str(v) for k, v in NIHSS_14.items()},
        "expected": 303,
    },
    ("POST", "/avc/{case_id}/mesures"): {"form": {"systolic": "150", "diastolic": "90"}, "expected": 303},
    ("POST", "/avc/{case_id}/checklist"): {"form": {"ci_avc_trauma_3_mois": "non"}, "expected": 303},
    ("POST", "/avc/{case_id}/decision"): {
        "form": {"disposition": "monitoring", "reasons": "x"},
        "expected": 403,
    },
    ("POST", "/avc/{case_id}/video"): {"expected": 409},  # nobody took the alert yet
    ("GET", "/avc/{case_id}/salle"): {"expected": 303},  # no call yet: back to the case
    ("POST", "/avc/{case_id}/imagerie"): {"form": {"accession_number": "ACC-7"}, "expected": 303},
    ("GET", "/avc/{case_id}/compte-rendu"): {"expected": 409},
    ("GET", "/avc/{case_id}/imagerie/{study_uid}"): {
        "expected": 303
    },  # no images yet: back to the case  # no decision yet
    ("POST", "/avc/{case_id}/compte-rendu"): {"form": {"conclusion": "x"}, "expected": 409},
}


def _case_routes(app) -> list[tuple[str, str]]:
    return sorted({(m, p) for m, p in iter_routes(app) if "{case_id}" in p})


def test_every_case_route_is_covered(app):
    missing = [r for r in _case_routes(app) if r not in SAMPLES]
    assert not missing, f"routes taking a stroke case id without an access test sample: {missing}"


async def test_only_the_parties_get_through(app, client, session, settings, network, patient):
    case_id = str(
        (await service.create_alert(session, network.emergency.principal, settings, alert(patient.id))).id
    )
    headers = {
        "treating": await token_for(session, network.emergency),
        "colleague": await token_for(session, network.colleague),
        "outsider": await token_for(session, network.outsider),
    }
    for method, path in _case_routes(app):
        sample = SAMPLES[(method, path)]
        url = path.replace("{case_id}", case_id)
        for who in ("colleague", "outsider"):
            response = await client.request(
                method, url, headers=headers[who], json=sample.get("json"), data=sample.get("form")
            )
            assert response.status_code in (403, 404), (who, method, path, response.status_code)
            assert "LE BIHAN" not in response.text.upper(), (who, method, path)
        response = await client.request(
            method,
            url,
            headers=headers["treating"],
            json=sample.get("json"),
            data=sample.get("form"),
            follow_redirects=False,
        )
        expected = sample.get("expected", 200)
        assert response.status_code == expected, (method, path, response.status_code, response.text[:300])
