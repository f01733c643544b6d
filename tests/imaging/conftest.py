"""Synthetic studies made here (pydicom + numpy), never downloaded: a CT phantom series of 512×512 16-bit slices."""

from __future__ import annotations

from datetime import date

import pytest

from telesante.directory.models import Role
from telesante.imaging.phantom import head_ct
from tests.factories import make_actor, make_organisation, make_patient, token_for
from tests.requests.conftest import offer, region, store  # noqa: F401 - the small region of request tests
from tests.storage.conftest import s3_bucket, s3_endpoint, s3_store  # noqa: F401 - moto's S3 server


@pytest.fixture
def ct_series():
    def make(slices: int = 3, **kwargs) -> list[bytes]:
        return head_ct(slices, **kwargs)

    return make


@pytest.fixture
async def actors(session):
    fougeres = await make_organisation(session, "CH de Fougères")
    vitre = await make_organisation(session, "CH de Vitré")
    treating = await make_actor(session, fougeres, Role.REQUESTER)
    colleague = await make_actor(session, vitre, Role.EXPERT)
    outsider = await make_actor(session, None, Role.EVALUATOR)
    await make_patient(
        session,
        treating,
        birth_family_name="Le Goff",
        birth_given_names="Yann",
        birth_date=date(1950, 5, 4),
        sex="M",
        ipp="IPP-0001",
    )
    return {
        "treating": await token_for(session, treating),
        "colleague": await token_for(session, colleague),
        "outsider": await token_for(session, outsider),
    }
