"""Reading one DICOM Part 10 file as received (pydicom): its identifiers, its index attributes and its DICOM JSON
(PS3.18 F.2) without bulk data — refusing what cannot be stored safely (not DICOM, no identifiers, truncated).

Pure functions of bytes: no database, no storage; run in a worker thread by the service (parsing is CPU-bound)."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataelem import RawDataElement
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
    # the DICOM JSON as text: what crosses from the parsing helper process and what the database stores; the
    # parsed form (``metadata``) is made again only where it is read (a new study's patient matching)
    metadata_text: str
    frames: list[list[Fragment]]
    sha256: str
    size: int

    @functools.cached_property
    def metadata(self) -> dict[str, Any]:
        return json.loads(self.metadata_text)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("metadata", None)  # pickled as text only (cheaper both ways than a nested dict)
        return state

    @property
    def study_attributes(self) -> dict[str, Any]:
        return {tag: self.metadata[tag] for tag in STUDY_TAGS if tag in self.metadata}

    @property
    def series_attributes(self) -> dict[str, Any]:
        return {tag: self.metadata[tag] for tag in SERIES_TAGS if tag in self.metadata}


# The index attributes are read from the instance's DICOM JSON (already converted by pydicom), by tag.
def _value(metadata: dict[str, Any], tag: str) -> Any:
    values = (metadata.get(tag) or {}).get("Value") or []
    return values[0] if values else None


def _text(metadata: dict[str, Any], tag: str, limit: int) -> str:
    value = _value(metadata, tag)
    if isinstance(
        value, dict
    ):  # a person name: its alphabetic, ideographic and phonetic groups (PS3.18 F.2.2)
        value = "=".join(value.get(group, "") for group in ("Alphabetic", "Ideographic", "Phonetic")).rstrip(
            "="
        )
    return str(value if value is not None else "").strip()[:limit]


def _integer(metadata: dict[str, Any], tag: str) -> int | None:
    value = _value(metadata, tag)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _uid(metadata: dict[str, Any], tag: str, keyword: str, label: str) -> str:
    value = str(_value(metadata, tag) or "").strip().rstrip("\x00")
    if not value:
        raise InvalidDicom(
            f"{label} ({keyword}) absent : l'instance ne peut pas être identifiée.", field=keyword
        )
    if len(value) > 64 or not _UID.match(value):
        raise InvalidDicom(f"{label} ({keyword}) invalide : « {value[:70]} ».", field=keyword)
    return value


Fragment = tuple[int, int]  # (offset in the file, length)


def _frame_index(
    ds: Dataset, metadata: dict[str, Any], data: bytes, transfer_syntax: UID
) -> list[list[Fragment]]:
    """Where each frame's bytes lie in the file, so that a frame is served by a ranged read of the stored file
    (never by parsing it again). A truncated file reads "successfully" with short or missing pixel data: refused.
    Not an image (structured report, presentation state…): no frames."""
    rows, columns = _integer(metadata, "00280010"), _integer(metadata, "00280011")
    if rows is None or columns is None:
        return []
    raw = ds.get_item(0x7FE00010, keep_deferred=True)
    if raw is None:
        raise InvalidDicom("Image sans données de pixels (fichier tronqué ?).", field="PixelData")
    start = raw.value_tell
    frames = _integer(metadata, "00280008") or 1
    if not transfer_syntax.is_encapsulated:
        bits = _integer(metadata, "00280100") or 16
        frame_length = rows * columns * (_integer(metadata, "00280002") or 1) * bits
        if frame_length % 8:
            raise InvalidDicom(
                "Données de pixels non alignées sur l'octet : non prises en charge.", field="PixelData"
            )
        frame_length //= 8
        available = min(raw.length, len(data) - start)
        if available < frame_length * frames:
            raise InvalidDicom(
                f"Données de pixels incomplètes ({available} octets sur {frame_length * frames} attendus) : "
                "fichier tronqué.",
                field="PixelData",
            )
        return [[(start + n * frame_length, frame_length)] for n in range(frames)]
    try:
        offsets = pydicom.encaps.parse_basic_offsets(io.BytesIO(data[start:]))
        bot_length = int.from_bytes(data[start + 4 : start + 8], "little")
        first = start + 8 + bot_length
        count, positions = pydicom.encaps.parse_fragments(io.BytesIO(data[first:]))
    except (ValueError, EOFError, IndexError) as exc:
        raise InvalidDicom(f"Données de pixels compressées illisibles ({exc}).", field="PixelData") from None
    fragments = [
        (first + p + 8, int.from_bytes(data[first + p + 4 : first + p + 8], "little")) for p in positions
    ]
    if not fragments or any(offset + length > len(data) for offset, length in fragments):
        raise InvalidDicom(
            "Données de pixels compressées incomplètes (fichier tronqué ?).", field="PixelData"
        )
    if frames == 1:
        return [fragments]
    if len(fragments) == frames:
        return [[fragment] for fragment in fragments]
    if len(offsets) == frames:  # several fragments per frame: the Basic Offset Table groups them
        grouped: list[list[Fragment]] = [[] for _ in range(frames)]
        bounds = [first + o for o in offsets]
        for offset, length in fragments:
            index = max(i for i, bound in enumerate(bounds) if bound <= offset - 8)
            grouped[index].append((offset, length))
        return grouped
    raise InvalidDicom(
        f"{frames} images et {count} fragments sans table des positions : découpage en images impossible.",
        field="PixelData",
    )


# DICOM JSON of one element, as pydicom writes it, by (character set, byte order, tag, VR, value bytes as read).
# Most of an instance's header repeats across its series (patient, study, series, geometry): an element already
# seen is not converted again. Only short public elements whose VR the file states are kept, so that the text
# depends on nothing else in the dataset; the memo is emptied when it grows past its limit.
_ELEMENT_JSON: dict[tuple[Any, ...], str] = {}
_MEMO_LIMIT = 20_000
_MEMO_VALUE_BYTES = 256


def _metadata(ds: Dataset) -> str:
    """The dataset's DICOM JSON (PS3.18 F.2) without the pixel data, each element converted by pydicom: as text."""
    charset = ds.get_item(0x00080005)
    charset_key = charset.value if isinstance(charset, RawDataElement) else str(getattr(charset, "value", ""))
    parts = []
    for tag in ds.keys():
        if tag >> 16 == 0x7FE0:
            continue
        raw = ds.get_item(tag)
        key = None
        if (
            type(raw) is RawDataElement
            and raw.VR is not None
            and raw.value is not None
            and len(raw.value) <= _MEMO_VALUE_BYTES
            and not (tag >> 16) & 1
        ):
            key = (charset_key, raw.is_little_endian, tag, raw.VR, raw.value)
            text = _ELEMENT_JSON.get(key)
            if text is not None:
                parts.append(text)
                continue
        element = ds[tag].to_json_dict(bulk_data_element_handler=None, bulk_data_threshold=1_000_000_000)
        text = f'"{tag:08X}":{json.dumps(element)}'
        if key is not None:
            if len(_ELEMENT_JSON) >= _MEMO_LIMIT:
                _ELEMENT_JSON.clear()
            _ELEMENT_JSON[key] = text
        parts.append(text)
    return "{" + ",".join(parts) + "}"


def parse_instance(data: bytes) -> ParsedInstance:
    """The instance's identifiers and metadata; InvalidDicom (in French, naming what is wrong) otherwise."""
    if len(data) < 132 or data[128:132] != b"DICM":
        raise InvalidDicom("Ce n'est pas un fichier DICOM (préambule « DICM » absent, partie 10 attendue).")
    try:
        return _parse(data)
    except DomainError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file: pydicom's errors vary (ValueError, NotImplementedError…)
        raise InvalidDicom(f"Fichier DICOM endommagé ou illisible : {str(exc)[:200]}") from None


def _parse(data: bytes) -> ParsedInstance:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), defer_size=4096)
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        raise InvalidDicom(f"Fichier DICOM illisible : {exc}") from None
    try:
        metadata_text = _metadata(ds)
        metadata = json.loads(metadata_text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidDicom(f"Attributs DICOM illisibles : {exc}") from None
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = UID(str(getattr(meta, "TransferSyntaxUID", "") or ""))
    if not transfer_syntax:
        raise InvalidDicom("Syntaxe de transfert (0002,0010) absente.", field="TransferSyntaxUID")
    sop_instance_uid = _uid(metadata, "00080018", "SOPInstanceUID", "Identifiant d'instance")
    sop_class_uid = _uid(metadata, "00080016", "SOPClassUID", "Classe SOP")
    study_uid = _uid(metadata, "0020000D", "StudyInstanceUID", "Identifiant d'étude")
    series_uid = _uid(metadata, "0020000E", "SeriesInstanceUID", "Identifiant de série")
    frames = _frame_index(ds, metadata, data, transfer_syntax)
    parsed = ParsedInstance(
        sop_class_uid=sop_class_uid,
        sop_instance_uid=sop_instance_uid,
        study_uid=study_uid,
        series_uid=series_uid,
        transfer_syntax_uid=str(transfer_syntax),
        instance_number=_integer(metadata, "00200013"),
        number_of_frames=_integer(metadata, "00280008") or 1,
        modality=_text(metadata, "00080060", 16),
        series_number=_integer(metadata, "00200011"),
        series_description=_text(metadata, "0008103E", 64),
        patient_id=_text(metadata, "00100020", 64),
        patient_name=_text(metadata, "00100010", 200),
        birth_date=_text(metadata, "00100030", 8),
        study_date=_text(metadata, "00080020", 8),
        study_time=_text(metadata, "00080030", 16),
        accession_number=_text(metadata, "00080050", 16),
        study_description=_text(metadata, "00081030", 64),
        metadata_text=metadata_text,
        frames=frames,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    parsed.__dict__["metadata"] = metadata  # already parsed here (``cached_property``)
    return parsed


# --- identity --------------------------------------------------------------------------------------------------


def _first(element: dict[str, Any] | None) -> Any:
    values = (element or {}).get("Value") or []
    return values[0] if values else None


def _issuer_oid(item: dict[str, Any]) -> str:
    """The issuer of a patient identifier: (0010,0024) Universal Entity ID, else (0010,0021) Issuer of Patient ID."""
    qualifiers = _first(item.get("00100024")) or {}
    return str(_first(qualifiers.get("00400032")) or _first(item.get("00100021")) or "").strip()


def ins_in_header(metadata: dict[str, Any], ins_oids: frozenset[str]) -> list[str]:
    """INS matricules sent in the header: the Patient ID itself when its issuer is an INS OID, or an Other Patient
    IDs Sequence (0010,1002) item issued under one (the French imaging framework, CI-SIS volet imagerie)."""
    found = []
    items = [metadata, *((metadata.get("00101002") or {}).get("Value") or [])]
    for item in items:
        value = str(_first(item.get("00100020")) or "").strip()
        if value and _issuer_oid(item) in ins_oids:
            found.append(value)
    return found


def name_parts(value: str) -> tuple[str, str]:
    """(family, given) of a DICOM Person Name (alphabetic group)."""
    alphabetic = value.split("=")[0]
    family, _, rest = alphabetic.partition("^")
    return family.strip(), rest.split("^")[0].strip()
