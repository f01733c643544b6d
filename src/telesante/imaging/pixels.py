"""Pixels: decoding a stored frame (any supported transfer syntax) to native little-endian samples, and rendering
it as a windowed JPEG or PNG (WADO-RS /rendered, thumbnails).

Decoders are pydicom's, with GDCM (BSD) for JPEG lossless, JPEG-LS, JPEG 2000 and RLE, pylibjpeg-openjpeg (MIT)
for JPEG 2000 and Pillow for JPEG baseline — licences compatible with the project's (Apache-2.0). Pure functions
of bytes, run in a worker thread by the service (CPU-bound)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pydicom
from PIL import Image
from pydicom.uid import UID

from telesante.kit.errors import DomainError

EXPLICIT_LE = "1.2.840.10008.1.2.1"
NATIVE_SYNTAXES = {
    "1.2.840.10008.1.2",
    EXPLICIT_LE,
}  # little endian, not compressed: frames are served as stored
# Media type of each compressed transfer syntax's frames (PS3.18 table 8.7.3-2).
FRAME_MEDIA_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "image/jpeg",  # JPEG extended
    "1.2.840.10008.1.2.4.57": "image/jpeg",  # JPEG lossless
    "1.2.840.10008.1.2.4.70": "image/jpeg",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
}


class UndecodableImage(DomainError):
    """A frame whose transfer syntax no installed decoder reads (HTTP 415: only as stored)."""

    status_code = 415
    code = "image-non-decodable"
    title = "Image non décodable"


@dataclass(frozen=True)
class Window:
    center: float
    width: float


def decode_frame(data: bytes, index: int) -> np.ndarray:
    """Frame ``index`` (0-based) of the stored file as an array of stored values (no rescale)."""
    try:
        return pydicom.pixels.pixel_array(io.BytesIO(data), index=index)
    except Exception as exc:  # noqa: BLE001 - third-party decoders raise what they like on damaged data
        raise UndecodableImage(f"Image non décodable ({_syntax_name(data)}) : {str(exc)[:200]}") from None


def _syntax_name(data: bytes) -> str:
    try:
        syntax = UID(
            str(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta.TransferSyntaxUID)
        )
        return f"syntaxe de transfert {syntax.name or syntax}"
    except Exception:  # noqa: BLE001 - only for the message
        return "syntaxe de transfert illisible"


def native_frame(data: bytes, index: int) -> bytes:
    """The frame's samples in Explicit VR Little Endian layout (what a viewer reads without a codec)."""
    array = decode_frame(data, index)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _first(value) -> float:
    return float(value[0]) if isinstance(value, pydicom.multival.MultiValue) else float(value)


def _default_window(ds: pydicom.Dataset, values: np.ndarray) -> Window:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is not None and width is not None:
        first = _first
        try:
            return Window(first(center), max(1.0, first(width)))
        except (TypeError, ValueError, IndexError):
            pass
    low, high = float(values.min()), float(values.max())
    return Window((low + high) / 2, max(1.0, high - low))


def render_frame(
    data: bytes,
    index: int,
    *,
    window: Window | None,
    media_type: str = "image/jpeg",
    max_size: tuple[int, int] | None = None,
    quality: int = 90,
) -> bytes:
    """Frame ``index`` rescaled (modality LUT), windowed (linear, PS3.3 C.11.2.1.2) and encoded for a browser."""
    array = decode_frame(data, index)
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    if array.ndim == 3 and array.shape[-1] == 3:  # colour (already RGB after decoding)
        image = Image.fromarray(array.astype(np.uint8), "RGB")
    else:
        values = array.astype(np.float32) * float(ds.get("RescaleSlope", 1) or 1) + float(
            ds.get("RescaleIntercept", 0) or 0
        )
        chosen = window or _default_window(ds, values)
        low = chosen.center - 0.5 - (chosen.width - 1) / 2
        scaled = np.clip((values - low) / max(chosen.width - 1, 1) * 255.0, 0, 255)
        if ds.get("PhotometricInterpretation") == "MONOCHROME1":
            scaled = 255.0 - scaled
        image = Image.fromarray(scaled.astype(np.uint8), "L")
    if max_size:
        image.thumbnail(max_size)
    out = io.BytesIO()
    if media_type == "image/png":
        image.save(out, "PNG")
    else:
        image.save(out, "JPEG", quality=max(1, min(100, quality)))
    return out.getvalue()


def transcode_to_explicit_le(data: bytes) -> bytes:
    """The instance decompressed into Explicit VR Little Endian (for a client that reads no compressed syntax)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data))
        if UID(str(ds.file_meta.TransferSyntaxUID)).is_compressed:
            ds.decompress()
        ds.file_meta.TransferSyntaxUID = EXPLICIT_LE
        out = io.BytesIO()
        ds.save_as(out, implicit_vr=False, little_endian=True, enforce_file_format=True)
    except Exception as exc:  # noqa: BLE001 - third-party decoders raise what they like on damaged data
        raise UndecodableImage(f"Image non décodable ({_syntax_name(data)}) : {str(exc)[:200]}") from None
    return out.getvalue()
