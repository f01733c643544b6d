"""Every query of remote monitoring."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value

from telesante.auth.models import Account
from telesante.directory.models import Membership, Organisation, Role
from telesante.kit import clock
from telesante.kit.models import uuid_from_text
from telesante.kit.repository import (
    RepositoryBase,
    among,
    among_named,
    among_values,
    column_arrays,
    sqlite_list,
    sqlite_time,
)
from telesante.monitoring.models import (
    Alert,
    AlertStatus,
    Device,
    EducationSession,
    Enrolment,
    EnrolmentStatus,
    MonitoringProgramme,
    Observation,
)
from telesante.monitoring.rules import Reading
from telesante.patients.models import Patient


class EnrolmentState(NamedTuple):
    """What ingest and the rules read of an enrolment (``EnrolmentRepository._STATE``): its attributes without the ORM."""

    id: uuid.UUID
    patient_id: uuid.UUID
    programme_id: uuid.UUID
    organisation_id: uuid.UUID
    overrides: dict[str, Any] | None
    started_at: datetime | None
    created_at: datetime
    colour: str


class LinkedDevice(NamedTuple):
    id: uuid.UUID
    serial: str
    enrolment_id: uuid.UUID


class ProgrammeRepository(RepositoryBase[MonitoringProgramme]):
    model = MonitoringProgramme

    async def latest(self, organisation_id: uuid.UUID, code: str) -> MonitoringProgramme | None:
        return await self.scalar(
            sa.select(MonitoringProgramme)
            .where(MonitoringProgramme.organisation_id == organisation_id, MonitoringProgramme.code == code)
            .order_by(MonitoringProgramme.version.desc())
            .limit(1)
        )

    async def list_current(
        self, organisation_ids: Iterable[uuid.UUID] | None = None
    ) -> list[MonitoringProgramme]:
        """Current versions, of these organisations (all when None), by title."""
        stmt = sa.select(MonitoringProgramme).where(MonitoringProgramme.current.is_(True))
        if organisation_ids is not None:
            stmt = stmt.where(MonitoringProgramme.organisation_id.in_(list(organisation_ids)))
        return await self.all(stmt.order_by(MonitoringProgramme.title, MonitoringProgramme.organisation_id))

    async def get_many(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, MonitoringProgramme]:
        ids = list(set(ids))
        if not ids:
            return {}
        rows = await self.all(sa.select(MonitoringProgramme).where(MonitoringProgramme.id.in_(ids)))
        return {row.id: row for row in rows}

    async def versions(self, organisation_id: uuid.UUID, code: str) -> list[MonitoringProgramme]:
        """Every version of a team's programme, newest first."""
        return await self.all(
            sa.select(MonitoringProgramme)
            .where(MonitoringProgramme.organisation_id == organisation_id, MonitoringProgramme.code == code)
            .order_by(MonitoringProgramme.version.desc())
        )

    async def organisation_name(self, organisation_id: uuid.UUID) -> str:
        return await self.scalar(sa.select(Organisation.name).where(Organisation.id == organisation_id)) or ""


class EnrolmentRepository(RepositoryBase[Enrolment]):
    model = Enrolment

    async def active_in_programme(self, patient_id: uuid.UUID, code: str) -> Enrolment | None:
        return await self.scalar(
            sa.select(Enrolment).where(
                Enrolment.patient_id == patient_id,
                Enrolment.programme_code == code,
                Enrolment.status == EnrolmentStatus.ACTIVE,
            )
        )

    async def list_for_patient(self, patient_id: uuid.UUID) -> list[Enrolment]:
        return await self.all(
            sa.select(Enrolment)
            .where(Enrolment.patient_id == patient_id)
            .order_by(Enrolment.created_at.desc())
        )

    # What ingest and the rules read of an enrolment: plain rows (attribute access like the model), no ORM load.
    _STATE = (
        Enrolment.id,
        Enrolment.patient_id,
        Enrolment.programme_id,
        Enrolment.organisation_id,
        Enrolment.overrides,
        Enrolment.started_at,
        Enrolment.created_at,
        Enrolment.colour,
    )

    async def active_by_patient(
        self, patient_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, list[EnrolmentState]]:
        """The active enrolments of these patients (state tuples), oldest first (where a reading goes when several
        follow it). By the driver (``driver_execute``): a device batch asks for hundreds of patients."""
        ids = list(set(patient_ids))
        found: dict[uuid.UUID, list[EnrolmentState]] = {}
        if not ids:
            return found
        dialect = self.dialect
        # the overrides as their JSON text, read here by orjson (the driver's JSON decoder is the standard library's)
        columns = [sa.cast(c, sa.Text) if c is Enrolment.overrides else c for c in self._STATE]
        rows = await self.driver_execute(
            "enrolments.active_by_patient",
            lambda: (
                sa.select(*columns)
                .where(
                    among_named(Enrolment.patient_id, "ids", dialect),
                    Enrolment.status == sa.bindparam("active"),
                )
                .order_by(Enrolment.created_at)
            ),
            {"ids": among_values(ids, dialect), "active": EnrolmentStatus.ACTIVE},
        )
        if dialect == "postgresql":
            states = [
                EnrolmentState(
                    id_,
                    patient_id,
                    programme_id,
                    organisation_id,
                    orjson.loads(overrides) if overrides is not None else None,
                    started_at,
                    created_at,
                    colour,
                )
                for id_, patient_id, programme_id, organisation_id, overrides, started_at, created_at, colour in rows
            ]
        else:  # SQLite: the stored text converted here (``kit.models``: 32 hex digits, naive UTC times, JSON text)
            asked = {id_.hex: id_ for id_ in ids}
            states = [
                EnrolmentState(
                    uuid_from_text(id_),
                    asked.get(patient_id) or uuid_from_text(patient_id),
                    uuid_from_text(programme_id),
                    uuid_from_text(organisation_id),
                    orjson.loads(overrides) if overrides is not None else None,
                    sqlite_time(started_at),
                    sqlite_time(created_at),
                    colour,
                )
                for id_, patient_id, programme_id, organisation_id, overrides, started_at, created_at, colour in rows
            ]
        for state in states:
            found.setdefault(state.patient_id, []).append(state)
        return found

    async def active_in_team_programme(self, organisation_id: uuid.UUID, code: str) -> list[sa.Row]:
        """The active enrolments of a team's programme, whatever their version (state rows)."""
        rows = await self.session.execute(
            sa.select(*self._STATE).where(
                Enrolment.organisation_id == organisation_id,
                Enrolment.programme_code == code,
                Enrolment.status == EnrolmentStatus.ACTIVE,
            )
        )
        return list(rows.all())

    async def move_to_programme(self, ids: Sequence[uuid.UUID], programme_id: uuid.UUID) -> None:
        """These enrolments follow another version of their programme from now on."""
        for start in range(0, len(ids), 500):
            await self.session.execute(
                sa.update(Enrolment)
                .where(Enrolment.id.in_(list(ids[start : start + 500])))
                .values(programme_id=programme_id)
                .execution_options(synchronize_session="fetch")
            )

    async def states(self, ids: Sequence[uuid.UUID]) -> list[sa.Row]:
        stmt = sa.select(*self._STATE).where(Enrolment.id.in_(list(ids)))
        return list((await self.session.execute(stmt)).all())

    async def lock_states(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str] | None:
        """PostgreSQL: lock these enrolments' rows until the transaction ends (``FOR NO KEY UPDATE``, in the order of
        their ids, as every caller does: two callers never wait for each other in a circle) and return their triage
        colour as it is now, by id. The row is what serialises the rules, alerts and triage colour of one enrolment
        across instances: a second transaction waits here until the first has committed, then reads its readings and
        alerts. The lock does not conflict with the foreign-key checks of new readings (``FOR KEY SHARE``). SQLite:
        None (its one writer already holds the database since the transaction began, and the state rows read in it
        are current)."""
        if self.dialect != "postgresql":
            return None
        wanted = sorted(set(ids))
        if not wanted:
            return {}

        def build() -> sa.Select:
            locked = (
                sa.select(Enrolment.id, Enrolment.colour)
                .where(among_named(Enrolment.id, "ids", "postgresql"))
                .order_by(Enrolment.id)
                .with_for_update(key_share=True)  # PostgreSQL: FOR NO KEY UPDATE
                .subquery("locked")
            )
            # the rows locked, in order, come back as two arrays (one row, not one per enrolment)
            return sa.select(sa.func.array_agg(locked.c.id), sa.func.array_agg(locked.c.colour))

        [(ids_, colours)] = await self.driver_execute("enrolments.lock_states", build, {"ids": wanted})
        return dict(zip(ids_ or (), colours or (), strict=True))

    async def set_colours(self, changes: Sequence[tuple[uuid.UUID, str]]) -> None:
        """The triage colours that changed, (enrolment id, colour); only those: an evaluation that changes no colour
        writes no enrolment row."""
        if not changes:
            return
        # one change per enrolment, the last one given (UPDATE … FROM applies one of several rows for the same id)
        changes = list(dict(changes).items())
        table = Enrolment.__table__
        if self.dialect == "postgresql":
            # one statement, one parameter per column (kit.repository.column_arrays)
            def build() -> sa.Update:
                changed = column_arrays(table, ["id", "colour"]).subquery("changed")
                return sa.update(table).where(table.c.id == changed.c.id).values(colour=changed.c.colour)

            await self.driver_execute(
                "enrolments.set_colours",
                build,
                rows=[{"id": id_, "colour": colour} for id_, colour in changes],
            )
        else:  # SQLite: an executemany of one prepared statement by the driver (kit.repository.sqlite_rows)
            await self.driver_execute(
                "enrolments.set_colours",
                lambda: (
                    sa.update(table)
                    .where(table.c.id == sa.bindparam("b_id"))
                    .values(colour=sa.bindparam("b_colour"))
                ),
                rows=[{"b_id": id_, "b_colour": colour} for id_, colour in changes],
            )
        self.keep_in_step(changes, {})

    def keep_in_step(
        self, colours: Sequence[tuple[uuid.UUID, str]], last_seen: dict[uuid.UUID, dict[str, datetime]]
    ) -> None:
        """Enrolments this session already holds as objects see the colours just written and their last reading's
        time (from ``last_seen``, the last reading of each measure by enrolment), without being marked as changed. A
        device batch reads its enrolments as rows, so there are usually none: looked up once, not per enrolment."""
        held = {key[1][0]: value for key, value in self.session.identity_map.items() if key[0] is Enrolment}
        if not held:
            return
        for id_, colour in colours:
            if (enrolment := held.get(id_)) is not None:
                set_committed_value(enrolment, "colour", colour)
        for id_, seen in last_seen.items():
            if (enrolment := held.get(id_)) is None or not seen:
                continue
            # an attribute not loaded (expired) is read afresh when asked for: only a loaded one is moved
            loaded = sa.inspect(enrolment).dict
            if "last_reading_at" in loaded:
                latest = max(seen.values())
                if loaded["last_reading_at"] is None or latest > loaded["last_reading_at"]:
                    set_committed_value(enrolment, "last_reading_at", latest)

    async def by_link_hash(self, link_hash: str) -> Enrolment | None:
        return await self.scalar(sa.select(Enrolment).where(Enrolment.link_hash == link_hash))

    async def active_ids(self, organisation_ids: Iterable[uuid.UUID] | None = None) -> list[uuid.UUID]:
        stmt = sa.select(Enrolment.id).where(Enrolment.status == EnrolmentStatus.ACTIVE)
        if organisation_ids is not None:
            stmt = stmt.where(Enrolment.organisation_id.in_(list(organisation_ids)))
        return list((await self.session.execute(stmt)).scalars())

    async def worklist(self, organisation_ids: Iterable[uuid.UUID]) -> list[tuple[Enrolment, Patient]]:
        """The active enrolments of these teams with their patients (the caller sorts by colour)."""
        rows = await self.session.execute(
            sa.select(Enrolment, Patient)
            .join(Patient, Patient.id == Enrolment.patient_id)
            .where(
                Enrolment.organisation_id.in_(list(organisation_ids)),
                Enrolment.status == EnrolmentStatus.ACTIVE,
            )
        )
        return [(enrolment, patient) for enrolment, patient in rows.all()]

    async def patient_names(self, patient_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        ids = list(set(patient_ids))
        names: dict[uuid.UUID, str] = {}
        for start in range(0, len(ids), 500):
            for patient in await self.all(sa.select(Patient).where(Patient.id.in_(ids[start : start + 500]))):
                names[patient.id] = patient.display_name
        return names

    async def operator_accounts(self, organisation_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Active accounts of the monitoring teams (who is told that an alert was raised)."""
        ids = list(set(organisation_ids))
        if not ids:
            return set()
        rows = await self.session.execute(
            sa.select(Account.id)
            .join(Membership, Membership.professional_id == Account.professional_id)
            .where(
                Membership.organisation_id.in_(ids),
                Membership.role == Role.MONITORING_OPERATOR,
                Membership.ended_at.is_(None),
                Account.active.is_(True),
            )
        )
        return set(rows.scalars())


class DeviceRepository(RepositoryBase[Device]):
    model = Device

    async def linked(self, serials: Iterable[str]) -> dict[str, LinkedDevice]:
        """Devices currently linked (id, serial, enrolment id), by serial, among these serials."""
        serials = list(set(serials))
        if not serials:
            return {}
        dialect = self.dialect  # a device batch's hundreds of serials: by the driver (ids as text on SQLite)
        found = await self.driver_execute(
            "devices.linked",
            lambda: sa.select(Device.id, Device.serial, Device.enrolment_id).where(
                among_named(Device.serial, "serials", dialect), Device.unlinked_at.is_(None)
            ),
            {"serials": among_values(serials, dialect)},
        )
        return {
            serial: LinkedDevice(uuid_from_text(id_), serial, uuid_from_text(enrolment_id))
            for id_, serial, enrolment_id in found
        }

    async def serials(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = await self.session.execute(sa.select(Device.id, Device.serial).where(Device.id.in_(wanted)))
        return dict(rows.all())

    async def list_for_enrolment(self, enrolment_id: uuid.UUID) -> list[Device]:
        return await self.all(
            sa.select(Device).where(Device.enrolment_id == enrolment_id).order_by(Device.linked_at)
        )


def _insert(dialect: str):
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _between(stmt: sa.Select, since: datetime | None, until: datetime | None) -> sa.Select:
    """Readings taken from ``since`` (included) to ``until`` (excluded), either bound optional."""
    if since is not None:
        stmt = stmt.where(Observation.effective_at >= since)
    if until is not None:
        stmt = stmt.where(Observation.effective_at < until)
    return stmt


class ObservationRepository(RepositoryBase[Observation]):
    model = Observation

    async def insert_new(
        self, rows: Sequence[dict[str, Any]], common: dict[str, Any]
    ) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
        """Insert the readings not stored yet (same enrolment and dedup key: skipped); ``common``: the columns of the
        same value in every row. Returns the new ones: (enrolment id, dedup key) → observation id."""
        if not rows:
            return {}
        table = Observation.__table__
        dialect = self.dialect
        names = (*common, *rows[0])
        if dialect == "postgresql":
            # one statement, one parameter per column (kit.repository.column_arrays); the ids of the rows inserted come
            # back as one array (the ids are made here: they say which rows are new), not as a row each
            def build() -> sa.Select:
                inserted = (
                    postgresql.insert(table)
                    .from_select(names, column_arrays(table, list(rows[0]), list(common)))
                    .on_conflict_do_nothing(index_elements=["enrolment_id", "dedup_key"])
                    .returning(table.c.id)
                    .cte("inserted")
                )
                return sa.select(sa.func.array_agg(inserted.c.id))

            [(inserted_ids,)] = await self.driver_execute(
                ("observations.insert_new", names), build, rows=rows, constants=common
            )
            new_ids = set(inserted_ids or ())
            return {
                (row["enrolment_id"], row["dedup_key"]): row["id"] for row in rows if row["id"] in new_ids
            }
        # SQLite: the rows to the driver (``kit.repository.sqlite_rows``; the write lock is held since the transaction
        # began, ``db.WriteQueue``), then which of their keys are stored, one index probe each: those are the new ones
        await self.driver_execute(
            ("observations.insert_new", names),
            lambda: _insert(dialect)(table).on_conflict_do_nothing(
                index_elements=["enrolment_id", "dedup_key"]
            ),
            rows=rows,
            constants=common,
            columns=names,
        )
        stored = await self.driver_execute(
            "observations.stored",
            lambda: sa.select(table.c.id).where(among_named(table.c.id, "ids", "sqlite")),
            {"ids": sqlite_list([row["id"] for row in rows])},
        )
        new = {id_ for (id_,) in stored}
        return {(row["enrolment_id"], row["dedup_key"]): row["id"] for row in rows if row["id"].hex in new}

    async def existing(self, keys: Iterable[tuple[uuid.UUID, str]]) -> dict[tuple[uuid.UUID, str], uuid.UUID]:
        """Stored readings among (enrolment id, dedup key) pairs (to answer a duplicate with its id)."""
        keys = list(keys)
        found: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
        for start in range(0, len(keys), 400):
            chunk = keys[start : start + 400]
            rows = await self.session.execute(
                sa.select(Observation.id, Observation.enrolment_id, Observation.dedup_key).where(
                    sa.tuple_(Observation.enrolment_id, Observation.dedup_key).in_(chunk)
                )
            )
            for id_, enrolment_id, key in rows.all():
                found[(enrolment_id, key)] = id_
        return found

    async def since(
        self, enrolment_ids: Iterable[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, list[Reading]]:
        """Each enrolment's readings since ``since``, as the rules take them (``rules.Reading``: measure, value, time,
        id; built here, without an intermediate row per reading). The id is a UUID on PostgreSQL and its stored text
        (32 hex digits) on SQLite: ``rules.reading_id`` gives either's canonical text."""
        ids = list(set(enrolment_ids))
        found: dict[uuid.UUID, list[Reading]] = {}
        reading = Reading._make
        if self.dialect == "sqlite" and ids:
            # read by the driver (``driver_execute``): the times converted here, one C call each, instead of through
            # SQLAlchemy's result processors (thousands of values for a device batch)
            table = Observation.__table__
            rows = await self.driver_execute(
                "observations.since",
                lambda: sa.select(
                    table.c.enrolment_id, table.c.id, table.c.measure, table.c.value, table.c.effective_at
                ).where(
                    among_named(table.c.enrolment_id, "ids", "sqlite"),
                    table.c.effective_at >= sa.bindparam("since"),
                ),
                {"ids": sqlite_list(ids), "since": since},
            )
            # grouped by the enrolment's stored text (a str's hash is cached, a UUID's is Python code), each group's key
            # then taken from the ids asked for: one UUID per enrolment rather than one per reading. A reading's id is
            # left as its stored text: only the few readings that cause an alert need it (``rules.reading_id``), and
            # a window holds a week of each patient's readings.
            by_text: dict[str, list[Reading]] = {}
            for enrolment_id, id_, measure, value, at in rows:
                by_text.setdefault(enrolment_id, []).append(reading((measure, value, sqlite_time(at), id_)))
            asked = {id_.hex: id_ for id_ in ids}
            return {asked.get(text) or uuid_from_text(text): readings for text, readings in by_text.items()}
        if not ids:
            return found
        # PostgreSQL: by the driver too (readings are only ever written by Core statements: nothing pending here), one
        # row per enrolment holding its readings' columns as arrays. A row per reading cost the server about 2.5 µs of
        # Python each (the driver's row, the result's row, the enrolment's id hashed to group it), a reading as array
        # elements about 1.5 µs: for a window of 19 readings, 28–32 µs per enrolment instead of 46–50, for about 5 µs
        # more of PostgreSQL's time (docs/performance.md, remote monitoring, thirteenth session).
        rows = await self.driver_execute(
            "observations.since",
            lambda: (
                sa.select(
                    Observation.enrolment_id,
                    sa.func.array_agg(Observation.measure),
                    sa.func.array_agg(Observation.value),
                    sa.func.array_agg(Observation.effective_at),
                    sa.func.array_agg(Observation.id),
                )
                .where(
                    among_named(Observation.enrolment_id, "ids", "postgresql"),
                    Observation.effective_at >= sa.bindparam("since"),
                )
                .group_by(Observation.enrolment_id)
            ),
            {"ids": ids, "since": since},
        )
        for enrolment_id, measures, values, times, reading_ids in rows:
            found[enrolment_id] = list(map(reading, zip(measures, values, times, reading_ids, strict=True)))
        return found

    async def last_by_measure(
        self, enrolment_ids: Iterable[uuid.UUID], until: datetime
    ) -> dict[uuid.UUID, dict[str, datetime]]:
        """The time of each enrolment's last reading of each measure, up to ``until`` (missing-data rules)."""
        ids = list(set(enrolment_ids))
        found: dict[uuid.UUID, dict[str, datetime]] = {}
        for start in range(0, len(ids), 500):
            rows = await self.core_rows(
                sa.select(
                    Observation.enrolment_id, Observation.measure, sa.func.max(Observation.effective_at)
                )
                .where(
                    among(Observation.enrolment_id, ids[start : start + 500], self.dialect),
                    Observation.effective_at <= until,
                )
                .group_by(Observation.enrolment_id, Observation.measure)
            )
            for enrolment_id, measure, at in rows:
                found.setdefault(enrolment_id, {})[measure] = clock.as_utc(at)
        return found

    async def series(
        self, enrolment_id: uuid.UUID, since: datetime | None = None, until: datetime | None = None
    ) -> list[Observation]:
        stmt = _between(sa.select(Observation).where(Observation.enrolment_id == enrolment_id), since, until)
        return await self.all(stmt.order_by(Observation.effective_at))

    async def for_patient(
        self,
        patient_id: uuid.UUID,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 20000,
    ) -> list[Observation]:
        """A patient's readings in every programme, newest first: found through the patient's enrolments (the
        readings are indexed by enrolment; an index by patient too would cost every reading one more random insertion,
        migration 2026-12-06-2040)."""
        enrolments = sa.select(Enrolment.id).where(Enrolment.patient_id == patient_id)
        stmt = _between(
            sa.select(Observation).where(
                Observation.enrolment_id.in_(enrolments), Observation.patient_id == patient_id
            ),
            since,
            until,
        )
        return await self.all(stmt.order_by(Observation.effective_at.desc(), Observation.id).limit(limit))


class AlertRepository(RepositoryBase[Alert]):
    model = Alert

    async def recent_or_open(
        self, enrolment_ids: Iterable[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, list[Alert]]:
        """Each enrolment's alerts not closed yet, and those raised since ``since`` (to recognise a finding already
        alerted on), oldest first. Most of a device batch's patients have none: their ids are looked for by the
        driver (one statement, ``driver_execute``), and only the alerts found are loaded as objects."""
        ids = list(set(enrolment_ids))
        found: dict[uuid.UUID, list[Alert]] = {}
        if not ids:
            return found
        await self.session.flush()  # alerts changed in this session are looked for as they now are
        wanted = sa.or_(Alert.status != sa.bindparam("closed"), Alert.raised_at >= sa.bindparam("since"))
        values = {"closed": AlertStatus.CLOSED, "since": since}
        dialect = self.dialect
        rows = await self.driver_execute(
            "alerts.recent_or_open",
            lambda: sa.select(Alert.id).where(among_named(Alert.enrolment_id, "ids", dialect), wanted),
            {**values, "ids": among_values(ids, dialect)},
        )
        alert_ids = [uuid_from_text(id_) for (id_,) in rows]
        for start in range(0, len(alert_ids), 500):
            for alert in await self.all(
                sa.select(Alert).where(Alert.id.in_(alert_ids[start : start + 500])).order_by(Alert.raised_at)
            ):
                found.setdefault(alert.enrolment_id, []).append(alert)
        return found

    async def list_for_enrolment(self, enrolment_id: uuid.UUID) -> list[Alert]:
        return await self.all(
            sa.select(Alert).where(Alert.enrolment_id == enrolment_id).order_by(Alert.raised_at.desc())
        )

    async def unclosed(self, enrolment_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Alert]]:
        ids = list(set(enrolment_ids))
        found: dict[uuid.UUID, list[Alert]] = {}
        if not ids:
            return found
        rows = await self.all(
            sa.select(Alert)
            .where(Alert.enrolment_id.in_(ids), Alert.status != AlertStatus.CLOSED)
            .order_by(Alert.raised_at)
        )
        for row in rows:
            found.setdefault(row.enrolment_id, []).append(row)
        return found


class EducationRepository(RepositoryBase[EducationSession]):
    model = EducationSession

    async def list_for_enrolment(self, enrolment_id: uuid.UUID) -> list[EducationSession]:
        return await self.all(
            sa.select(EducationSession)
            .where(EducationSession.enrolment_id == enrolment_id)
            .order_by(EducationSession.held_at)
        )
