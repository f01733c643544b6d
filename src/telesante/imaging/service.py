"""Imaging rules: who may send (known DICOM peers of an organisation), and the ingest of one instance — original
bytes stored unchanged through the blob store, the same SOP Instance UID stored once, the study/series/instance
index and the DICOM JSON written in the same transaction (a refused or failed instance leaves nothing behind)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.service import Action, record_access
from telesante.auth.principal import Principal
from telesante.imaging.dicom import ParsedInstance, parse_instance
from telesante.imaging.models import DicomPeer, ImagingInstance, ImagingSeries, ImagingStudy
from telesante.imaging.repository import ImagingRepository
from telesante.kit.errors import Conflict, Forbidden, InvalidInput
from telesante.storage.blobs import BlobStore
from telesante.storage.service import save_blob

AE_TITLE = re.compile(r"^[ -~]{1,16}$")  # PS3.5: 16 characters of the default repertoire, no backslash


class UnknownPeer(Forbidden):
    code = "ae-inconnu"
    title = "Émetteur DICOM inconnu"


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
    if principal is not None and organisation_id not in principal.admin_organisation_ids():
        raise Forbidden("Seul l'administrateur de l'établissement déclare ses émetteurs DICOM.")
    title = normalise_ae_title(ae_title)
    repo = ImagingRepository(session)
    if await repo.get_peer_by_title(title) is not None:
        raise Conflict(f"Le titre AE « {title} » est déjà déclaré.", field="ae_title")
    return await repo.add_peer(
        DicomPeer(organisation_id=organisation_id, ae_title=title, description=description)
    )


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


async def ingest_instance(
    session: AsyncSession,
    store: BlobStore,
    data: bytes,
    *,
    organisation_id: uuid.UUID,
    received_from: str,
) -> Ingested:
    parsed: ParsedInstance = await anyio.to_thread.run_sync(parse_instance, data)
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

    study = await repo.get_study_by_uid(parsed.study_uid)
    if study is None:
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
            )
        )
        await record_access(
            session,
            None,
            action=Action.CREATE,
            object_type="ImagingStudy",
            object_id=study.id,
            details={"study_uid": parsed.study_uid, "received_from": received_from},
        )
    elif study.organisation_id != organisation_id:
        raise Conflict("Cette étude a déjà été reçue d'un autre établissement.", field="StudyInstanceUID")

    series = await repo.get_series_by_uid(parsed.series_uid)
    if series is None:
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
    elif series.study_id != study.id:
        raise Conflict("Cette série appartient à une autre étude.", field="SeriesInstanceUID")

    key = await save_blob(session, store, data, "application/dicom")
    instance = await repo.add_instance(
        ImagingInstance(
            series_id=series.id,
            sop_instance_uid=parsed.sop_instance_uid,
            sop_class_uid=parsed.sop_class_uid,
            instance_number=parsed.instance_number,
            transfer_syntax_uid=parsed.transfer_syntax_uid,
            number_of_frames=parsed.number_of_frames,
            blob_key=key,
            size=parsed.size,
            sha256=parsed.sha256,
            received_from=received_from[:40],
            metadata_json=parsed.metadata,
        )
    )
    series.instance_count += 1
    study.instance_count += 1
    study.modalities = "\\".join(
        sorted({*filter(None, study.modalities.split("\\")), parsed.modality} - {""})
    )
    await session.flush()
    return Ingested(instance, study, created=True)
