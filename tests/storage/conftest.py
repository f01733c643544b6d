"""Blob stores for the storage tests: the filesystem one, and an S3 one talking HTTP to a real S3-protocol server
(moto's threaded server on 127.0.0.1, a free port) — the code path used with MinIO, Ceph or Scaleway."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from fpdf import FPDF
from moto.server import ThreadedMotoServer
from PIL import Image

from telesante.storage.blobs import FilesystemBlobStore, S3BlobStore

ACCESS_KEY = "telesante-test"
SECRET_KEY = "telesante-test-secret"
REGION = "eu-west-3"
_buckets = itertools.count(1)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_admin(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def s3_bucket(s3_endpoint) -> str:
    name = f"telesante-test-{next(_buckets)}"
    s3_admin(s3_endpoint).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    return name


def make_s3_store(endpoint: str, bucket: str, **kwargs) -> S3BlobStore:
    return S3BlobStore(
        bucket,
        endpoint_url=endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        addressing_style="path",
        **kwargs,
    )


@pytest.fixture
def fs_store(tmp_path) -> FilesystemBlobStore:
    return FilesystemBlobStore(tmp_path / "blobs")


@pytest.fixture
def s3_store(s3_endpoint, s3_bucket) -> S3BlobStore:
    return make_s3_store(s3_endpoint, s3_bucket)


@pytest.fixture(params=["filesystem", "s3"])
def store(request):
    return request.getfixturevalue("fs_store" if request.param == "filesystem" else "s3_store")


# --- real files, made by the libraries of their formats -----------------------------------------------------


def a_pdf(text: str = "Compte rendu de scanner cérébral", pages: int = 1) -> bytes:
    pdf = FPDF()
    pdf.set_creation_date(datetime(2026, 1, 15, 9, 30, tzinfo=UTC))  # same text, same bytes
    pdf.set_font("helvetica", size=12)
    for n in range(pages):
        pdf.add_page()
        pdf.cell(text=f"{text} - page {n + 1}")
    return bytes(pdf.output())


def an_image(fmt: str = "PNG", size: tuple[int, int] = (64, 48), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()
