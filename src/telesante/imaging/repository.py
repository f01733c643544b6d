"""Every imaging query. Reads for users (QIDO-RS, WADO-RS, the viewer) go through the *visible* methods, the one
place where access to images is scoped: a study is visible to the clinicians of the organisation that sent it, to
the parties of a request it is attached to, to the parties of an open request about its patient (the prior
studies the expert needs), and to whoever may see its patient (care relationship, emergency access).
The methods without ``principal`` serve ingest (by UID) and the DICOM peers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from telesante.auth.principal import Principal
from telesante.directory.models import Organisation
from telesante.imaging.models import (
    DicomPeer,
    ImagingInstance,
    ImagingSeries,
    ImagingStudy,
    PatientMatch,
    RequestStudy,
)
from telesante.kit.pagination import Page, PageRequest
from telesante.kit.repository import RepositoryBase
from telesante.patients.models import Patient
from telesante.patients.repository import PatientRepository
from telesante.requests.models import RequestStatus, TeleRequest
from telesante.requests.repository import RequestRepository

OPEN_REQUEST = (RequestStatus.SENT, RequestStatus.ACCEPTED, RequestStatus.IN_PROGRESS, RequestStatus.ANSWERED)


@dataclass(frozen=True)
class StudyCriteria:
    """QIDO-RS study matching (PS3.18 8.3.4): exact values, a date range, a modality among the study's."""

    study_uid: str = ""
    patient_id: str = ""  # (0010,0020) as sent
    patient_name: str = ""  # PS3.4 C.2.2.2.4 wildcards: "*" any run, "?" one character; case-insensitive
    description: str = ""  # same matching
    study_date: tuple[str, str] = ("", "")  # YYYYMMDD bounds, either may be empty
    accession_number: str = ""
    modality: str = ""
    platform_patient_id: uuid.UUID | None = None


@dataclass(frozen=True)
class InstanceEntry:
    """An instance as WADO-RS serves it: its DICOM JSON kept as stored text (never parsed to be sent again)."""

    series_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    blob_key: str
    has_frames: bool
    metadata_text: str
    size: int  # of the stored file, in bytes


@dataclass(frozen=True)
class FrameLocation:
    """What serving a frame needs (instances never change once stored: safe to keep in memory)."""

    study_id: uuid.UUID
    study_uid: str
    series_uid: str
    blob_key: str
    transfer_syntax_uid: str
    frames: tuple[tuple[tuple[int, int], ...], ...]


def _wildcard(column: sa.ColumnElement[str], pattern: str) -> sa.ColumnElement[bool]:
    """DICOM wildcard matching; a value without wildcard matches as a prefix (what a person typing a name expects,
    and PS3.18 fuzzy matching allows)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = escaped.replace("*", "%").replace("?", "_")
    if "*" not in pattern and "?" not in pattern:
        like += "%"
    return column.ilike(like, escape="\\")


class ImagingRepository(RepositoryBase[ImagingStudy]):
    model = ImagingStudy

    async def arrived_with_accession(
        self, organisation_id: uuid.UUID, accession_number: str, since: datetime
    ) -> list[ImagingStudy]:
        """Studies a hospital sent since ``since`` under this accession number, oldest first (an act that learns
        its accession number after the scanner has sent the images)."""
        return await self.all(
            sa.select(ImagingStudy)
            .where(
                ImagingStudy.organisation_id == organisation_id,
                ImagingStudy.accession_number == accession_number,
                ImagingStudy.created_at >= since,
            )
            .order_by(ImagingStudy.created_at)
        )

    # --- scoping ------------------------------------------------------------------------------------------

    def visible(self, principal: Principal) -> sa.ColumnElement[bool]:
        requests = RequestRepository(self.session)
        orgs = principal.clinical_organisation_ids
        sender = ImagingStudy.organisation_id.in_(orgs) if orgs else sa.false()
        attached = ImagingStudy.id.in_(
            sa.select(RequestStudy.study_id)
            .join(TeleRequest, TeleRequest.id == RequestStudy.request_id)
            .where(requests.visible(principal))
        )
        priors = ImagingStudy.patient_id.in_(
            sa.select(TeleRequest.patient_id).where(
                requests.visible(principal), TeleRequest.status.in_(OPEN_REQUEST)
            )
        )
        patient = ImagingStudy.patient_id.in_(
            sa.select(Patient.id).where(PatientRepository(self.session).visible(principal))
        )
        return sa.or_(sender, attached, priors, patient)

    async def get_visible_study(self, principal: Principal, study_uid: str) -> ImagingStudy | None:
        return await self.scalar(
            sa.select(ImagingStudy).where(ImagingStudy.study_uid == study_uid, self.visible(principal))
        )

    async def get_visible_study_by_id(self, principal: Principal, study_id: uuid.UUID) -> ImagingStudy | None:
        return await self.scalar(
            sa.select(ImagingStudy).where(ImagingStudy.id == study_id, self.visible(principal))
        )

    async def search_visible(
        self, principal: Principal, criteria: StudyCriteria, page: PageRequest
    ) -> Page[ImagingStudy]:
        stmt = sa.select(ImagingStudy).where(self.visible(principal))
        if criteria.study_uid:
            stmt = stmt.where(ImagingStudy.study_uid == criteria.study_uid)
        if criteria.patient_id:
            stmt = stmt.where(ImagingStudy.dicom_patient_id == criteria.patient_id)
        if criteria.patient_name:
            stmt = stmt.where(_wildcard(ImagingStudy.dicom_patient_name, criteria.patient_name))
        if criteria.description:
            stmt = stmt.where(_wildcard(ImagingStudy.description, criteria.description))
        low, high = criteria.study_date
        if low:
            stmt = stmt.where(ImagingStudy.study_date >= low)
        if high:
            stmt = stmt.where(ImagingStudy.study_date <= high, ImagingStudy.study_date != "")
        if criteria.accession_number:
            stmt = stmt.where(ImagingStudy.accession_number == criteria.accession_number)
        if criteria.modality:
            stmt = stmt.where(
                ImagingStudy.id.in_(
                    sa.select(ImagingSeries.study_id).where(ImagingSeries.modality == criteria.modality)
                )
            )
        if criteria.platform_patient_id:
            stmt = stmt.where(ImagingStudy.patient_id == criteria.platform_patient_id)
        total = await self.count(stmt)
        items = await self.all(
            stmt.order_by(ImagingStudy.study_date.desc(), ImagingStudy.study_time.desc(), ImagingStudy.id)
            .offset(page.offset)
            .limit(page.limit)
        )
        return Page(items, total, page.offset, page.limit)

    async def series_frame_locations(self, study_uid: str, series_uid: str) -> dict[str, FrameLocation]:
        """Where the frames of every instance of a series lie, by SOP Instance UID. Unscoped: the caller checks
        access with ``is_visible`` (the service keeps both in memory: a viewer reads the whole series)."""
        rows = await self.session.execute(
            sa.select(
                ImagingStudy.id,
                ImagingInstance.sop_instance_uid,
                ImagingInstance.blob_key,
                ImagingInstance.transfer_syntax_uid,
                ImagingInstance.frames,
            )
            .select_from(ImagingInstance)
            .join(ImagingSeries, ImagingSeries.id == ImagingInstance.series_id)
            .join(ImagingStudy, ImagingStudy.id == ImagingSeries.study_id)
            .where(ImagingSeries.series_uid == series_uid, ImagingStudy.study_uid == study_uid)
        )
        return {
            sop: FrameLocation(
                study_id,
                study_uid,
                series_uid,
                blob_key,
                syntax,
                tuple(tuple((int(o), int(n)) for o, n in frame) for frame in frames),
            )
            for study_id, sop, blob_key, syntax, frames in rows.all()
        }

    async def is_visible(self, principal: Principal, study_id: uuid.UUID) -> bool:
        return bool(
            await self.scalar(
                sa.select(sa.literal(True)).where(ImagingStudy.id == study_id, self.visible(principal))
            )
        )

    async def list_unmatched(self, organisation_ids: frozenset[uuid.UUID]) -> list[ImagingStudy]:
        """The identity-vigilance queue of these organisations (studies they sent that no patient was surely
        found for), oldest first."""
        if not organisation_ids:
            return []
        return await self.all(
            sa.select(ImagingStudy)
            .where(
                ImagingStudy.organisation_id.in_(organisation_ids),
                ImagingStudy.patient_match == PatientMatch.PENDING,
            )
            .order_by(ImagingStudy.created_at)
            .limit(200)
        )

    # --- requests -----------------------------------------------------------------------------------------

    async def get_request_study(self, request_id: uuid.UUID, study_id: uuid.UUID) -> RequestStudy | None:
        return await self.scalar(
            sa.select(RequestStudy).where(
                RequestStudy.request_id == request_id, RequestStudy.study_id == study_id
            )
        )

    async def add_request_study(self, link: RequestStudy) -> RequestStudy:
        self.session.add(link)
        await self.session.flush()
        return link

    async def list_visible_request_studies(
        self, principal: Principal, request_id: uuid.UUID
    ) -> list[ImagingStudy]:
        """The studies attached to a request that the principal may see (by any of the visibility rules)."""
        return await self.all(
            sa.select(ImagingStudy)
            .join(RequestStudy, RequestStudy.study_id == ImagingStudy.id)
            .where(RequestStudy.request_id == request_id, self.visible(principal))
            .order_by(RequestStudy.attached_at)
        )

    async def list_request_studies(self, request_id: uuid.UUID) -> list[tuple[RequestStudy, ImagingStudy]]:
        rows = await self.session.execute(
            sa.select(RequestStudy, ImagingStudy)
            .join(ImagingStudy, ImagingStudy.id == RequestStudy.study_id)
            .where(RequestStudy.request_id == request_id)
            .order_by(RequestStudy.attached_at)
        )
        return [(link, study) for link, study in rows.all()]

    async def list_other_studies(
        self, principal: Principal, patient_id: uuid.UUID, exclude: set[uuid.UUID]
    ) -> list[ImagingStudy]:
        stmt = sa.select(ImagingStudy).where(ImagingStudy.patient_id == patient_id, self.visible(principal))
        if exclude:
            stmt = stmt.where(ImagingStudy.id.not_in(exclude))
        return await self.all(
            stmt.order_by(ImagingStudy.study_date.desc(), ImagingStudy.study_time.desc()).limit(50)
        )

    async def get_peer(self, ae_title: str) -> DicomPeer | None:
        return await self.scalar(
            sa.select(DicomPeer).where(DicomPeer.ae_title == ae_title, DicomPeer.active.is_(True))
        )

    async def get_peer_by_title(self, ae_title: str) -> DicomPeer | None:
        return await self.scalar(sa.select(DicomPeer).where(DicomPeer.ae_title == ae_title))

    async def add_peer(self, peer: DicomPeer) -> DicomPeer:
        self.session.add(peer)
        await self.session.flush()
        return peer

    async def list_peers(self, organisation_id: uuid.UUID | None = None) -> list[DicomPeer]:
        stmt = sa.select(DicomPeer).order_by(DicomPeer.ae_title)
        if organisation_id is not None:
            stmt = stmt.where(DicomPeer.organisation_id == organisation_id)
        return await self.all(stmt)

    async def get_peer_by_id(self, peer_id: uuid.UUID) -> DicomPeer | None:
        return await self.session.get(DicomPeer, peer_id)

    async def list_peers_with_organisation(
        self, organisation_ids: frozenset[uuid.UUID] | None = None
    ) -> list[tuple[DicomPeer, str]]:
        stmt = (
            sa.select(DicomPeer, Organisation.name)
            .join(Organisation, Organisation.id == DicomPeer.organisation_id)
            .order_by(Organisation.name, DicomPeer.ae_title)
        )
        if organisation_ids is not None:
            stmt = stmt.where(DicomPeer.organisation_id.in_(organisation_ids))
        rows = await self.session.execute(stmt)
        return [(peer, name) for peer, name in rows.all()]

    async def get_instance_by_uid(self, sop_instance_uid: str) -> ImagingInstance | None:
        return await self.scalar(
            sa.select(ImagingInstance).where(ImagingInstance.sop_instance_uid == sop_instance_uid)
        )

    async def instance_owners(self, sop_instance_uids: list[str]) -> dict[str, uuid.UUID]:
        """For the SOP Instance UIDs already stored: the organisation that sent each."""
        if not sop_instance_uids:
            return {}
        rows = await self.session.execute(
            sa.select(ImagingInstance.sop_instance_uid, ImagingStudy.organisation_id)
            .join(ImagingSeries, ImagingSeries.id == ImagingInstance.series_id)
            .join(ImagingStudy, ImagingStudy.id == ImagingSeries.study_id)
            .where(ImagingInstance.sop_instance_uid.in_(sop_instance_uids))
        )
        return {sop: organisation for sop, organisation in rows.all()}

    async def studies_by_uids(self, study_uids: set[str]) -> dict[str, ImagingStudy]:
        studies = await self.all(sa.select(ImagingStudy).where(ImagingStudy.study_uid.in_(study_uids)))
        return {study.study_uid: study for study in studies}

    async def series_by_uids(self, series_uids: set[str]) -> dict[str, ImagingSeries]:
        found = await self.all(sa.select(ImagingSeries).where(ImagingSeries.series_uid.in_(series_uids)))
        return {series.series_uid: series for series in found}

    async def get_study_by_uid(self, study_uid: str) -> ImagingStudy | None:
        return await self.scalar(sa.select(ImagingStudy).where(ImagingStudy.study_uid == study_uid))

    async def get_series_by_uid(self, series_uid: str) -> ImagingSeries | None:
        return await self.scalar(sa.select(ImagingSeries).where(ImagingSeries.series_uid == series_uid))

    async def add_study(self, study: ImagingStudy) -> ImagingStudy:
        self.session.add(study)
        await self.session.flush()
        return study

    async def add_series(self, series: ImagingSeries) -> ImagingSeries:
        self.session.add(series)
        await self.session.flush()
        return series

    async def insert_instances(self, rows: list[dict[str, Any]]) -> None:
        """Index rows inserted in one statement (an ORM bulk insert: no objects to track, defaults as usual)."""
        if rows:
            await self.session.execute(sa.insert(ImagingInstance), rows)

    async def add_instance(self, instance: ImagingInstance) -> ImagingInstance:
        self.session.add(instance)
        await self.session.flush()
        return instance

    async def series_modalities(self, study_id: uuid.UUID) -> list[str]:
        rows = await self.session.execute(
            sa.select(ImagingSeries.modality).where(ImagingSeries.study_id == study_id).distinct()
        )
        return sorted(m for m in rows.scalars() if m)

    async def list_series(self, study_id: uuid.UUID) -> list[ImagingSeries]:
        return await self.all(
            sa.select(ImagingSeries)
            .where(ImagingSeries.study_id == study_id)
            .order_by(ImagingSeries.series_number, ImagingSeries.series_uid)
        )

    async def get_series_in_study(self, study_id: uuid.UUID, series_uid: str) -> ImagingSeries | None:
        return await self.scalar(
            sa.select(ImagingSeries).where(
                ImagingSeries.study_id == study_id, ImagingSeries.series_uid == series_uid
            )
        )

    @staticmethod
    def _of_study(
        stmt: sa.Select, study_id: uuid.UUID, series_uid: str | None, sop_instance_uid: str | None
    ) -> sa.Select:
        """The instances of a study (optionally of one series, or one instance), in series and instance order."""
        stmt = stmt.join(ImagingInstance, ImagingInstance.series_id == ImagingSeries.id).where(
            ImagingSeries.study_id == study_id
        )
        if series_uid is not None:
            stmt = stmt.where(ImagingSeries.series_uid == series_uid)
        if sop_instance_uid is not None:
            stmt = stmt.where(ImagingInstance.sop_instance_uid == sop_instance_uid)
        return stmt.order_by(
            ImagingSeries.series_number,
            ImagingSeries.series_uid,
            ImagingInstance.instance_number,
            ImagingInstance.sop_instance_uid,
        )

    async def list_study_instances(
        self, study_id: uuid.UUID, series_uid: str | None = None, sop_instance_uid: str | None = None
    ) -> list[tuple[ImagingSeries, ImagingInstance]]:
        stmt = self._of_study(
            sa.select(ImagingSeries, ImagingInstance), study_id, series_uid, sop_instance_uid
        )
        rows = await self.session.execute(stmt)
        return [(series, instance) for series, instance in rows.all()]

    async def list_entries(
        self, study_id: uuid.UUID, series_uid: str | None = None, sop_instance_uid: str | None = None
    ) -> list[InstanceEntry]:
        columns = sa.select(
            ImagingSeries.series_uid,
            ImagingInstance.sop_instance_uid,
            ImagingInstance.transfer_syntax_uid,
            ImagingInstance.blob_key,
            sa.cast(ImagingInstance.frames, sa.Text),
            sa.cast(ImagingInstance.metadata_json, sa.Text),
            ImagingInstance.size,
        )
        rows = await self.session.execute(self._of_study(columns, study_id, series_uid, sop_instance_uid))
        return [
            InstanceEntry(series, sop, syntax, key, frames.strip() not in ("[]", ""), text, size)
            for series, sop, syntax, key, frames, text, size in rows.all()
        ]

    async def list_instances(self, series_id: uuid.UUID) -> list[ImagingInstance]:
        return await self.all(
            sa.select(ImagingInstance)
            .where(ImagingInstance.series_id == series_id)
            .order_by(ImagingInstance.instance_number, ImagingInstance.sop_instance_uid)
        )
