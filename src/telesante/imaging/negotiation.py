"""Content negotiation of DICOMweb (PS3.18 8.7): the Accept header as an ordered list of media ranges, and the
format a frame is sent in (decoded, or as stored)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from telesante.imaging import pixels
from telesante.kit.errors import DomainError


class NotAcceptable(DomainError):
    status_code = 406
    code = "format-non-disponible"
    title = "Format non disponible"


@dataclass(frozen=True)
class MediaRange:
    type: str
    params: dict[str, str]


def parse_accept(header: str) -> list[MediaRange]:
    """Accept as an ordered list (quality factors are ignored: clients list what they prefer first)."""
    ranges = []
    for item in re.split(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", header or "*/*"):
        pieces = [piece.strip() for piece in item.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(pieces[0].lower(), params))
    return ranges or [MediaRange("*/*", {})]


@dataclass(frozen=True)
class FrameFormat:
    multipart: bool
    native: bool  # decode to little-endian samples (else as stored)
    part_type: str  # the media type of each part (with its transfer-syntax parameter)


def frame_format(accept: str, stored_syntax: str) -> FrameFormat:
    stored_native = stored_syntax in pixels.NATIVE_SYNTAXES
    stored_type = (
        "application/octet-stream" if stored_native else pixels.FRAME_MEDIA_TYPES.get(stored_syntax, "")
    )
    native = FrameFormat(True, True, f"application/octet-stream; transfer-syntax={pixels.EXPLICIT_LE}")
    as_stored = FrameFormat(
        True, False, f"{stored_type or 'application/octet-stream'}; transfer-syntax={stored_syntax}"
    )
    for media in parse_accept(accept):
        multipart = media.type == "multipart/related"
        inner = media.params.get("type", "application/octet-stream").lower() if multipart else media.type
        syntax = media.params.get("transfer-syntax")
        if inner in ("*/*", "multipart/*"):
            return native
        if inner == "application/octet-stream":
            if syntax == "*" or syntax == stored_syntax or (syntax is None and stored_native):
                return FrameFormat(
                    multipart, False, as_stored.part_type if syntax == "*" else native.part_type
                )
            if syntax in (None, pixels.EXPLICIT_LE):
                return FrameFormat(multipart, True, native.part_type)
        elif inner == stored_type and syntax in (None, "*", stored_syntax):
            return FrameFormat(multipart, False, as_stored.part_type)
    raise NotAcceptable(
        'Format d\'image demandé non disponible : multipart/related; type="application/octet-stream" '
        f"(décompressé) ou « {stored_type or 'application/octet-stream'} » (tel que stocké, {stored_syntax})."
    )
