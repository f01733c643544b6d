"""DICOMweb (PS3.18) at /dicomweb: QIDO-RS search, WADO-RS retrieval (instances, metadata, frames, rendered) and
STOW-RS storage, with a bearer token or the web session (the viewer of the case page).

Routes are thin: they parse the query and the Accept header, call the imaging service (which scopes and audits),
and shape the answer (DICOM JSON, multipart/related). The conformance is in docs/domains/imaging.md."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydicom.datadict import keyword_for_tag, tag_for_keyword
from python_multipart.multipart import MultipartParser
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from telesante.auth.dependencies import PrincipalDep, SessionDep, SettingsDep
from telesante.imaging import fastpath, pixels, service
from telesante.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy
from telesante.imaging.negotiation import MediaRange, NotAcceptable, frame_format, parse_accept
from telesante.imaging.repository import InstanceEntry, StudyCriteria
from telesante.kit.errors import DomainError, InvalidInput
from telesante.kit.pagination import PageRequest
from telesante.storage.blobs import BlobStore
from telesante.storage.dependencies import BlobStoreDep
from telesante.web.zerocopy import ReceivedChunk

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"])


class DicomwebCors:
    """CORS for /dicomweb only, for the origins of ``TELESANTE_DICOMWEB_CORS_ORIGINS`` (a viewer such as OHIF
    served from another origin, calling with a bearer token). No cookies are allowed across origins: a session never
    authorises a foreign page. Outermost, so that frames served by the fast path carry the headers too."""

    def __init__(self, app: ASGIApp, origins: list[str]):
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Accept", "Content-Type"],
            expose_headers=["Content-Location", "Content-Length", "Warning"],
            allow_credentials=False,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/dicomweb/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


DICOM_JSON = "application/dicom+json"
UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"
_FRAME_LIST = re.compile(r"^[0-9]{1,6}(,[0-9]{1,6}){0,499}$")


class BadRequest(InvalidInput):
    """A DICOMweb request that cannot be understood: 400, as PS3.18 says (the field is named)."""

    status_code = 400


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "type-non-pris-en-charge"
    title = "Type de contenu non pris en charge"


def _uid(value: str, field: str) -> str:
    if len(value) > 64 or not re.match(UID_PATTERN, value):
        raise BadRequest(
            f"{field} invalide : un UID DICOM (chiffres et points, 64 caractères au plus).", field=field
        )
    return value


def _uids(study_uid: str, series_uid: str | None = None, sop_uid: str | None = None) -> tuple[str, ...]:
    """The UIDs of a resource path, each checked (400 naming the bad one); absent levels stay None."""
    return (
        _uid(study_uid, "StudyInstanceUID"),
        _uid(series_uid, "SeriesInstanceUID") if series_uid is not None else None,
        _uid(sop_uid, "SOPInstanceUID") if sop_uid is not None else None,
    )


def _base(request: Request) -> str:
    return str(request.url_for("qido_studies"))[: -len("/studies")]


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(
        json.dumps(content, separators=(",", ":"), ensure_ascii=False),
        status_code=status_code,
        media_type=DICOM_JSON,
    )


# --- content negotiation -----------------------------------------------------------------------------------


def instance_format(accept: str) -> tuple[bool, str | None]:
    """(multipart, transfer syntax wanted or None for as stored)."""
    for media in parse_accept(accept):
        multipart = media.type == "multipart/related"
        inner = media.params.get("type", "application/dicom").lower() if multipart else media.type
        if inner in ("application/dicom", "*/*") or media.type in ("*/*", "multipart/*"):
            syntax = media.params.get("transfer-syntax")
            return multipart or media.type != "application/dicom", None if syntax in (None, "*") else syntax
    raise NotAcceptable('Instances servies en multipart/related; type="application/dicom" seulement.')


def _multipart(parts: AsyncIterator[tuple[str, str, bytes]], inner_type: str) -> StreamingResponse:
    boundary = secrets.token_hex(16)

    async def body() -> AsyncIterator[bytes]:
        async for content_type, location, data in parts:
            head = (
                f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Location: {location}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            ).encode()
            yield b"".join((head, data, b"\r\n"))  # one write per part
        yield f"--{boundary}--\r\n".encode()

    return StreamingResponse(
        body(), media_type=f'multipart/related; type="{inner_type}"; boundary={boundary}'
    )


# --- DICOM JSON of the index -------------------------------------------------------------------------------


def _attr(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def study_json(study: ImagingStudy, base: str) -> dict[str, Any]:
    out = dict(study.attributes)
    out["0020000D"] = _attr("UI", study.study_uid)
    out["00080061"] = _attr("CS", *[m for m in study.modalities.split("\\") if m])
    out["00201206"] = _attr("IS", study.series_count)
    out["00201208"] = _attr("IS", study.instance_count)
    out["00080056"] = _attr("CS", "ONLINE")
    out["00081190"] = _attr("UR", f"{base}/studies/{study.study_uid}")
    return dict(sorted(out.items()))


def series_json(study: ImagingStudy, series: ImagingSeries, base: str) -> dict[str, Any]:
    out = dict(series.attributes)
    out["0020000D"] = _attr("UI", study.study_uid)
    out["0020000E"] = _attr("UI", series.series_uid)
    out["00080060"] = _attr("CS", *([series.modality] if series.modality else []))
    out["00201209"] = _attr("IS", series.instance_count)
    out["00080056"] = _attr("CS", "ONLINE")
    out["00081190"] = _attr("UR", f"{base}/studies/{study.study_uid}/series/{series.series_uid}")
    return dict(sorted(out.items()))


INSTANCE_TAGS = ("00080016", "00080018", "00200013", "00280010", "00280011", "00280008", "00280100")


def instance_json(
    study: ImagingStudy, series: ImagingSeries, instance: ImagingInstance, base: str
) -> dict[str, Any]:
    meta = instance.metadata_json
    out = {tag: meta[tag] for tag in INSTANCE_TAGS if tag in meta}
    out["0020000D"] = _attr("UI", study.study_uid)
    out["0020000E"] = _attr("UI", series.series_uid)
    out["00080018"] = _attr("UI", instance.sop_instance_uid)
    out["00080016"] = _attr("UI", instance.sop_class_uid)
    out["00083002"] = _attr("UI", instance.transfer_syntax_uid)
    out["00080056"] = _attr("CS", "ONLINE")
    out["00081190"] = _attr("UR", _instance_url(base, study, series, instance))
    return dict(sorted(out.items()))


def metadata_text(study: ImagingStudy, entry: InstanceEntry, base: str) -> str:
    """The stored DICOM JSON of the instance, with its Available Transfer Syntax UID and the address of its pixel
    data added — spliced as text: the stored object is never parsed again to be sent."""
    extra = {"00083002": _attr("UI", entry.transfer_syntax_uid)}
    if entry.has_frames:
        url = f"{base}/studies/{study.study_uid}/series/{entry.series_uid}/instances/{entry.sop_instance_uid}"
        extra["7FE00010"] = {"vr": "OW", "BulkDataURI": url + "/frames/1"}
    added = json.dumps(extra, separators=(",", ":"), ensure_ascii=False)[1:-1]
    text = entry.metadata_text.strip()
    return text[:-1] + ("," if text != "{}" else "") + added + "}"


def _instance_url(base: str, study: ImagingStudy, series: ImagingSeries, instance: ImagingInstance) -> str:
    return (
        f"{base}/studies/{study.study_uid}/series/{series.series_uid}/instances/{instance.sop_instance_uid}"
    )


# --- QIDO-RS -----------------------------------------------------------------------------------------------

QIDO_STUDY_KEYS = {
    "StudyInstanceUID",
    "PatientID",
    "PatientName",
    "StudyDate",
    "ModalitiesInStudy",
    "AccessionNumber",
    "StudyDescription",
}
QIDO_CONTROL = {"limit", "offset", "includefield", "fuzzymatching"}
_DATE_RANGE = re.compile(r"^([0-9]{8})?(-)?([0-9]{8})?$")


def _qido_keyword(key: str) -> str:
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        return keyword_for_tag(int(key, 16)) or key
    return key


def _study_criteria(request: Request) -> tuple[StudyCriteria, list[str]]:
    values: dict[str, str] = {}
    ignored = []
    for key, value in request.query_params.multi_items():
        if key in QIDO_CONTROL:
            continue
        keyword = _qido_keyword(key)
        if keyword in QIDO_STUDY_KEYS:
            values[keyword] = value.strip()
        elif tag_for_keyword(keyword) is not None:
            ignored.append(keyword)  # a DICOM attribute not matched on: said in a Warning header
        else:
            raise BadRequest(f"Paramètre de recherche inconnu : « {key} ».", field=key)
    date_range = ("", "")
    if values.get("StudyDate"):
        found = _DATE_RANGE.match(values["StudyDate"])
        if not found or not (found.group(1) or found.group(3)):
            raise BadRequest(
                "StudyDate attendu : AAAAMMJJ, ou un intervalle AAAAMMJJ-AAAAMMJJ.", field="StudyDate"
            )
        low, dash, high = found.groups()
        date_range = (low or "", (high or "") if dash else (low or ""))
    for key in ("StudyInstanceUID",):
        if values.get(key):
            _uid(values[key], key)
    return (
        StudyCriteria(
            study_uid=values.get("StudyInstanceUID", ""),
            patient_id=values.get("PatientID", ""),
            patient_name=values.get("PatientName", ""),
            description=values.get("StudyDescription", ""),
            study_date=date_range,
            accession_number=values.get("AccessionNumber", ""),
            modality=values.get("ModalitiesInStudy", ""),
        ),
        ignored,
    )


@router.get("/studies", name="qido_studies")
async def search_studies(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
):
    criteria, ignored = _study_criteria(request)
    page = await service.search_studies(session, principal, criteria, PageRequest(offset, limit))
    base = _base(request)
    response = _json([study_json(study, base) for study in page.items])
    if ignored:
        response.headers["Warning"] = (
            f'299 telesante "Attributs non pris en charge en recherche : {", ".join(ignored)}"'
        )
    return response


@router.get("/studies/{study_uid}/series")
async def search_series(request: Request, study_uid: str, session: SessionDep, principal: PrincipalDep):
    study, series = await service.study_series(session, principal, _uid(study_uid, "StudyInstanceUID"))
    base = _base(request)
    modality = request.query_params.get("Modality") or request.query_params.get("00080060")
    return _json([series_json(study, s, base) for s in series if not modality or s.modality == modality])


@router.get("/studies/{study_uid}/instances")
@router.get("/studies/{study_uid}/series/{series_uid}/instances")
async def search_instances(
    request: Request,
    study_uid: str,
    session: SessionDep,
    principal: PrincipalDep,
    series_uid: str | None = None,
):
    study, rows = await service.series_instances(
        session,
        principal,
        _uid(study_uid, "StudyInstanceUID"),
        _uid(series_uid, "SeriesInstanceUID") if series_uid else None,
    )
    base = _base(request)
    return _json([instance_json(study, series, instance, base) for series, instance in rows])


# --- WADO-RS -----------------------------------------------------------------------------------------------


@router.get("/studies/{study_uid}/metadata")
@router.get("/studies/{study_uid}/series/{series_uid}/metadata")
@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/metadata")
async def retrieve_metadata(
    request: Request,
    study_uid: str,
    session: SessionDep,
    principal: PrincipalDep,
    series_uid: str | None = None,
    sop_uid: str | None = None,
):
    study, rows = await service.read_metadata(
        session,
        principal,
        *_uids(study_uid, series_uid, sop_uid),
    )
    base = _base(request)
    body = "[" + ",".join(metadata_text(study, entry, base) for entry in rows) + "]"
    return Response(body, media_type=DICOM_JSON)


@router.get("/studies/{study_uid}")
@router.get("/studies/{study_uid}/series/{series_uid}")
@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}")
async def retrieve_instances(
    request: Request,
    study_uid: str,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    series_uid: str | None = None,
    sop_uid: str | None = None,
):
    multipart, syntax = instance_format(request.headers.get("accept", ""))
    if syntax not in (None, pixels.EXPLICIT_LE):
        raise NotAcceptable(
            f"Syntaxe de transfert {syntax} non disponible : telle que stockée (transfer-syntax=*) "
            f"ou {pixels.EXPLICIT_LE} (décompressée)."
        )
    study, instances = await service.read_metadata(
        session,
        principal,
        *_uids(study_uid, series_uid, sop_uid),
        what="retrieve",
    )
    base = _base(request)
    if not multipart and len(instances) == 1:
        data = await store.get(instances[0].blob_key)
        return Response(data, media_type="application/dicom")
    if syntax == pixels.EXPLICIT_LE and any(i.transfer_syntax_uid != pixels.EXPLICIT_LE for i in instances):
        return _multipart(_transcoded(store, study, instances, base), "application/dicom")
    return await _stored_multipart(store, study, instances, base)


async def _transcoded(
    store: BlobStore, study: ImagingStudy, instances: list[InstanceEntry], base: str
) -> AsyncIterator[tuple[str, str, bytes]]:
    """The instances decompressed to Explicit VR Little Endian, one by one (their sizes are only known then)."""
    for instance in instances:
        data = await store.get(instance.blob_key)
        if instance.transfer_syntax_uid != pixels.EXPLICIT_LE:
            data = await anyio.to_thread.run_sync(pixels.transcode_to_explicit_le, data)
        yield (
            f"application/dicom; transfer-syntax={pixels.EXPLICIT_LE}",
            f"{base}/studies/{study.study_uid}/instances/{instance.sop_instance_uid}",
            data,
        )


async def _stored_multipart(
    store: BlobStore, study: ImagingStudy, instances: list[InstanceEntry], base: str
) -> StreamingResponse:
    """The stored files as they are. A file the page cache holds whole is sent as a view of the file mapped in memory
    (``mapped_if_cached``): the kernel copies its pages into the socket, nothing in the process reads it. Any other
    is read straight into its own buffer (head, file, CRLF: one copy, one write), the next one read while the current
    one is sent. Every size is in the index, so the length of the whole answer is announced (no chunked encoding,
    which would copy each part once more). The first part is at hand before answering, so that a missing file gets a
    proper error rather than a cut answer."""
    boundary = secrets.token_hex(16)
    heads = [
        (
            f"--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={instance.transfer_syntax_uid}\r\n"
            f"Content-Location: {base}/studies/{study.study_uid}/instances/{instance.sop_instance_uid}\r\n"
            f"Content-Length: {instance.size}\r\n\r\n"
        ).encode()
        for instance in instances
    ]
    closing = f"--{boundary}--\r\n".encode()
    length = sum(len(head) + instance.size + 2 for head, instance in zip(heads, instances, strict=True))
    mapped = getattr(store, "mapped_if_cached", None)

    def source(position: int) -> memoryview | asyncio.Future:
        """The file as a mapped view when the page cache holds it, else its part being read."""
        instance = instances[position]
        if mapped is not None:
            view = mapped(instance.blob_key, 0, instance.size)
            if view is not None:
                return view
        return asyncio.ensure_future(
            service.read_part(store, instance.blob_key, instance.size, heads[position], b"\r\n")
        )

    first = source(0) if instances else None
    if isinstance(first, asyncio.Future):
        first = await first

    async def body() -> AsyncIterator[bytes | memoryview]:
        current, ahead, after = first, None, b""  # ``after``: the CRLF that ends a part sent as a view
        try:
            for position in range(len(instances)):
                ahead = source(position + 1) if position + 1 < len(instances) else None
                if isinstance(current, memoryview):  # the file's own pages, between its head and its CRLF
                    yield after + heads[position]
                    yield current
                    after = b"\r\n"
                else:  # read into a buffer with its head and CRLF
                    if after:
                        yield after
                        after = b""
                    yield memoryview(current)
                current = await ahead if isinstance(ahead, asyncio.Future) else ahead
        finally:  # the client went away: the read ahead is not wanted any more
            if isinstance(ahead, asyncio.Future) and not ahead.done():
                ahead.cancel()
        yield after + closing

    return StreamingResponse(
        body(),
        media_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        headers={"Content-Length": str(length + len(closing))},
    )


def _frame_numbers(frames: str) -> list[int]:
    if not _FRAME_LIST.match(frames):
        raise BadRequest(
            "Liste d'images attendue : numéros séparés par des virgules (1,2,3).", field="frames"
        )
    return [int(n) for n in frames.split(",")]


@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/{frames}")
async def retrieve_frames(
    request: Request,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frames: str,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
):
    numbers = _frame_numbers(frames)
    found = await service.locate_frames(
        session,
        principal,
        *_uids(study_uid, series_uid, sop_uid),
        numbers,
    )
    wanted = frame_format(request.headers.get("accept", ""), found.transfer_syntax_uid)
    data = await service.read_frames(store, found, numbers, wanted.native)
    fastpath.remember(request.scope.get("headers", []), principal)  # the next frames of this study: fast path
    if not wanted.multipart and len(data) == 1:
        return Response(data[0], media_type=wanted.part_type)
    location = str(request.url).split("/frames/")[0] + "/frames/"

    async def parts() -> AsyncIterator[tuple[str, str, bytes]]:
        for number, frame in zip(numbers, data, strict=True):
            yield wanted.part_type, f"{location}{number}", frame

    return _multipart(parts(), wanted.part_type.split(";")[0])


def _window(value: str | None) -> pixels.Window | None:
    if not value:
        return None
    pieces = value.split(",")
    try:
        center, width = float(pieces[0]), float(pieces[1])
    except (ValueError, IndexError):
        raise BadRequest("window attendu : centre,largeur[,linear] (ex. 40,80).", field="window") from None
    if len(pieces) > 2 and pieces[2].strip().lower() not in ("linear", ""):
        raise BadRequest("Seule la fonction de fenêtrage « linear » est prise en charge.", field="window")
    if width < 1:
        raise BadRequest("La largeur de fenêtre doit être au moins 1.", field="window")
    return pixels.Window(center, width)


def _viewport(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    try:
        width, height = (int(v) for v in value.split(",")[:2])
    except ValueError:
        raise BadRequest(
            "viewport attendu : largeur,hauteur en pixels (ex. 128,128).", field="viewport"
        ) from None
    if not (1 <= width <= 4096 and 1 <= height <= 4096):
        raise BadRequest("viewport : de 1 à 4096 pixels de côté.", field="viewport")
    return width, height


def _rendered_type(accept: str) -> str:
    for media in parse_accept(accept):
        if media.type in ("image/jpeg", "image/png"):
            return media.type
        if media.type in ("*/*", "image/*"):
            return "image/jpeg"
    raise NotAcceptable("Image rendue disponible en image/jpeg ou image/png.")


@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/rendered")
@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/frames/{frames}/rendered")
@router.get("/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/thumbnail")
async def retrieve_rendered(
    request: Request,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    frames: str = "1",
    window: Annotated[str | None, Query(max_length=60)] = None,
    viewport: Annotated[str | None, Query(max_length=20)] = None,
    quality: Annotated[int, Query(ge=1, le=100)] = 90,
):
    numbers = _frame_numbers(frames)
    if len(numbers) != 1:
        raise BadRequest("Une seule image à la fois en rendu.", field="frames")
    media_type = _rendered_type(request.headers.get("accept", ""))
    size = _viewport(viewport) or ((128, 128) if request.url.path.endswith("/thumbnail") else None)
    found = await service.locate_frames(
        session,
        principal,
        *_uids(study_uid, series_uid, sop_uid),
        numbers,
    )
    data = await service.render(
        store,
        found,
        numbers[0],
        window=_window(window),
        media_type=media_type,
        max_size=size,
        quality=quality,
    )
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})


@router.get("/studies/{study_uid}/series/{series_uid}/thumbnail")
async def retrieve_series_thumbnail(
    request: Request,
    study_uid: str,
    series_uid: str,
    session: SessionDep,
    principal: PrincipalDep,
    store: BlobStoreDep,
    viewport: Annotated[str | None, Query(max_length=20)] = None,
):
    """The series' middle image, small (PS3.18 thumbnail resource)."""
    media_type = _rendered_type(request.headers.get("accept", ""))
    study, entries = await service.read_metadata(
        session, principal, _uid(study_uid, "StudyInstanceUID"), _uid(series_uid, "SeriesInstanceUID")
    )
    images = [entry for entry in entries if entry.has_frames]
    if not images:
        raise NotAcceptable("Cette série ne contient pas d'image à rendre.")
    middle = images[len(images) // 2]
    found = await service.locate_frames(
        session, principal, study.study_uid, middle.series_uid, middle.sop_instance_uid, [1]
    )
    data = await service.render(
        store, found, 1, window=None, media_type=media_type, max_size=_viewport(viewport) or (128, 128)
    )
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})


# --- STOW-RS -----------------------------------------------------------------------------------------------


_STOW_PATH = re.compile(r"^/dicomweb/studies(?:/[0-9.]{1,64})?/?$")


def is_stow_request(scope: dict) -> bool:
    """For the platform's HTTP protocol (``web/zerocopy.read_bodies_directly``): a STOW-RS request, whose large body
    the protocol reads straight into the chunks this route receives."""
    return scope.get("method") == "POST" and _STOW_PATH.match(scope.get("path", "")) is not None


class _PartCollector:
    """python-multipart callbacks: collects each part's bytes (up to a size) as the body streams in. The pieces are
    kept where they were received and handed on as they are (``StowIngest.add``), joined once where needed: a piece
    of a chunk the protocol read directly (``zerocopy.ReceivedChunk``, not written again while referred to) as a view of it, a whole
    ``bytes`` as it is, anything else (the parser's own buffer, reused) copied."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.done: deque[bytes | list[bytes] | None] = deque()  # None: the part was too large
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_big = False

    def on_part_begin(self) -> None:
        self._chunks, self._size, self._too_big = [], 0, False

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._too_big:
            return
        self._size += end - start
        if self._size > self.max_bytes:
            self._too_big, self._chunks = True, []
            return
        if type(data) is ReceivedChunk:
            self._chunks.append(memoryview(data)[start:end])
        else:
            self._chunks.append(
                data if start == 0 and end == len(data) and type(data) is bytes else data[start:end]
            )

    def on_part_end(self) -> None:
        # the pieces as received: the parsing helper joins them (one copy fewer in the server's process)
        chunks = self._chunks
        whole = len(chunks) == 1 and type(chunks[0]) is bytes
        self.done.append(None if self._too_big else chunks[0] if whole else chunks)
        self._chunks = []


def _stow_boundary(content_type: str) -> str:
    media = parse_accept(content_type)[0] if content_type else MediaRange("", {})
    if media.type != "multipart/related":
        raise UnsupportedMediaType(
            'STOW-RS attend un corps multipart/related; type="application/dicom" (fichiers DICOM partie 10).'
        )
    inner = media.params.get("type", "application/dicom").lower()
    if inner != "application/dicom":
        raise UnsupportedMediaType(
            f"Type de partie « {inner} » non pris en charge : seulement application/dicom (fichiers partie 10)."
        )
    boundary = media.params.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise BadRequest("Paramètre boundary absent de Content-Type.", field="Content-Type")
    return boundary


@router.post("/studies", name="stow_studies")
@router.post("/studies/{study_uid}")
async def store_instances(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    study_uid: str | None = None,
    organisation_id: uuid.UUID | None = None,
):
    if study_uid is not None:
        _uid(study_uid, "StudyInstanceUID")
    boundary = _stow_boundary(request.headers.get("content-type", ""))
    organisation = service.sending_organisation(principal, organisation_id)
    collector = _PartCollector(settings.dicom_max_instance_bytes)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": collector.on_part_begin,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
        },
    )
    results = service.StowResults()
    ingest = service.StowIngest(
        session,
        store,
        principal,
        organisation_id=organisation,
        study_uid=study_uid,
        results=results,
        parse_processes=settings.dicom_parse_processes,
    )
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart raises its own MultipartParseError (a ValueError)
                raise BadRequest(f"Corps multipart illisible : {exc}", field="body") from None
            while collector.done:
                await ingest.add(collector.done.popleft())
        try:
            parser.finalize()
        except Exception as exc:  # noqa: BLE001 - same as above, at the end of the body
            raise BadRequest(f"Corps multipart incomplet : {exc}", field="body") from None
        while collector.done:
            await ingest.add(collector.done.popleft())
    except BaseException:
        await ingest.abort()
        raise
    await ingest.finish()
    if not results.stored and not results.failed:
        raise BadRequest("Aucune instance DICOM dans le corps de la requête.", field="body")
    base = _base(request)
    body: dict[str, Any] = {}
    if study_uid or len({s for s, *_ in results.stored}) == 1:
        uid = study_uid or results.stored[0][0]
        body["00081190"] = _attr("UR", f"{base}/studies/{uid}")
    if results.stored:
        body["00081199"] = {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": _attr("UI", sop_class),
                    "00081155": _attr("UI", sop_uid),
                    "00081190": _attr("UR", f"{base}/studies/{study}/series/{series}/instances/{sop_uid}"),
                }
                for study, series, sop_class, sop_uid in results.stored
            ],
        }
    if results.failed:
        body["00081198"] = {
            "vr": "SQ",
            "Value": [
                {
                    **({"00081150": _attr("UI", sop_class)} if sop_class else {}),
                    **({"00081155": _attr("UI", sop_uid)} if sop_uid else {}),
                    "00081197": _attr("US", reason),
                    # not in the standard's failure item: the reason in words, for the person sending
                    "00090010": _attr("LO", "TELESANTE"),
                    "00091001": _attr("LT", message[:1000]),
                }
                for sop_class, sop_uid, reason, message in results.failed
            ],
        }
    status = 200 if not results.failed else 202 if results.stored else 409
    return _json(body, status)
