"""Imaging rules: who may send (known DICOM peers of an organisation), and the ingest of one instance — original
bytes stored unchanged through the blob store, the same SOP Instance UID stored once, the study/series/instance
index and the DICOM JSON written in the same transaction (a refused or failed instance leaves nothing behind)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import anyio
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.db import after_commit
from telesante.imaging import parsing, pixels
from telesante.imaging.dicom import InvalidDicom, ParsedInstance, ins_in_header, name_parts, parse_instance
from telesante.imaging.models import (
    DicomPeer,
    ImagingInstance,
    ImagingSeries,
    ImagingStudy,
    PatientMatch,
    RequestStudy,
)
from telesante.imaging.repository import FrameLocation, ImagingRepository, InstanceEntry, StudyCriteria
from telesante.kit import clock
from telesante.kit.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from telesante.kit.identifiers import INS_OIDS
from telesante.kit.models import JSONText
from telesante.kit.pagination import Page, PageRequest
from telesante.kit.text import fold
from telesante.patients.models import Patient
from telesante.patients.repository import PatientRepository
from telesante.patients.service import require_patient_access
from telesante.requests.models import RequestStatus
from telesante.requests.repository import RequestRepository
from telesante.storage.blobs import BlobStore, StagedFile, StorageUnavailable
from telesante.storage.service import blob_key, save_blob, save_blobs

AE_TITLE = re.compile(r"^[ -~]{1,16}$")  # PS3.5: 16 characters of the default repertoire, no backslash


class UnknownPeer(Forbidden):
    code = "ae-inconnu"
    title = "Émetteur DICOM inconnu"


INGEST_CACHE = "imaging.ingest"

# Domains that wait for images (a stroke case waits for its head CT) register here: each hook is called, in the
# receiving transaction, with every study seen for the first time (whatever the way in: C-STORE, STOW-RS,
# browser upload). A hook links the study to its case with ``attach_arriving_study``; it never raises for a study
# that is not its business.
StudyArrivalHook = Callable[[AsyncSession, ImagingStudy], Awaitable[None]]
_STUDY_ARRIVAL_HOOKS: list[StudyArrivalHook] = []


def on_study_arrival(hook: StudyArrivalHook) -> StudyArrivalHook:
    if hook not in _STUDY_ARRIVAL_HOOKS:
        _STUDY_ARRIVAL_HOOKS.append(hook)
    return hook


def normalise_ae_title(value: str) -> str:
    title = value.strip()
    if not AE_TITLE.match(title) or "\\" in title:
        raise InvalidInput(
            "Titre AE invalide : 1 à 16 caractères ASCII imprimables, sans barre oblique inverse.",
            field="ae_title",
        )
    return title


# --- peers ------------------------------------------------------------------------------------------------


async def register_peer(
    session: AsyncSession,
    principal: Principal | None,
    organisation_id: uuid.UUID,
    ae_title: str,
    description: str = "",
) -> DicomPeer:
    """A calling AE title of an organisation (its scanner, its PACS). ``principal=None`` is the CLI (operator);
    otherwise the organisation's administrator."""
    if principal is not None and not principal.can_administer(organisation_id):
        raise Forbidden("Seul l'administrateur de l'établissement déclare ses émetteurs DICOM.")
    title = normalise_ae_title(ae_title)
    description = description.strip()[:200]
    repo = ImagingRepository(session)
    if await repo.get_peer_by_title(title) is not None:
        raise Conflict(f"Le titre AE « {title} » est déjà déclaré.", field="ae_title")
    return await repo.add_peer(
        DicomPeer(organisation_id=organisation_id, ae_title=title, description=description)
    )


async def list_peers(
    session: AsyncSession, principal: Principal | None = None
) -> list[tuple[DicomPeer, str]]:
    """The declared peers with their organisation's name: all of them for the operator (CLI) and the regional
    administrator, those of their organisations for an organisation's administrator."""
    if principal is not None and not principal.is_admin:
        raise Forbidden("Réservé aux administrateurs.")
    organisations = (
        None if principal is None or principal.is_regional_admin else principal.admin_organisation_ids()
    )
    return await ImagingRepository(session).list_peers_with_organisation(organisations)


@dataclass(frozen=True)
class PeersView:
    peers: list[tuple[DicomPeer, str]]
    organisations: list[tuple[uuid.UUID, str]]  # where the administrator may declare a sender


async def peers_view(session: AsyncSession, principal: Principal) -> PeersView:
    from telesante.directory.repository import OrganisationRepository

    peers = await list_peers(session, principal)
    repo = OrganisationRepository(session)
    organisations = []
    for organisation_id in sorted(principal.admin_organisation_ids()):
        organisation = await repo.get(organisation_id)
        if organisation is not None:
            organisations.append((organisation_id, organisation.name))
    return PeersView(peers, organisations)


async def set_peer_active(
    session: AsyncSession, principal: Principal, peer_id: uuid.UUID, active: bool
) -> DicomPeer:
    """Suspend (or resume) a sender: refused at the next association (within 15 s) and per instance at once."""
    peer = await ImagingRepository(session).get_peer_by_id(peer_id)
    if peer is None or not principal.can_administer(peer.organisation_id):
        raise NotFound("Émetteur DICOM introuvable.")
    peer.active = active
    await session.flush()
    return peer


async def active_peer_titles(session: AsyncSession) -> list[str]:
    return [peer.ae_title for peer in await ImagingRepository(session).list_peers() if peer.active]


async def peer_organisation(session: AsyncSession, calling_ae_title: str) -> uuid.UUID:
    peer = await ImagingRepository(session).get_peer(calling_ae_title.strip())
    if peer is None:
        raise UnknownPeer(f"Titre AE appelant inconnu : « {calling_ae_title.strip()} ».")
    return peer.organisation_id


# --- ingest -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingested:
    instance: ImagingInstance
    study: ImagingStudy
    created: bool  # False: this SOP Instance UID was already stored (the bytes were not stored twice)


async def _new_study(
    session: AsyncSession,
    repo: ImagingRepository,
    parsed: ParsedInstance,
    *,
    organisation_id: uuid.UUID,
    received_from: str,
    principal: Principal | None,
) -> ImagingStudy:
    """A study seen for the first time: matched to a patient when that is sure, and its creation audited."""
    patient, how = await match_patient(session, parsed.metadata, organisation_id)
    study = await repo.add_study(
        ImagingStudy(
            study_uid=parsed.study_uid,
            organisation_id=organisation_id,
            dicom_patient_id=parsed.patient_id,
            dicom_patient_name=parsed.patient_name,
            dicom_birth_date=parsed.birth_date,
            study_date=parsed.study_date,
            study_time=parsed.study_time,
            accession_number=parsed.accession_number,
            description=parsed.study_description,
            attributes=parsed.study_attributes,
            patient_id=patient.id if patient else None,
            patient_match=how,
            matched_at=clock.now() if patient else None,
            matched_by_name="Système (rapprochement automatique)" if patient else "",
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="ImagingStudy",
        object_id=study.id,
        patient_id=study.patient_id,
        details={"study_uid": parsed.study_uid, "received_from": received_from, "patient_match": how.value},
    )
    for hook in _STUDY_ARRIVAL_HOOKS:
        await hook(session, study)
    return study


async def _new_series(repo: ImagingRepository, study: ImagingStudy, parsed: ParsedInstance) -> ImagingSeries:
    series = await repo.add_series(
        ImagingSeries(
            study_id=study.id,
            series_uid=parsed.series_uid,
            modality=parsed.modality,
            series_number=parsed.series_number,
            description=parsed.series_description,
            attributes=parsed.series_attributes,
        )
    )
    study.series_count += 1
    return series


def _new_instance(
    study: ImagingStudy, series: ImagingSeries, parsed: ParsedInstance, key: str, received_from: str
) -> ImagingInstance:
    """The index row of a stored file; the series' and the study's counts and modalities follow."""
    row = _instance_row(study, series, parsed, key, received_from)
    row["metadata_json"] = parsed.metadata  # an object the session keeps: its attribute is the parsed form
    return ImagingInstance(**row)


def _instance_row(
    study: ImagingStudy, series: ImagingSeries, parsed: ParsedInstance, key: str, received_from: str
) -> dict[str, Any]:
    """``_new_instance``'s columns, for a bulk insert; the series' and the study's counts and modalities follow."""
    series.instance_count += 1
    study.instance_count += 1
    study.modalities = "\\".join(
        sorted({*filter(None, study.modalities.split("\\")), parsed.modality} - {""})
    )
    return {
        "series_id": series.id,
        "sop_instance_uid": parsed.sop_instance_uid,
        "sop_class_uid": parsed.sop_class_uid,
        "instance_number": parsed.instance_number,
        "transfer_syntax_uid": parsed.transfer_syntax_uid,
        "number_of_frames": parsed.number_of_frames,
        "blob_key": key,
        "size": parsed.size,
        "sha256": parsed.sha256,
        "received_from": received_from[:40],
        # the helper's text, stored as it is (kit/models.JSONText): never parsed and serialized again here
        "metadata_json": JSONText(parsed.metadata_text),
        "frames": [[list(fragment) for fragment in frame] for frame in parsed.frames],
    }


async def ingest_instance(
    session: AsyncSession,
    store: BlobStore,
    data: bytes,
    *,
    organisation_id: uuid.UUID,
    received_from: str,
    principal: Principal | None = None,
    parsed: ParsedInstance | None = None,
) -> Ingested:
    if parsed is None:
        parsed = await anyio.to_thread.run_sync(parse_instance, data)
    repo = ImagingRepository(session)
    existing = await repo.get_instance_by_uid(parsed.sop_instance_uid)
    if existing is not None:
        series = await repo.get_series_by_uid(parsed.series_uid)
        study = await repo.get(series.study_id) if series else None
        if study is None or study.organisation_id != organisation_id:
            raise Conflict(
                "Cette instance a déjà été reçue d'un autre établissement.", field="SOPInstanceUID"
            )
        return Ingested(existing, study, created=False)

    # The study and series of the previous instance of the same request (STOW, upload) are kept in the session's
    # info: a whole series does not look them up 300 times. Dropped whenever an instance fails (savepoint rollback).
    # keyed by kind and UID: a sender may give a series its study's UID
    known = session.info.setdefault(INGEST_CACHE, {})
    study = known.get((ImagingStudy, parsed.study_uid)) or await repo.get_study_by_uid(parsed.study_uid)
    if study is None:
        study = await _new_study(
            session,
            repo,
            parsed,
            organisation_id=organisation_id,
            received_from=received_from,
            principal=principal,
        )
    elif study.organisation_id != organisation_id:
        raise Conflict("Cette étude a déjà été reçue d'un autre établissement.", field="StudyInstanceUID")

    series = known.get((ImagingSeries, parsed.series_uid)) or await repo.get_series_by_uid(parsed.series_uid)
    if series is None:
        series = await _new_series(repo, study, parsed)
    elif series.study_id != study.id:
        raise Conflict("Cette série appartient à une autre étude.", field="SeriesInstanceUID")

    # The file is written and flushed (in a worker thread) while the row is inserted, rather than before: the
    # transaction commits after both, so no row is ever committed without its file (one wait less per C-STORE,
    # docs/performance.md). Everything that can refuse the instance has been checked by now, as before.
    saving = asyncio.ensure_future(save_blob(session, store, data, "application/dicom", sha256=parsed.sha256))
    try:
        instance = await repo.add_instance(
            _new_instance(study, series, parsed, blob_key(data, parsed.sha256), received_from)
        )
    except BaseException:
        await asyncio.wait([saving])  # never left running: it registers the file's rollback on the session
        if not saving.cancelled():
            saving.exception()  # looked at: the insert's error is the one raised
        raise
    await saving  # the file's own error, if any (storage down)
    known[ImagingStudy, parsed.study_uid], known[ImagingSeries, parsed.series_uid] = study, series
    return Ingested(instance, study, created=True)


# --- STOW-RS / upload ------------------------------------------------------------------------------------------


def sending_organisation(principal: Principal, organisation_id: uuid.UUID | None) -> uuid.UUID:
    """The organisation a user's upload is received for: theirs, or the one named when they belong to several."""
    organisations = principal.clinical_organisation_ids
    if organisation_id is not None:
        if organisation_id not in organisations:
            raise Forbidden("Vous ne pouvez déposer des images que pour votre établissement.")
        return organisation_id
    if len(organisations) == 1:
        return next(iter(organisations))
    if not organisations:
        raise Forbidden("Seul un professionnel de santé d'un établissement peut déposer des images.")
    raise InvalidInput(
        "Vous exercez dans plusieurs établissements : précisez lequel envoie (organisation_id).",
        field="organisation_id",
    )


@dataclass
class StowResults:
    stored: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # study, series, SOP class, SOP instance
    failed: list[tuple[str, str, int, str]] = field(
        default_factory=list
    )  # SOP class, SOP instance, reason, why


FAILURE_OUT_OF_RESOURCES = 0xA700
FAILURE_MISMATCH = 0xA900
FAILURE_CANNOT_UNDERSTAND = 0xC000
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE = 0x0111


async def store_part(
    session: AsyncSession,
    store: BlobStore,
    principal: Principal,
    data: bytes | None,
    *,
    organisation_id: uuid.UUID,
    study_uid: str | None,
    results: StowResults,
    received_from: str = "stow",
    parsed: ParsedInstance | None = None,
) -> None:
    """One instance of a STOW-RS request or a browser upload, in its own savepoint: a refused instance leaves
    nothing behind and the others are kept (PS3.18 10.5: 202 with the failures listed)."""
    if data is None:
        results.failed.append(("", "", FAILURE_OUT_OF_RESOURCES, "Instance trop volumineuse."))
        return
    try:
        async with session.begin_nested():
            parsed = parsed or await anyio.to_thread.run_sync(parse_instance, data)
            if study_uid is not None and parsed.study_uid != study_uid:
                results.failed.append(
                    (
                        parsed.sop_class_uid,
                        parsed.sop_instance_uid,
                        FAILURE_MISMATCH,
                        f"L'instance appartient à l'étude {parsed.study_uid}, pas à {study_uid}.",
                    )
                )
                return
            await ingest_instance(
                session,
                store,
                data,
                organisation_id=organisation_id,
                received_from=received_from,
                principal=principal,
                parsed=parsed,
            )
    except InvalidDicom as exc:
        session.info.pop(INGEST_CACHE, None)
        results.failed.append(("", "", FAILURE_CANNOT_UNDERSTAND, exc.message))
        return
    except Conflict as exc:
        session.info.pop(INGEST_CACHE, None)
        results.failed.append((parsed.sop_class_uid, parsed.sop_instance_uid, FAILURE_DUPLICATE, exc.message))
        return
    except StorageUnavailable:
        raise  # not this instance's fault: the whole request fails (503) and the sender retries it later
    except DomainError as exc:
        session.info.pop(INGEST_CACHE, None)
        results.failed.append(("", "", FAILURE_PROCESSING, exc.message))
        return
    results.stored.append(
        (parsed.study_uid, parsed.series_uid, parsed.sop_class_uid, parsed.sop_instance_uid)
    )


_FLUSH = object()  # in a StowIngest queue: store what waits now


# a received part: whole, or the pieces it arrived in (``bytes``, or views of the chunks the HTTP protocol received)
Received = bytes | list[bytes | memoryview]


def received_size(data: Received) -> int:
    return len(data) if isinstance(data, bytes) else sum(map(len, data))


def joined(data: Received) -> bytes:
    return data if isinstance(data, bytes) else b"".join(data)


class StowIngest:
    """The instances of one STOW-RS request, stored while its body is still arriving.

    Each part is parsed (in a helper process, ``imaging/parsing.py``, or a worker thread) as soon as it is complete
    (``add``); once known to be DICOM, the same helper writes it, flushed, into the blob store's staging folder
    (``BlobStore.stager``; none for S3). One consumer task indexes the parsed parts in batches, in order: each
    instance is checked on its own (a refused one is listed with its reason), then a batch is indexed in one
    savepoint with a few statements (existing instances, studies and series looked up at once, one insert) while its
    staged files are moved under their keys (renames, then each folder flushed). If anything in a batch conflicts,
    it is undone and its instances are stored one by one, each in its own savepoint, so that each gets its own
    outcome. Whatever was staged and not used (a duplicate, a conflict, a request that broke off) is removed at the
    end. The session is only ever used by the consumer, and at most ``backlog`` received parts wait for it. An
    instance larger than ``large_bytes`` (a multi-frame ultrasound or tomosynthesis) is stored on its own, once
    everything before it is stored and before the next part is read: memory stays bounded (about 2 × 16 × 8 MiB,
    or one large instance) however large the request. Receiving, parsing, writing files and the database thus
    overlap instead of taking turns (docs/performance.md)."""

    def __init__(
        self,
        session: AsyncSession,
        store: BlobStore,
        principal: Principal,
        *,
        organisation_id: uuid.UUID,
        study_uid: str | None,
        results: StowResults,
        parse_processes: int = 0,
        batch: int = 16,
        backlog: int = 16,
        large_bytes: int = 8 * 1024 * 1024,
    ):
        self.session, self.store, self.principal = session, store, principal
        self.organisation_id, self.study_uid, self.results = organisation_id, study_uid, results
        self.parse_processes, self.batch, self.large_bytes = parse_processes, batch, large_bytes
        # items: (part, its parsing), _FLUSH (store what waits now), None (the end)
        self._queue: asyncio.Queue[Any] = asyncio.Queue(backlog)
        self._flushed = asyncio.Event()
        # in threads, parsing holds the GIL: more than two would only take turns
        self._parsers = anyio.CapacityLimiter(2)
        self._consumer: asyncio.Task | None = None
        # every part's parsing, with its early write into the store's staging folder (the batch then only moves
        # the file under its key, a rename): the rest of the body arrives meanwhile
        self._stager = store.stager()
        self._parses: set[asyncio.Future] = set()  # those whose outcome the consumer has not released yet
        self._error: BaseException | None = None
        self._stopping = False

    async def add(self, data: Received | None) -> None:
        """One received part, whole or in the pieces it arrived in (None: it was larger than the instance limit);
        waits while the backlog is full. Pieces are joined by the parsing helper, not here: the server's own process
        copies a part only when it has to write it itself (no stager, or staging failed)."""
        if self._error is not None:
            raise self._error
        if self._consumer is None:
            self._consumer = asyncio.create_task(self._consume())
        large = data is not None and received_size(data) > self.large_bytes
        if large:
            await self._flush()  # what waits is stored first: a large instance is never held with others
        pending = None
        if data is not None:
            pending = asyncio.ensure_future(self._parse(data))
            self._parses.add(pending)
        await self._queue.put((data, pending))
        if large:
            await self._flush()  # and it is stored before the next part is read

    async def _flush(self) -> None:
        self._flushed.clear()
        await self._queue.put(_FLUSH)
        await self._flushed.wait()
        if self._error is not None:
            raise self._error

    async def finish(self) -> None:
        """Every part added is stored (or listed as failed); the consumer's error, if any, is raised here."""
        if self._consumer is None:
            return
        try:
            await self._queue.put(None)
            await self._consumer
        finally:
            await self._discard_staged()
        if self._error is not None:
            raise self._error

    async def abort(self) -> None:
        """The request failed while its body was read: parts still waiting are dropped (the transaction is then
        rolled back as a whole). The batch being indexed finishes first: a session is never interrupted."""
        if self._consumer is None:
            return
        self._stopping = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)
        await asyncio.gather(self._consumer, return_exceptions=True)
        await self._discard_staged()

    async def _discard_staged(self) -> None:
        """What was staged and not moved under a key (an instance already stored, stored one by one after a conflict,
        or dropped): removed. A parsing still running is waited for, never cancelled (a helper process or a thread
        cannot be interrupted, and the file it would write must not be forgotten): a few milliseconds at most."""
        await self._release(list(self._parses))

    async def _release(self, parses: list[asyncio.Future]) -> None:
        outcomes = await asyncio.gather(*parses, return_exceptions=True)
        self._parses.difference_update(parses)
        await self.store.discard([outcome[1] for outcome in outcomes if isinstance(outcome, tuple)])

    async def _parse(self, data: Received) -> tuple[ParsedInstance | InvalidDicom, StagedFile | None]:
        try:
            parsed, name = await parsing.parse_and_stage(
                data, self.parse_processes, self._parsers, self._stager
            )
        except InvalidDicom as exc:
            return exc, None
        return parsed, StagedFile(name) if name is not None else None

    async def _consume(self) -> None:
        finished = False
        while not finished:
            batch: list[tuple[bytes | None, asyncio.Future | None]] = []
            flush = False
            while (
                len(batch) < self.batch
            ):  # a whole batch, or what waits when asked, or what is left at the end
                item = await self._queue.get()
                if item is None:
                    finished = True
                    break
                if item is _FLUSH:
                    flush = True
                    break
                batch.append(item)
            try:
                if batch and not self._stopping and self._error is None:  # else dropped
                    try:
                        await self._store(
                            [(data, *(await pending if pending else (None, None))) for data, pending in batch]
                        )
                    except Exception as exc:  # noqa: BLE001 - raised to the request by add() or finish()
                        self._error = exc
            finally:
                await self._release([pending for _data, pending in batch if pending is not None])
            if flush:
                self._flushed.set()

    async def _store(
        self, outcomes: list[tuple[Received | None, ParsedInstance | InvalidDicom | None, StagedFile | None]]
    ) -> None:
        results, study_uid = self.results, self.study_uid
        ready: list[tuple[Received, ParsedInstance]] = []
        staged: list[StagedFile | None] = []
        for data, parsed, early in outcomes:
            if data is None or parsed is None:
                results.failed.append(("", "", FAILURE_OUT_OF_RESOURCES, "Instance trop volumineuse."))
            elif isinstance(parsed, InvalidDicom):
                results.failed.append(("", "", FAILURE_CANNOT_UNDERSTAND, parsed.message))
            elif study_uid is not None and parsed.study_uid != study_uid:
                results.failed.append(
                    (
                        parsed.sop_class_uid,
                        parsed.sop_instance_uid,
                        FAILURE_MISMATCH,
                        f"L'instance appartient à l'étude {parsed.study_uid}, pas à {study_uid}.",
                    )
                )
            else:
                ready.append((data, parsed))
                staged.append(early)
        if not ready:
            return
        session = self.session
        try:
            async with session.begin_nested():
                await ingest_many(
                    session,
                    self.store,
                    ready,
                    organisation_id=self.organisation_id,
                    received_from="stow",
                    principal=self.principal,
                    staged=staged,
                )
        except StorageUnavailable:
            raise
        except (DomainError, IntegrityError):
            session.info.pop(INGEST_CACHE, None)
            for data, parsed in ready:
                await store_part(
                    session,
                    self.store,
                    self.principal,
                    joined(data),
                    organisation_id=self.organisation_id,
                    study_uid=study_uid,
                    results=results,
                    parsed=parsed,
                )
            return
        results.stored.extend(
            (parsed.study_uid, parsed.series_uid, parsed.sop_class_uid, parsed.sop_instance_uid)
            for _d, parsed in ready
        )


async def ingest_many(
    session: AsyncSession,
    store: BlobStore,
    items: list[tuple[Received, ParsedInstance]],
    *,
    organisation_id: uuid.UUID,
    received_from: str,
    principal: Principal | None,
    staged: list[StagedFile | None] | None = None,
) -> None:
    """The batch form of ``ingest_instance`` (same rules): Conflict as soon as anything belongs to another
    organisation (the caller then goes one by one). ``staged``, beside ``items``: each file already written by the
    store's stager (None: not staged; the part's bytes are then written here); those not used stay the caller's to
    discard."""
    repo = ImagingRepository(session)
    unique: dict[str, tuple[bytes, ParsedInstance, StagedFile | None]] = {}
    for (data, parsed), early in zip(items, staged or [None] * len(items), strict=True):
        unique.setdefault(parsed.sop_instance_uid, (data, parsed, early))
    owners = await repo.instance_owners(list(unique))
    if any(owner != organisation_id for owner in owners.values()):
        raise Conflict("Une instance a déjà été reçue d'un autre établissement.", field="SOPInstanceUID")
    new = [(data, parsed) for uid, (data, parsed, _early) in unique.items() if uid not in owners]
    new_staged = [early for uid, (_data, _parsed, early) in unique.items() if uid not in owners]
    if not new:
        return
    # the studies and series an earlier batch (or instance) of the same request looked up or made, else read
    known = session.info.setdefault(INGEST_CACHE, {})
    studies = await _known_or_read(
        known, ImagingStudy, {parsed.study_uid for _d, parsed in new}, repo.studies_by_uids
    )
    for _data, parsed in new:
        study = studies.get(parsed.study_uid)
        if study is None:
            studies[parsed.study_uid] = await _new_study(
                session,
                repo,
                parsed,
                organisation_id=organisation_id,
                received_from=received_from,
                principal=principal,
            )
        elif study.organisation_id != organisation_id:
            raise Conflict("Cette étude a déjà été reçue d'un autre établissement.", field="StudyInstanceUID")
    series_of = await _known_or_read(
        known, ImagingSeries, {parsed.series_uid for _d, parsed in new}, repo.series_by_uids
    )
    for _data, parsed in new:
        study = studies[parsed.study_uid]
        series = series_of.get(parsed.series_uid)
        if series is None:
            series_of[parsed.series_uid] = await _new_series(repo, study, parsed)
        elif series.study_id != study.id:
            raise Conflict("Cette série appartient à une autre étude.", field="SeriesInstanceUID")
    # The files side by side (each write is atomic and flushed, in a worker thread) while the rows are inserted: the
    # transaction commits after both, so that no row is ever committed without its file.
    files = asyncio.ensure_future(
        save_blobs(
            session,
            store,
            [
                (data if early is not None else joined(data), "application/dicom", parsed.sha256)
                for (data, parsed), early in zip(new, new_staged, strict=True)
            ],
            new_staged,
        )
    )
    try:
        await repo.insert_instances(
            [
                _instance_row(
                    studies[parsed.study_uid],
                    series_of[parsed.series_uid],
                    parsed,
                    blob_key(data, parsed.sha256),
                    received_from,
                )
                for data, parsed in new
            ]
        )
    except BaseException:
        # never left running (it registers its rollback hooks on the session); the insert's error is the one raised
        await asyncio.wait([files])
        if not files.cancelled():
            files.exception()  # looked at: not reported again as "never retrieved"
        raise
    await files  # its own error (storage down), if any
    known.update({(ImagingStudy, uid): study for uid, study in studies.items()})
    known.update({(ImagingSeries, uid): series for uid, series in series_of.items()})


async def _known_or_read(known: dict, kind: type, uids: set[str], read: Callable) -> dict[str, Any]:
    """The rows of ``uids`` kept in ``known`` (keyed by kind and UID, as ``ingest_instance`` keeps them), the others
    read at once with ``read``."""
    found = {uid: known[kind, uid] for uid in uids if (kind, uid) in known}
    missing = uids - found.keys()
    if missing:
        found.update(await read(missing))
    return found


# --- patient matching (identity vigilance) ---------------------------------------------------------------------


def traits_agree(metadata: dict[str, Any], patient: Patient) -> bool:
    """The header's name, birth date and sex agree with the patient's identity: the family name (birth or used
    name, accents and case folded), the birth date always; the sex when both are known. Missing traits never
    agree: a match must be sure (RNIV, identity vigilance)."""
    name = str(((metadata.get("00100010") or {}).get("Value") or [{}])[0].get("Alphabetic", ""))
    family, _given = name_parts(name)
    birth = str(((metadata.get("00100030") or {}).get("Value") or [""])[0])
    sex = str(((metadata.get("00100040") or {}).get("Value") or [""])[0]).upper()
    if not family or not birth:
        return False
    if fold(family) not in {patient.search_birth_family, patient.search_used_family}:
        return False
    if birth != patient.birth_date.strftime("%Y%m%d"):
        return False
    return not (sex in ("M", "F") and patient.sex.value in ("M", "F") and sex != patient.sex.value)


async def match_patient(
    session: AsyncSession, metadata: dict[str, Any], organisation_id: uuid.UUID
) -> tuple[Patient | None, PatientMatch]:
    """The platform's patient for an arriving study: by the INS sent in the header, else by the sender's own
    patient identifier (IPP), and in both cases only if the traits agree. Anything less sure waits in the
    identity-vigilance queue for a person."""
    patients = PatientRepository(session)
    for matricule in ins_in_header(metadata, frozenset(INS_OIDS)):
        patient = await patients.get_by_ins(matricule)
        if patient is not None and traits_agree(metadata, patient):
            return patient, PatientMatch.INS
    patient_id = str(((metadata.get("00100020") or {}).get("Value") or [""])[0]).strip()
    if patient_id:
        local = await patients.get_local_identifier(organisation_id, patient_id)
        if local is not None:
            patient = await patients.get(local.patient_id)
            if patient is not None and traits_agree(metadata, patient):
                return patient, PatientMatch.IPP
    return None, PatientMatch.PENDING


async def list_to_reconcile(session: AsyncSession, principal: Principal) -> list[ImagingStudy]:
    """Studies of the principal's organisations waiting for a person to say whose they are. Each shows the
    identity of its header: one audit row per study listed."""
    studies = await ImagingRepository(session).list_unmatched(principal.clinical_organisation_ids)
    for study in studies:
        await record_access(
            session,
            principal,
            action=Action.SEARCH,
            object_type="ImagingStudy",
            object_id=study.id,
            details={"study_uid": study.study_uid, "list": "identitovigilance"},
        )
    return studies


async def reconcile_study(
    session: AsyncSession, principal: Principal, study_id: uuid.UUID, patient_id: uuid.UUID, reason: str
) -> ImagingStudy:
    """A person of the sending organisation says whose study it is (a patient they may see). The traits of the
    header need not agree (that is why it was queued), but the reason is required and kept in the audit."""
    repo = ImagingRepository(session)
    study = await repo.get(study_id)
    if study is None or study.organisation_id not in principal.clinical_organisation_ids:
        raise NotFound("Étude introuvable.")
    if study.patient_match != PatientMatch.PENDING:
        raise Conflict("Cette étude est déjà rapprochée d'un patient.")
    reason = reason.strip()
    if not reason:
        raise InvalidInput("Indiquez comment l'identité a été vérifiée.", field="reason")
    patient = (await require_patient_access(session, principal, patient_id)).patient
    study.patient_id = patient.id
    study.patient_match = PatientMatch.MANUAL
    study.matched_at = clock.now()
    study.matched_by_name = principal.display_name[:200]
    await session.flush()
    await record_access(
        session,
        principal,
        action=Action.UPDATE,
        object_type="ImagingStudy",
        object_id=study.id,
        patient_id=patient.id,
        details={"study_uid": study.study_uid, "reconciled": True, "reason": reason[:500]},
    )
    return study


# --- reading (QIDO-RS, WADO-RS, viewer) ------------------------------------------------------------------------

# A viewer fetches every frame of a series one by one: the first fetch of a series by a user is audited, the
# following ones within this many seconds are not written again (the audit keeps views, not HTTP requests).
FRAME_AUDIT_SECONDS = 600
ACCESS_CACHE_SECONDS = 30
_frame_audits: dict[tuple[uuid.UUID, str], float] = {}
_access: dict[tuple[Any, ...], float] = {}
_locations: dict[tuple[str, str, str], FrameLocation] = {}


def forget_account(account_id: uuid.UUID) -> None:
    """Drop the access decisions kept for an account (its sessions or tokens were just closed)."""
    for key in [key for key in _access if key[0] == account_id]:
        _access.pop(key, None)


async def _audit_study(
    session: AsyncSession, principal: Principal, study: ImagingStudy, what: str, **details: Any
) -> None:
    await record_access(
        session,
        principal,
        action=Action.READ,
        object_type="ImagingStudy",
        object_id=study.id,
        patient_id=study.patient_id,
        details={"study_uid": study.study_uid, "what": what, **details},
    )


async def _visible_study(session: AsyncSession, principal: Principal, study_uid: str) -> ImagingStudy:
    study = await ImagingRepository(session).get_visible_study(principal, study_uid)
    if study is None:
        raise NotFound("Étude introuvable.")
    return study


async def search_studies(
    session: AsyncSession, principal: Principal, criteria: StudyCriteria, page: PageRequest
) -> Page[ImagingStudy]:
    """QIDO-RS study search, scoped; each study shown is audited (a search that finds none, once)."""
    result = await ImagingRepository(session).search_visible(principal, criteria, page)
    searched = {k: str(v) for k, v in criteria.__dict__.items() if v and v != ("", "")}
    for study in result.items or [None]:
        await record_access(
            session,
            principal,
            action=Action.SEARCH,
            object_type="ImagingStudy",
            object_id=study.id if study else "",
            patient_id=study.patient_id if study else None,
            details={"criteria": searched},
        )
    return result


async def study_series(
    session: AsyncSession, principal: Principal, study_uid: str
) -> tuple[ImagingStudy, list[ImagingSeries]]:
    study = await _visible_study(session, principal, study_uid)
    await _audit_study(session, principal, study, "series")
    return study, await ImagingRepository(session).list_series(study.id)


async def series_instances(
    session: AsyncSession, principal: Principal, study_uid: str, series_uid: str | None
) -> tuple[ImagingStudy, list[tuple[ImagingSeries, ImagingInstance]]]:
    study = await _visible_study(session, principal, study_uid)
    rows = await ImagingRepository(session).list_study_instances(study.id, series_uid)
    if series_uid is not None and not rows:
        raise NotFound("Série introuvable.")
    await _audit_study(session, principal, study, "instances", series_uid=series_uid)
    return study, rows


async def read_metadata(
    session: AsyncSession,
    principal: Principal,
    study_uid: str,
    series_uid: str | None = None,
    sop_instance_uid: str | None = None,
    *,
    what: str = "metadata",
) -> tuple[ImagingStudy, list[InstanceEntry]]:
    """WADO-RS metadata (read from the index: the DICOM JSON saved at ingest, never the image files), or with
    ``what="retrieve"`` the instances whose stored files a retrieval streams."""
    study = await _visible_study(session, principal, study_uid)
    rows = await ImagingRepository(session).list_entries(study.id, series_uid, sop_instance_uid)
    if (series_uid or sop_instance_uid) and not rows:
        raise NotFound("Série ou instance introuvable.")
    await _audit_study(session, principal, study, what, series_uid=series_uid)
    return study, rows


async def locate_frames(
    session: AsyncSession,
    principal: Principal,
    study_uid: str,
    series_uid: str,
    sop_instance_uid: str,
    numbers: list[int],
) -> FrameLocation:
    """Where the asked frames lie (1-based numbers), checking access and the numbers; audited once per series
    and user within FRAME_AUDIT_SECONDS.

    A viewer asks for hundreds of frames in a row: where an instance's frames lie is kept in memory (instances
    never change), and so is the access decision of a user for a study, for ACCESS_CACHE_SECONDS."""
    repo = ImagingRepository(session)
    location_key = (study_uid, series_uid, sop_instance_uid)
    found = _locations.get(location_key)
    if found is None:
        series = await repo.series_frame_locations(study_uid, series_uid)
        if len(_locations) + len(series) > 100_000:
            _locations.clear()
        _locations.update({(study_uid, series_uid, sop): location for sop, location in series.items()})
        found = series.get(sop_instance_uid)
        if found is None:
            raise NotFound("Instance introuvable.")
    now = time.monotonic()
    access_key = (principal.account_id, principal.grants, found.study_id)
    if now - _access.get(access_key, -ACCESS_CACHE_SECONDS) >= ACCESS_CACHE_SECONDS:
        if not await repo.is_visible(principal, found.study_id):
            raise NotFound("Instance introuvable.")
        if len(_access) >= 10_000:
            _access.clear()
        _access[access_key] = now
    count = len(found.frames)
    if not count:
        raise NotFound("Cette instance ne contient pas d'image.")
    bad = [n for n in numbers if not 1 <= n <= count]
    if bad:
        raise NotFound(f"Image n° {bad[0]} introuvable : l'instance en compte {count}.")
    audit_key = (principal.account_id, series_uid)
    if now - _frame_audits.get(audit_key, -FRAME_AUDIT_SECONDS) >= FRAME_AUDIT_SECONDS:
        study = await repo.get(found.study_id)
        await _audit_study(session, principal, study, "frames", series_uid=series_uid)

        async def audited() -> (
            None
        ):  # only once the audit row is committed: a rolled-back view is audited again
            if len(_frame_audits) >= 10_000:
                _frame_audits.clear()
            _frame_audits[audit_key] = now

        after_commit(session, audited)
    return found


def cached_location(study_uid: str, series_uid: str, sop_instance_uid: str) -> FrameLocation | None:
    return _locations.get((study_uid, series_uid, sop_instance_uid))


def fresh_until(account_id: uuid.UUID, grants: tuple, location: FrameLocation, now: float) -> float | None:
    """Until when (monotonic) the user's access to the study and the audit of the series' view are both still
    fresh (the fast path); None if either is not fresh now."""
    granted = _access.get((account_id, grants, location.study_id))
    audited = _frame_audits.get((account_id, location.series_uid))
    if granted is None or audited is None:
        return None
    until = min(granted + ACCESS_CACHE_SECONDS, audited + FRAME_AUDIT_SECONDS)
    return until if now < until else None


# Larger ranges are read in a worker thread even when cached: copying them would hold the event loop too long.
IN_LOOP_READ_BYTES = 8 * 1024 * 1024


async def read_part(
    store: BlobStore, key: str, size: int, head: bytes, tail: bytes, offset: int = 0
) -> bytearray:
    """``head``, then ``size`` bytes of the blob from ``offset``, then ``tail``, in one buffer (one part of a
    multipart answer): read straight into it from the page cache when the store can and it is at most
    IN_LOOP_READ_BYTES (no worker thread, no copy), else by a ranged read. StorageUnavailable if the file is
    shorter than the index says."""
    buffer = bytearray(len(head) + size + len(tail))
    buffer[: len(head)] = head
    buffer[len(head) + size :] = tail
    reader = getattr(store, "read_cached_into", None)
    if (
        reader is not None
        and size <= IN_LOOP_READ_BYTES
        and reader(key, offset, memoryview(buffer)[len(head) : len(head) + size])
    ):
        return buffer
    data = await store.get_range(key, offset, size)
    if len(data) != size:
        raise StorageUnavailable("Fichier d'image incomplet dans le stockage.")
    buffer[len(head) : len(head) + size] = data
    return buffer


async def read_frames(
    store: BlobStore, instance: FrameLocation, numbers: list[int], native: bool
) -> list[bytes]:
    """The frames as stored (one ranged read per fragment), or decoded to native little endian when the stored
    transfer syntax is compressed and ``native`` is asked."""
    if native and instance.transfer_syntax_uid not in pixels.NATIVE_SYNTAXES:
        data = await store.get(instance.blob_key)
        return [await anyio.to_thread.run_sync(pixels.native_frame, data, n - 1) for n in numbers]
    out = []
    for n in numbers:
        parts = [
            await store.get_range(instance.blob_key, offset, length)
            for offset, length in instance.frames[n - 1]
        ]
        out.append(b"".join(parts))
    return out


async def render(
    store: BlobStore,
    instance: FrameLocation,
    number: int,
    *,
    window: pixels.Window | None,
    media_type: str,
    max_size: tuple[int, int] | None = None,
    quality: int = 90,
) -> bytes:
    data = await store.get(instance.blob_key)
    return await anyio.to_thread.run_sync(
        lambda: pixels.render_frame(
            data, number - 1, window=window, media_type=media_type, max_size=max_size, quality=quality
        )
    )


# --- studies in requests ---------------------------------------------------------------------------------------


async def attach_study(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, study_id: uuid.UUID
) -> RequestStudy:
    """A party of the request attaches a study it may see. The study must be the request's patient's: matched to
    them already, or its header's traits agreeing with theirs (then it is matched by the request); otherwise
    refused (identity vigilance) — a study of another patient never reaches the expert."""
    request = await RequestRepository(session).get_visible(principal, request_id)
    if request is None:
        raise NotFound("Demande introuvable.")
    if request.status in (RequestStatus.CLOSED, RequestStatus.CANCELLED, RequestStatus.DECLINED):
        raise Conflict("La demande est terminée : plus aucune image ne peut y être jointe.")
    repo = ImagingRepository(session)
    study = await repo.get_visible_study_by_id(principal, study_id)
    if study is None:
        raise NotFound("Étude introuvable.")
    if study.patient_id is None:
        patient = await PatientRepository(session).get(request.patient_id)
        metadata = {**study.attributes}
        if patient is None or not traits_agree(metadata, patient):
            raise Conflict(
                "L'identité de l'étude (nom, date de naissance, sexe) ne correspond pas au patient de la demande : "
                "faites-la rapprocher par la cellule d'identitovigilance.",
                field="study_id",
            )
        study.patient_id = patient.id
        study.patient_match = PatientMatch.REQUEST
        study.matched_at = clock.now()
        study.matched_by_name = principal.display_name[:200]
    elif study.patient_id != request.patient_id:
        raise Conflict("Cette étude concerne un autre patient que celui de la demande.", field="study_id")
    if await repo.get_request_study(request.id, study.id) is not None:
        raise Conflict("Cette étude est déjà jointe à la demande.", field="study_id")
    link = await repo.add_request_study(
        RequestStudy(
            request_id=request.id,
            study_id=study.id,
            attached_by_account_id=principal.account_id,
            attached_by_name=principal.display_name[:200],
        )
    )
    await record_access(
        session,
        principal,
        action=Action.CREATE,
        object_type="TeleRequest",
        object_id=request.id,
        patient_id=request.patient_id,
        details={"study_attached": study.study_uid},
    )
    return link


async def attach_arriving_study(
    session: AsyncSession, study: ImagingStudy, request_id: uuid.UUID, patient: Patient, *, by_name: str
) -> RequestStudy | None:
    """The platform attaches a study arriving for an act that waits for it (matched by the caller, e.g. on the
    accession number). The identity must be sure, as for a person's attachment: the study already matched to the
    act's patient, or its header's traits agreeing with theirs (then it is matched by the act). Otherwise nothing is
    attached and the study stays where it is (identity-vigilance queue). Returns the link, or None."""
    if study.patient_id is None:
        if not traits_agree({**study.attributes}, patient):
            return None
        study.patient_id = patient.id
        study.patient_match = PatientMatch.REQUEST
        study.matched_at = clock.now()
        study.matched_by_name = by_name[:200]
    elif study.patient_id != patient.id:
        return None
    repo = ImagingRepository(session)
    if await repo.get_request_study(request_id, study.id) is not None:
        return None
    link = await repo.add_request_study(
        RequestStudy(
            request_id=request_id, study_id=study.id, attached_by_account_id=None, attached_by_name=by_name
        )
    )
    await record_access(
        session,
        None,
        action=Action.CREATE,
        object_type="TeleRequest",
        object_id=request_id,
        patient_id=patient.id,
        details={
            "study_attached": study.study_uid,
            "by": by_name,
            "accession_number": study.accession_number,
        },
    )
    return link


async def arrived_with_accession(
    session: AsyncSession, organisation_id: uuid.UUID, accession_number: str, since: datetime
) -> list[ImagingStudy]:
    """Studies a hospital has already sent under this accession number since ``since`` (for an act that learns the
    number after the scanner sent the images). For the platform's own matching: the caller decides and attaches
    through ``attach_arriving_study``, which checks the identity; nothing is shown to anyone here."""
    return await ImagingRepository(session).arrived_with_accession(organisation_id, accession_number, since)


@dataclass(frozen=True)
class RequestImaging:
    attached: list[tuple[RequestStudy, ImagingStudy]]
    priors: list[ImagingStudy]  # the patient's other studies the principal may see
    # studies received by the principal's organisations, not yet matched, whose header agrees with the patient
    candidates: list[ImagingStudy] = field(default_factory=list)


async def request_imaging(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> RequestImaging:
    request = await RequestRepository(session).get_visible(principal, request_id)
    if request is None:
        raise NotFound("Demande introuvable.")
    repo = ImagingRepository(session)
    attached = await repo.list_request_studies(request.id)
    priors = await repo.list_other_studies(
        principal, request.patient_id, {study.id for _l, study in attached}
    )
    patient = await PatientRepository(session).get(request.patient_id)
    candidates = [
        study
        for study in await repo.list_unmatched(principal.clinical_organisation_ids)
        if patient is not None and traits_agree(study.attributes, patient)
    ]
    return RequestImaging(attached, priors, candidates)


def study_date(study: ImagingStudy) -> date | None:
    try:
        return date(int(study.study_date[:4]), int(study.study_date[4:6]), int(study.study_date[6:8]))
    except (ValueError, IndexError):
        return None


# --- browser upload (a folder or a zip of DICOM files) -----------------------------------------------------------

DICOMDIR_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory: the index of a CD, not an image


@dataclass
class UploadResult:
    stored: int = 0
    already: int = 0
    ignored: list[str] = field(default_factory=list)  # not DICOM (README, DICOMDIR, viewer programs of a CD…)
    failed: list[str] = field(default_factory=list)  # DICOM refused, with the reason
    attached: list[str] = field(default_factory=list)  # study descriptions attached to the request
    not_attached: list[str] = field(default_factory=list)  # with the reason (identity vigilance)


async def upload_to_request(
    session: AsyncSession,
    principal: Principal,
    store: BlobStore,
    request_id: uuid.UUID,
    files: Iterable[tuple[str, bytes]],
    *,
    max_instance_bytes: int,
) -> UploadResult:
    """DICOM files chosen in the browser (a CD's folder, a zip) received for the principal's organisation, then
    each study attached to the request. Files that are not DICOM are skipped and named; each refused instance is
    named with its reason and leaves nothing behind; a study whose identity does not agree with the request's
    patient is kept (in the identity-vigilance queue) but not attached."""
    request = await RequestRepository(session).get_visible(principal, request_id)
    if request is None:
        raise NotFound("Demande introuvable.")
    if request.status in (RequestStatus.CLOSED, RequestStatus.CANCELLED, RequestStatus.DECLINED):
        raise Conflict("La demande est terminée : plus aucune image ne peut y être jointe.")
    organisation = sending_organisation(principal, None)
    result = UploadResult()
    studies: dict[str, None] = {}
    repo = ImagingRepository(session)
    for name, data in files:
        if len(data) > max_instance_bytes:
            result.failed.append(f"{name} : fichier trop volumineux.")
            continue
        if len(data) < 132 or data[128:132] != b"DICM":
            result.ignored.append(name)
            continue
        try:
            async with session.begin_nested():
                parsed = await anyio.to_thread.run_sync(parse_instance, data)
                if parsed.sop_class_uid == DICOMDIR_CLASS:
                    result.ignored.append(name)
                    continue
                ingested = await ingest_instance(
                    session,
                    store,
                    data,
                    organisation_id=organisation,
                    received_from="upload",
                    principal=principal,
                    parsed=parsed,
                )
        except DomainError as exc:
            session.info.pop(INGEST_CACHE, None)
            result.failed.append(f"{name} : {exc.message}")
            continue
        if ingested.created:
            result.stored += 1
        else:
            result.already += 1
        studies[parsed.study_uid] = None
    for study_uid in studies:
        study = await repo.get_study_by_uid(study_uid)
        label = f"{study.description or 'Étude'} du {study.study_date[6:8]}/{study.study_date[4:6]}/{study.study_date[:4]}"
        if await repo.get_request_study(request.id, study.id) is not None:
            continue
        try:
            async with session.begin_nested():
                await attach_study(session, principal, request.id, study.id)
        except DomainError as exc:
            result.not_attached.append(f"{label} : {exc.message}")
            continue
        result.attached.append(label)
    return result


# --- viewer and identity-vigilance pages -------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewerCase:
    request: Any
    study: ImagingStudy
    patient: Patient


async def viewer_case(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, study_uid: str
) -> ViewerCase:
    """The viewer of a case: the request and a study the principal may see, of the request's patient."""
    request = await RequestRepository(session).get_visible(principal, request_id)
    if request is None:
        raise NotFound("Demande introuvable.")
    study = await ImagingRepository(session).get_visible_study(principal, study_uid)
    if study is None or study.patient_id != request.patient_id:
        raise NotFound("Étude introuvable.")
    patient = await PatientRepository(session).get(request.patient_id)
    await _audit_study(session, principal, study, "viewer", request_id=str(request.id))
    return ViewerCase(request, study, patient)


async def act_studies(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> list[ImagingStudy]:
    """The studies attached to an act that the principal may see. The caller's domain checked the principal's right
    on the act's record (a stroke case: the centre receiving the patient sees the case, and the images through the
    patient, without being a party to the neurology opinion itself)."""
    return await ImagingRepository(session).list_visible_request_studies(principal, request_id)


async def act_viewer(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, study_uid: str
) -> ViewerCase:
    """The viewer of a study attached to an act, for a principal who may see the study (checked here) and the act's
    record (checked by the caller's domain). Audited."""
    studies = await act_studies(session, principal, request_id)
    study = next((s for s in studies if s.study_uid == study_uid), None)
    if study is None:
        raise NotFound("Étude introuvable.")
    request = await RequestRepository(session).get(request_id)
    patient = await PatientRepository(session).get(study.patient_id) if study.patient_id else None
    if (
        request is None or patient is None
    ):  # pragma: no cover - attached studies are matched, keys are foreign
        raise NotFound("Étude introuvable.")
    await _audit_study(session, principal, study, "viewer", request_id=str(request.id))
    return ViewerCase(request, study, patient)


async def study_to_reconcile(
    session: AsyncSession, principal: Principal, study_id: uuid.UUID
) -> ImagingStudy:
    study = await ImagingRepository(session).get(study_id)
    if study is None or study.organisation_id not in principal.clinical_organisation_ids:
        raise NotFound("Étude introuvable.")
    await _audit_study(session, principal, study, "identity-vigilance")
    return study


def header_traits(study: ImagingStudy) -> tuple[str, date | None]:
    """(family name, birth date) of the header, to look for the patient."""
    family, _given = name_parts(study.dicom_patient_name)
    try:
        birth = date(
            int(study.dicom_birth_date[:4]),
            int(study.dicom_birth_date[4:6]),
            int(study.dicom_birth_date[6:8]),
        )
    except (ValueError, IndexError):
        birth = None
    return family, birth
