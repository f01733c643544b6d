"""Reading one DICOM Part 10 file as received (pydicom): its identifiers, its index attributes and its DICOM JSON
(PS3.18 F.2) without bulk data — refusing what cannot be stored safely (not DICOM, no identifiers, truncated).

Pure functions of bytes: no database, no storage; run in a worker thread by the service (parsing is CPU-bound)."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from telesante.kit.errors import DomainError

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
BULK_TAGS = {"7FE00010", "7FE00008", "7FE00009"}  # Pixel Data, Float and Double Float Pixel Data
# Study-level attributes (patient and general study modules) that QIDO-RS returns for a study.
STUDY_TAGS = (
    "00080020",  # StudyDate
    "00080030",  # StudyTime
    "00080050",  # AccessionNumber
    "00080090",  # ReferringPhysicianName
    "00081030",  # StudyDescription
    "00100010",  # PatientName
    "00100020",  # PatientID
    "00100030",  # PatientBirthDate
    "00100040",  # PatientSex
    "0020000D",  # StudyInstanceUID
    "00200010",  # StudyID
)
SERIES_TAGS = (
    "00080060",
    "0008103E",
    "0020000E",
    "00200011",
)  # Modality, SeriesDescription, UID, SeriesNumber


class InvalidDicom(DomainError):
    """A file that cannot be stored as a DICOM instance (HTTP 400; C-STORE status C000 "cannot understand")."""

    status_code = 400
    code = "dicom-invalide"
    title = "Fichier DICOM invalide"


@dataclass(frozen=True)
class ParsedInstance:
    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    instance_number: int | None
    number_of_frames: int
    modality: str
    series_number: int | None
    series_description: str
    patient_id: str
    patient_name: str
    birth_date: str
    study_date: str
    study_time: str
    accession_number: str
    study_description: str
    metadata: dict[str, Any]
    sha256: str
    size: int

    @property
    def study_attributes(self) -> dict[str, Any]:
        return {tag: self.metadata[tag] for tag in STUDY_TAGS if tag in self.metadata}

    @property
    def series_attributes(self) -> dict[str, Any]:
        return {tag: self.metadata[tag] for tag in SERIES_TAGS if tag in self.metadata}


def _text(ds: Dataset, keyword: str, limit: int) -> str:
    value = ds.get(keyword, "")
    return str(value if value is not None else "").strip()[:limit]


def _integer(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _uid(ds: Dataset, keyword: str, label: str) -> str:
    value = str(ds.get(keyword, "") or "").strip().rstrip("\x00")
    if not value:
        raise InvalidDicom(
            f"{label} ({keyword}) absent : l'instance ne peut pas être identifiée.", field=keyword
        )
    if len(value) > 64 or not _UID.match(value):
        raise InvalidDicom(f"{label} ({keyword}) invalide : « {value[:70]} ».", field=keyword)
    return value


def _check_pixel_data(ds: Dataset, transfer_syntax: UID) -> None:
    """A truncated file reads "successfully" with short or missing pixel data: refuse it."""
    if "Rows" not in ds or "Columns" not in ds:
        return  # not an image (structured report, presentation state…)
    if "PixelData" not in ds:
        raise InvalidDicom("Image sans données de pixels (fichier tronqué ?).", field="PixelData")
    if transfer_syntax.is_encapsulated:
        try:
            fragments = list(pydicom.encaps.generate_fragments(ds.PixelData))
        except (ValueError, EOFError) as exc:
            raise InvalidDicom(
                f"Données de pixels compressées illisibles ({exc}).", field="PixelData"
            ) from None
        if not fragments:
            raise InvalidDicom("Données de pixels compressées vides (fichier tronqué ?).", field="PixelData")
        return
    frames = _integer(ds, "NumberOfFrames") or 1
    expected = ds.Rows * ds.Columns * int(ds.get("SamplesPerPixel", 1)) * frames * int(ds.BitsAllocated)
    expected = (expected + 7) // 8
    if len(ds.PixelData) < expected:
        raise InvalidDicom(
            f"Données de pixels incomplètes ({len(ds.PixelData)} octets sur {expected} attendus) : fichier tronqué.",
            field="PixelData",
        )


def _drop_bulk(json_dict: dict[str, Any]) -> dict[str, Any]:
    return {tag: value for tag, value in json_dict.items() if tag not in BULK_TAGS}


def parse_instance(data: bytes) -> ParsedInstance:
    """The instance's identifiers and metadata; InvalidDicom (in French, naming what is wrong) otherwise."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise InvalidDicom("Ce n'est pas un fichier DICOM (préambule « DICM » absent, partie 10 attendue).")
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InvalidDicom(f"Fichier DICOM illisible : {exc}") from None
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = UID(str(getattr(meta, "TransferSyntaxUID", "") or ""))
    if not transfer_syntax:
        raise InvalidDicom("Syntaxe de transfert (0002,0010) absente.", field="TransferSyntaxUID")
    sop_instance_uid = _uid(ds, "SOPInstanceUID", "Identifiant d'instance")
    sop_class_uid = _uid(ds, "SOPClassUID", "Classe SOP")
    study_uid = _uid(ds, "StudyInstanceUID", "Identifiant d'étude")
    series_uid = _uid(ds, "SeriesInstanceUID", "Identifiant de série")
    _check_pixel_data(ds, transfer_syntax)
    try:
        without_pixels = Dataset({tag: element for tag, element in ds.items() if tag.group != 0x7FE0})
        metadata = _drop_bulk(without_pixels.to_json_dict(bulk_data_threshold=1_000_000_000))
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidDicom(f"Attributs DICOM illisibles : {exc}") from None
    return ParsedInstance(
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        transfer_syntax_uid=str(transfer_syntax),
        instance_number=_integer(ds, "InstanceNumber"),
        number_of_frames=_integer(ds, "NumberOfFrames") or 1,
        modality=_text(ds, "Modality", 16),
        series_number=_integer(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", 64),
        patient_id=_text(ds, "PatientID", 64),
        patient_name=_text(ds, "PatientName", 200),
        birth_date=_text(ds, "PatientBirthDate", 8),
        study_date=_text(ds, "StudyDate", 8),
        study_time=_text(ds, "StudyTime", 16),
        accession_number=_text(ds, "AccessionNumber", 16),
        study_description=_text(ds, "StudyDescription", 64),
        metadata=metadata,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
