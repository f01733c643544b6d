"""What an uploaded file really is, judged by its content, before it is stored.

Rules (OWASP File Upload Cheat Sheet; ANSSI, *Recommandations pour la sécurisation des sites web*, validation of
uploaded files): an allow-list of types; the type is detected from the content (magic bytes, ``filetype``) and the
file is then really opened with the library of its format (``pypdf`` for PDF, Pillow for JPEG/PNG), so a file that
merely starts like a PDF or an image is refused; the client's name and ``Content-Type`` are never trusted; a size
limit; the stored name is rebuilt from the client's (no path, no control character, an extension that matches the
content). Every refusal is an ``InvalidInput`` naming the file and what is accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

import filetype
from PIL import Image
from pypdf import PdfReader

from telesante.kit.errors import InvalidInput

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
ATTACHMENT_TYPES: frozenset[str] = frozenset({PDF, JPEG, PNG})

LABELS = {PDF: "PDF", JPEG: "JPEG", PNG: "PNG"}
EXTENSIONS = {PDF: ".pdf", JPEG: ".jpg", PNG: ".png"}
_PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG"}
_DESCRIPTIONS = {PDF: "un document PDF", JPEG: "une image JPEG", PNG: "une image PNG"}
MAX_FILENAME_LENGTH = 200
# Characters that Windows refuses in names or that break a header or a shell: replaced by '_'.
_RESERVED = re.compile(r'[<>:"|?*;\\/]')
_MIME = mimetypes.MimeTypes()  # the standard library's built-in table only: the same on every machine


@dataclass(frozen=True)
class CheckedFile:
    content_type: str
    size: int
    sha256: str
    filename: str  # sanitised: no path parts, no control characters, extension matching the content


def check_upload(
    data: bytes,
    filename: str,
    *,
    allowed: set[str] | frozenset[str] = ATTACHMENT_TYPES,
    max_bytes: int,
    field: str = "file",
) -> CheckedFile:
    """Check an uploaded file by its content; ``InvalidInput`` (on ``field``) with a French message otherwise.

    Decodes the whole file (images) or every page (PDF): CPU-bound for large files, see ``check_upload_in_thread``.
    """
    unknown = set(allowed) - ATTACHMENT_TYPES
    if unknown:
        raise ValueError(f"unsupported content types: {sorted(unknown)}")
    name = sanitise_filename(filename)
    accepted = _accepted(allowed)

    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(f"Le fichier « {name} » {reason}", field=field, extra={"filename": name})

    size = len(data)
    if size == 0:
        raise refuse("est vide.")
    if size > max_bytes:
        raise refuse(f"dépasse {format_size(max_bytes)} (taille maximale acceptée).")

    kind = filetype.guess(data)
    content_type = kind.mime if kind is not None else None
    if content_type not in allowed:
        raise refuse(f"n'est pas un {accepted} valide.")

    declared, _ = _MIME.guess_type(name)
    if declared is not None and declared != content_type:
        extension = name.rsplit(".", 1)[-1]
        raise refuse(
            f"n'est pas un {accepted} valide : son contenu est {_DESCRIPTIONS[content_type]} "
            f"mais son nom se termine par .{extension}."
        )

    if content_type == PDF:
        _open_pdf(data, refuse, accepted)
    else:
        _open_image(data, _PILLOW_FORMATS[content_type], refuse, accepted)

    if declared is None:  # no extension, or one that names no type ("IRM 12.03.2024"): add the right one
        name = _shorten(name, MAX_FILENAME_LENGTH - len(EXTENSIONS[content_type])) + EXTENSIONS[content_type]
    return CheckedFile(
        content_type=content_type, size=size, sha256=hashlib.sha256(data).hexdigest(), filename=name
    )


async def check_upload_in_thread(
    data: bytes,
    filename: str,
    *,
    allowed: set[str] | frozenset[str] = ATTACHMENT_TYPES,
    max_bytes: int,
    field: str = "file",
) -> CheckedFile:
    """``check_upload`` in a worker thread, so that decoding a large image does not hold the event loop."""
    return await asyncio.to_thread(
        check_upload, data, filename, allowed=allowed, max_bytes=max_bytes, field=field
    )


def _open_pdf(data: bytes, refuse, accepted: str) -> None:
    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
    except Exception:  # noqa: BLE001 - pypdf raises many exception types on hostile input
        raise refuse(f"n'est pas un {accepted} valide (PDF endommagé ou incomplet).") from None
    if encrypted:
        raise refuse(
            "est un PDF chiffré ou protégé par un mot de passe : enregistrez-le sans protection (ou « imprimez-le » "
            "en PDF) puis joignez-le à nouveau."
        )
    try:
        pages = reader.pages
        if len(pages) == 0:
            raise ValueError("no page")
        for page in pages:  # read every page's content stream: a broken one raises here
            page.mediabox  # noqa: B018
            page.get_contents()
    except Exception:  # noqa: BLE001
        raise refuse(f"n'est pas un {accepted} valide (PDF endommagé ou incomplet).") from None


def _open_image(data: bytes, pillow_format: str, refuse, accepted: str) -> None:
    broken = f"n'est pas un {accepted} valide (image endommagée ou incomplète)."
    too_large = f"est une image trop grande (au plus {Image.MAX_IMAGE_PIXELS:,} pixels).".replace(
        ",", "\u202f"
    )
    try:
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
            width, height = image.size
            # Decompression-bomb guard before any pixel is decoded (Pillow's own limit, ~89 megapixels).
            if width * height > Image.MAX_IMAGE_PIXELS:
                raise refuse(too_large)
            image.verify()  # structure and checksums (PNG CRCs)
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as image:
            image.load()  # decode every pixel: a truncated JPEG fails here
    except InvalidInput:
        raise
    except Image.DecompressionBombError:
        raise refuse(too_large) from None
    except Exception:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError… on broken files
        raise refuse(broken) from None


def sanitise_filename(filename: str | None) -> str:
    """The last path part of the client's name, without control characters, reserved characters or leading dots,
    NFC-normalised and at most ``MAX_FILENAME_LENGTH`` characters (keeping the extension); ``document`` if empty."""
    name = unicodedata.normalize("NFC", filename or "")
    name = re.split(r"[\\/]", name)[-1]  # browsers on Windows may send C:\Users\…\scan.pdf
    # Control and format characters (C*), including NUL and the right-to-left override that disguises extensions.
    name = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in name)
    name = _RESERVED.sub("_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")  # no hidden file, no trailing dot (Windows)
    if not name or set(name) <= {"_", " ", "."}:
        name = "document"
    return _shorten(name, MAX_FILENAME_LENGTH)


def _shorten(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and len(extension) <= 10:
        return stem[: limit - len(extension) - 1].rstrip(" .") + "." + extension
    return name[:limit].rstrip(" .")


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """A ``Content-Disposition`` header value for a stored name (RFC 6266 / RFC 5987): an ASCII fallback for old
    clients plus the exact UTF-8 name, so accented names are kept and the header is always valid."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    fallback = re.sub(r"[^A-Za-z0-9._ ()-]", "_", fallback).strip() or "document"
    disposition = "inline" if inline else "attachment"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def format_size(size: int) -> str:
    """A size in French units (1 Mo = 1 048 576 octets, as file managers show it)."""
    for unit, factor in (("Go", 1024**3), ("Mo", 1024**2), ("Ko", 1024)):
        if size >= factor:
            value = size / factor
            text = f"{value:.0f}" if value == int(value) else f"{value:.1f}".replace(".", ",")
            return f"{text} {unit}"
    return f"{size} octets"


def _accepted(allowed: set[str] | frozenset[str]) -> str:
    labels = [LABELS[t] for t in (PDF, JPEG, PNG) if t in allowed]
    if len(labels) == 1:
        return labels[0]
    return ", ".join(labels[:-1]) + " ou " + labels[-1]
