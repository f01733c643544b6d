"""Every imaging query. Reads for users (QIDO/WADO, viewer) will go through visible methods scoped like patients and
requests; what is here serves ingest (by UID) and the DICOM peers."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from telesante.imaging.models import DicomPeer, ImagingInstance, ImagingSeries, ImagingStudy
from telesante.kit.repository import RepositoryBase


class ImagingRepository(RepositoryBase[ImagingStudy]):
    model = ImagingStudy

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

    async def get_instance_by_uid(self, sop_instance_uid: str) -> ImagingInstance | None:
        return await self.scalar(
            sa.select(ImagingInstance).where(ImagingInstance.sop_instance_uid == sop_instance_uid)
        )

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

    async def list_instances(self, series_id: uuid.UUID) -> list[ImagingInstance]:
        return await self.all(
            sa.select(ImagingInstance)
            .where(ImagingInstance.series_id == series_id)
            .order_by(ImagingInstance.instance_number, ImagingInstance.sop_instance_uid)
        )
