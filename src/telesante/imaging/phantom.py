"""A synthetic head CT (pydicom + numpy), made here and never downloaded: for the demo region, the tests and the
benchmarks. A skull ring (bone, ~1000 HU) around brain (~35 HU, a little texture per slice), air outside; the
identity and the study attributes are those of a demo patient unless told otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def ct_slice(
    study_uid: str,
    series_uid: str,
    number: int,
    *,
    patient_id: str = "IPP-0001",
    patient_name: str = "LE GOFF^YANN",
    birth_date: str = "19500504",
    sex: str = "M",
    rows: int = 512,
    study_date: str = "20261124",
    study_time: str = "031500",
    accession_number: str = "ACC-42",
    sop_instance_uid: str | None = None,
) -> bytes:
    """One axial slice, 5 mm apart, as a DICOM Part 10 file in Explicit VR Little Endian."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_instance_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
        patient_name,
        patient_id,
        birth_date,
        sex,
    )
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = study_date, study_time, accession_number
    ds.StudyDescription, ds.SeriesDescription = "TDM CEREBRALE SANS INJECTION", "CRANE 5MM"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 2, number
    ds.Rows = ds.Columns = rows
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.WindowCenter, ds.WindowWidth = 40, 80
    ds.PixelSpacing, ds.SliceThickness = [round(230 / rows, 4), round(230 / rows, 4)], 5
    ds.ImagePositionPatient = [-115, -115, 5 * number]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    half = rows // 2
    y, x = np.mgrid[-half : rows - half, -half : rows - half] * (512 / rows)
    radius = np.hypot(x, y * 1.2)
    image = np.zeros((rows, rows), dtype=np.int16)  # air: -1024 HU once rescaled
    image[radius < 200] = 1024 + 1000  # skull
    brain = radius < 185
    image[brain] = 1024 + 35 + ((x[brain] + y[brain] * 3 + number * 7) % 9).astype(np.int16)
    ventricle = np.hypot(x - 10 * np.sin(number / 8), y) < 25 + (number % 30)
    image[ventricle & brain] = 1024 + 8  # cerebrospinal fluid
    ds.PixelData = image.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def head_ct(slices: int = 300, *, uid_seed: str | None = None, **kwargs) -> list[bytes]:
    """A whole series (one study) of ``slices`` slices; with ``uid_seed`` the UIDs are always the same (the demo
    seed stores it once however often it runs)."""

    def uid(*parts: object) -> str:
        return generate_uid(entropy_srcs=[uid_seed, *map(str, parts)]) if uid_seed else generate_uid()

    study_uid, series_uid = uid("study"), uid("series")
    return [
        ct_slice(study_uid, series_uid, number, sop_instance_uid=uid("instance", number), **kwargs)
        for number in range(1, slices + 1)
    ]


def write_series(folder: Path, files: list[bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number, data in enumerate(files, start=1):
        (folder / f"IM{number:05d}.dcm").write_bytes(data)
    return folder
