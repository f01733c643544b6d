"""Synthetic studies made here (pydicom + numpy), never downloaded: a CT phantom series of 512×512 16-bit slices."""

from __future__ import annotations

import pytest

from telesante.imaging.phantom import head_ct
from tests.requests.conftest import offer, region, store  # noqa: F401 - the small region of request tests
from tests.storage.conftest import s3_bucket, s3_endpoint, s3_store  # noqa: F401 - moto's S3 server


@pytest.fixture
def ct_series():
    def make(slices: int = 3, **kwargs) -> list[bytes]:
        return head_ct(slices, **kwargs)

    return make
