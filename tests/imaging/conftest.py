"""Synthetic studies made here (pydicom + numpy), never downloaded: a CT phantom series of 512×512 16-bit slices."""

from __future__ import annotations

import io

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from tests.requests.conftest import offer, region, store  # noqa: F401 - the small region of request tests


def ct_slice(
    study_uid: str,
    series_uid: str,
    number: int,
    *,
    patient_id: str = "IPP-0001",
    birth_date: str = "19500504",
    rows: int = 512,
) -> bytes:
    """One slice of a head CT phantom: a skull ring (bone, ~1000 HU) around brain (~35 HU), air outside."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
        "LE GOFF^YANN",
        patient_id,
        birth_date,
        "M",
    )
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20261124", "031500", "ACC-42"
    ds.StudyDescription, ds.SeriesDescription = "TDM CEREBRALE SANS INJECTION", "CRANE 5MM"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 2, number
    ds.Rows = ds.Columns = rows
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PixelSpacing, ds.SliceThickness = [0.45, 0.45], 5
    ds.ImagePositionPatient = [-115, -115, 5 * number]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    half = rows // 2
    y, x = np.mgrid[-half : rows - half, -half : rows - half] * (512 / rows)
    radius = np.hypot(x, y * 1.2)
    image = np.zeros((rows, rows), dtype=np.int16)  # air: -1024 HU once rescaled
    image[radius < 200] = 1024 + 1000  # skull
    image[radius < 185] = 1024 + 35 + (number % 7)  # brain
    ds.PixelData = image.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


@pytest.fixture
def ct_series():
    def make(slices: int = 3, **kwargs) -> list[bytes]:
        study_uid, series_uid = generate_uid(), generate_uid()
        return [ct_slice(study_uid, series_uid, n, **kwargs) for n in range(1, slices + 1)]

    return make
