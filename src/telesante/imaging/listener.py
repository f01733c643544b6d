"""The DICOM listener started with the platform (pynetdicom): C-ECHO, and C-STORE of every storage SOP class in any
transfer syntax, from the calling AE titles declared as peers of an organisation.

pynetdicom serves each association in its own thread; each received instance is parsed there, then handed to the
application's event loop (``ingest_instance`` in its own transaction) and the thread waits for the outcome to answer the C-STORE with
the proper status: 0000 stored (or already stored), 0124 refused: not authorised (unknown calling AE), C000 cannot
understand (not DICOM, no identifiers, truncated), A700 out of resources (anything unexpected; logged). A failed
instance never stops the association nor the listener.

Unknown calling AE titles are rejected at association time already (A-ASSOCIATE-RJ, "calling AE title not
recognised"): the list of active peers is read at start and every PEERS_REFRESH_SECONDS. The per-instance check stays,
for a peer deactivated in between (and when no peer is declared at all, which pynetdicom reads as "anyone")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pydicom.dataset import Dataset
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from telesante.config import Settings
from telesante.db import transaction
from telesante.imaging.dicom import InvalidDicom, ParsedInstance, parse_instance
from telesante.imaging.service import UnknownPeer, active_peer_titles, ingest_instance, peer_organisation
from telesante.kit.errors import DomainError
from telesante.storage.blobs import BlobStore

log = logging.getLogger(__name__)

SUCCESS = 0x0000
NOT_AUTHORISED = 0x0124
CANNOT_UNDERSTAND = 0xC000
OUT_OF_RESOURCES = 0xA700
STORE_TIMEOUT_SECONDS = 120
PEERS_REFRESH_SECONDS = 15.0


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        status.ErrorComment = comment[:64]  # LO: 64 characters
    return status


class DicomListener:
    def __init__(
        self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], store: BlobStore
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.store = store
        self.server = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None
        self.ae: AE | None = None
        self._refresher: asyncio.Task | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        ae = AE(ae_title=self.settings.dicom_ae_title)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.maximum_pdu_size = 0  # no limit: the sender's PDUs as large as it likes
        self.ae = ae
        await self.refresh_peers()
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, lambda event: SUCCESS)]
        address = (self.settings.dicom_host, self.settings.dicom_port)
        try:
            self.server = await asyncio.to_thread(
                ae.start_server, address, block=False, evt_handlers=handlers
            )
        except OSError as exc:
            log.error("Récepteur DICOM non démarré sur %s:%s : %s", *address, exc)
            return
        self.port = self.server.server_address[1]
        self._refresher = asyncio.create_task(self._refresh_forever())
        log.info(
            "Récepteur DICOM %s à l'écoute sur %s:%s", self.settings.dicom_ae_title, address[0], self.port
        )

    async def refresh_peers(self) -> None:
        """The calling AE titles accepted at association time: the active peers, read from the database."""
        async with transaction(self.sessionmaker) as session:
            titles = await active_peer_titles(session)
        if self.ae is not None:
            self.ae.require_calling_aet = titles

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(PEERS_REFRESH_SECONDS)
            try:
                await self.refresh_peers()
            except Exception:  # noqa: BLE001 - the previous list stays; retried at the next tick
                log.exception("Liste des émetteurs DICOM non relue")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        if self.server is not None:
            await asyncio.to_thread(self.server.shutdown)
            self.server = None

    # --- in pynetdicom's association thread ---------------------------------------------------------------

    def _on_store(self, event) -> Dataset:
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            data = event.encoded_dataset(include_meta=True)
        except Exception as exc:  # noqa: BLE001 - a malformed dataset from the peer
            return _status(CANNOT_UNDERSTAND, f"Jeu de données illisible : {exc}")
        # Parsed here, in the association's thread, which only waits meanwhile: not in a worker thread of the event
        # loop, one hop less for every instance (a C-STORE is answered before the next one comes).
        try:
            parsed: ParsedInstance | InvalidDicom = parse_instance(data)
        except InvalidDicom as exc:
            parsed = exc
        except Exception:  # noqa: BLE001 - a bug: the peer gets a status, the listener goes on
            log.exception("Échec inattendu d'un C-STORE")
            return _status(OUT_OF_RESOURCES, "Erreur interne du récepteur")
        return self._run(lambda: self._store(data, parsed, calling))

    def _run(self, make: Callable[[], Awaitable[Dataset]]) -> Dataset:
        assert self.loop is not None
        future = asyncio.run_coroutine_threadsafe(make(), self.loop)
        try:
            return future.result(timeout=STORE_TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 - the peer gets a status, the listener goes on
            log.exception("Échec inattendu d'un C-STORE")
            return _status(OUT_OF_RESOURCES, "Erreur interne du récepteur")

    # --- on the application's event loop -----------------------------------------------------------------

    async def _store(self, data: bytes, parsed: ParsedInstance | InvalidDicom, calling: str) -> Dataset:
        try:
            async with transaction(self.sessionmaker) as session:
                organisation_id = await peer_organisation(
                    session, calling
                )  # first: a stranger learns nothing
                if isinstance(parsed, InvalidDicom):
                    raise parsed
                await ingest_instance(
                    session,
                    self.store,
                    data,
                    organisation_id=organisation_id,
                    received_from=f"dicom:{calling}",
                    parsed=parsed,
                )
        except UnknownPeer as exc:
            log.warning("C-STORE refusé : %s", exc.message)
            return _status(NOT_AUTHORISED, exc.message)
        except InvalidDicom as exc:
            return _status(CANNOT_UNDERSTAND, exc.message)
        except IntegrityError:
            return _status(SUCCESS)  # the same instance stored at the same moment by another association
        except DomainError as exc:
            return _status(CANNOT_UNDERSTAND, exc.message)
        return _status(SUCCESS)
