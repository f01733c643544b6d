"""Patient search by traits among 1,000,000 synthetic patients (100,000 with ``--quick``), SQLite and
PostgreSQL.

What is measured is the real scoped search path of the application,
``PatientRepository.search_visible(principal, PatientCriteria(...), PageRequest(0, 20))`` (a count and a
page of 20, narrowed to the patients the principal's organisation has a care relationship with), for a
clinician of a large hospital (about a third of all patients visible) and of a small organisation. It is
compared in the same run against

- the goal: p95 <= 50 ms per search;
- a bare index probe on the same keys, without scoping nor count
  (``SELECT id FROM patients WHERE search_birth_family >= :k AND search_birth_family < :k2 LIMIT 20``),
  and the ratio of the full scoped search to it;
- the two previous designs, through the same ``search_visible`` entry point on the same data: the second
  (scope = care rows of my organisations in the name range, then sort and count on the patients table) and
  the first (``id IN (all patients of my organisations) OR id IN (my emergency grants)``).

Patients are bulk-loaded with each engine's native path (PostgreSQL ``COPY`` through asyncpg, SQLite
``executemany`` of core ``INSERT`` in batches of 10,000, one transaction), with their ``search_*`` keys
computed exactly as ``patients.service._sync_search_keys`` does. The schema comes from
``alembic upgrade head``.

    python -m bench.patient_search [--quick] [--engines sqlite,postgresql] [--queries N] [--patients N]

PostgreSQL URL: ``TELESANTE_BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/telesante_bench``); the database is created if missing and its
``public`` schema is dropped and rebuilt. Each measured case stops after N queries or ``--budget`` seconds,
whichever comes first (``n`` says how many ran). The last line printed is one JSON object of every result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from telesante.auth.principal import Grant, Principal
from telesante.cli import alembic_ini_path
from telesante.config import Settings
from telesante.db import make_engine, make_sessionmaker
from telesante.demo import names
from telesante.directory.models import Organisation, Role
from telesante.kit import clock
from telesante.kit.identifiers import OID_INS_NIR_DEMO, finess_with_key, nir_key
from telesante.kit.pagination import PageRequest
from telesante.kit.text import fold, prefix_upper_bound
from telesante.patients.models import BreakGlassAccess, CareRelationship, Patient
from telesante.patients.repository import PatientCriteria, PatientRepository
from telesante.patients.schemas import ins_name

GOAL_P95_MS = 50.0
BATCH = 10_000
SEED = 20261123
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/telesante_bench"
LOADED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

# --- synthetic population ------------------------------------------------------------------------------

# Long tail of surnames built from syllables (about 17,000 distinct), on top of the common names.
_FIRST = (
    "KER",
    "LEM",
    "MAR",
    "BER",
    "GUI",
    "TRE",
    "PLOU",
    "LAN",
    "MOR",
    "CAR",
    "BRE",
    "DUR",
    "FOU",
    "GAR",
    "LOR",
    "PER",
    "ROB",
    "SAL",
    "VAL",
    "BOU",
    "CHA",
    "DEL",
    "FER",
    "GOU",
    "HER",
    "JAC",
    "LAM",
    "MEN",
    "NIC",
    "POU",
    "QUE",
    "RIV",
    "TAN",
    "THO",
    "VIL",
)
_MIDDLE = ("", "A", "E", "I", "O", "OU", "AN", "EN", "ON", "AR", "ER", "OR", "EL", "AL", "IL", "IN")
_LAST = (
    "VEN",
    "LEC",
    "GAN",
    "BIHAN",
    "ZEC",
    "NOU",
    "RET",
    "LIN",
    "MANT",
    "TIER",
    "CHON",
    "DIN",
    "GEL",
    "HOU",
    "LAIS",
    "MIER",
    "NARD",
    "POT",
    "QUIN",
    "RAND",
    "SSON",
    "TON",
    "VAUX",
    "ZIC",
    "DEC",
    "GALL",
    "MEUR",
    "RIOU",
    "VERN",
    "HIR",
    "CORRE",
)
_PLACES = names.BRETON_COMMUNES * 4 + names.OTHER_FRENCH_COMMUNES + names.FOREIGN_BIRTH_PLACES
_ORGANISATIONS = 60
# Share of registrations: the CHU, four large hospitals, five medium ones, then a long tail of small ones.
_ORG_WEIGHTS = [20.0] + [10.0] * 4 + [4.0] * 5 + [20.0 / (_ORGANISATIONS - 10)] * (_ORGANISATIONS - 10)
LARGE_ORG, SMALL_ORG = 0, _ORGANISATIONS - 1

_PATIENT_COLUMNS = (
    "id",
    "ins_matricule",
    "ins_oid",
    "birth_family_name",
    "birth_given_names",
    "first_given_name",
    "birth_date",
    "sex",
    "birth_place_insee",
    "used_family_name",
    "used_given_name",
    "search_birth_family",
    "search_used_family",
    "search_given",
    "identity_status",
    "phone",
    "email",
    "address_line",
    "postal_code",
    "city",
    "gp_professional_id",
    "created_by_account_id",
    "created_at",
    "updated_at",
)
_CARE_COLUMNS = (
    "id",
    "patient_id",
    "organisation_id",
    "kind",
    "source_ref",
    "created_at",
    "search_birth_family",
    "search_used_family",
    "search_given",
    "birth_date",
)


def _zipf_weights(count: int, exponent: float = 0.9) -> list[float]:
    return [1.0 / (rank**exponent) for rank in range(1, count + 1)]


@cache
def _ins(value: str) -> str:
    return ins_name(value)


@cache
def _fold(value: str) -> str:
    return fold(value)


def organisation_ids() -> list[uuid.UUID]:
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"telesante:bench:org:{n}") for n in range(_ORGANISATIONS)]


class Population:
    """Deterministic synthetic patients, generated in batches (same data for every engine)."""

    def __init__(self, size: int, seed: int = SEED):
        self.size = size
        self.seed = seed
        self.organisations = organisation_ids()
        self.samples: list[dict[str, Any]] = []  # a reservoir of patients to build realistic criteria from

    def batches(self) -> Iterator[tuple[list[tuple], list[tuple]]]:
        rng = random.Random(self.seed)
        common = [_ins(n) for n in names.FAMILY_NAMES]
        common_weights = _zipf_weights(len(common), 0.5)  # the most frequent name: about 1.6 % of patients
        female = [_ins(n) for n in names.FEMALE_GIVEN_NAMES]
        male = [_ins(n) for n in names.MALE_GIVEN_NAMES]
        given_weights = _zipf_weights(len(female), 0.7)
        org_cum = list(_accumulate(_ORG_WEIGHTS))
        first_day = date(1925, 1, 1).toordinal()
        days = date(2025, 12, 31).toordinal() - first_day
        nir_orders: dict[str, int] = {}
        sample_every = max(1, self.size // 20_000)
        patients: list[tuple] = []
        cares: list[tuple] = []
        for index in range(self.size):
            if rng.random() < 0.30:
                family = rng.choices(common, common_weights)[0]
            else:
                family = (rng.choice(_FIRST) + rng.choice(_MIDDLE) + rng.choice(_LAST)).strip()
            sex = "M" if rng.random() < 0.5 else "F"
            pool = male if sex == "M" else female
            given = rng.choices(pool, given_weights, k=rng.choice((1, 1, 2, 2, 3)))
            birth_given = " ".join(dict.fromkeys(given))
            first_given = birth_given.split(" ")[0]
            birth = date.fromordinal(first_day + rng.randrange(days))
            place = rng.choice(_PLACES)
            used = ""
            if sex == "F" and birth.year < 2000 and rng.random() < 0.25:
                used = rng.choices(common, common_weights)[0]
            matricule = oid = None
            status = "provisoire"
            if rng.random() < 0.6:
                body = f"{1 if sex == 'M' else 2}{birth.year % 100:02d}{birth.month:02d}{place}"
                order = nir_orders.get(body, 0) + 1
                nir_orders[body] = order
                body += f"{order:03d}"
                matricule, oid = body + nir_key(body), OID_INS_NIR_DEMO
                status = "qualifiee" if rng.random() < 0.5 else "recuperee"
            elif rng.random() < 0.3:
                status = "validee"
            patient_id = _uuid(rng)
            search_birth = _fold(family)
            search_used = _fold(used) or search_birth
            search_given = _fold(birth_given)
            # The care relationship's copies (repository.care_search_keys): the used name only when different.
            care_keys = (
                search_birth,
                "" if search_used == search_birth else search_used,
                search_given,
                birth,
            )
            patients.append(
                (
                    patient_id,
                    matricule,
                    oid,
                    family,
                    birth_given,
                    first_given,
                    birth,
                    sex,
                    place,
                    used,
                    "",
                    search_birth,
                    search_used,
                    search_given,
                    status,
                    "",
                    "",
                    "",
                    "",
                    "",
                    None,
                    None,
                    LOADED_AT,
                    LOADED_AT,
                )
            )
            home = _bisect(org_cum, rng.random() * org_cum[-1])
            cares.append(
                (
                    _uuid(rng),
                    patient_id,
                    self.organisations[home],
                    "registered",
                    "",
                    LOADED_AT,
                    *care_keys,
                )
            )
            if home != LARGE_ORG and rng.random() < 0.15:  # a tele-expertise with the CHU
                chu = self.organisations[LARGE_ORG]
                cares.append(
                    (
                        _uuid(rng),
                        patient_id,
                        chu,
                        "act",
                        f"bench:{index}",
                        LOADED_AT,
                        *care_keys,
                    )
                )
            if index % sample_every == 0:
                self.samples.append({"family": family, "used": used, "given": first_given, "birth": birth})
            if len(patients) >= BATCH:
                yield patients, cares
                patients, cares = [], []
        if patients:
            yield patients, cares


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _accumulate(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _bisect(cumulative: list[float], x: float) -> int:
    lo, hi = 0, len(cumulative) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


# --- engines -------------------------------------------------------------------------------------------


def _alembic_upgrade(sync_connection) -> None:
    config = Config(str(alembic_ini_path()))
    config.attributes["connection"] = sync_connection
    command.upgrade(config, "head")


async def _fresh_postgresql(url: str) -> AsyncEngine:
    import asyncpg

    parsed = make_url(url)
    server = await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database="postgres",
    )
    try:
        if not await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database):
            await server.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await server.close()
    engine = make_engine(Settings(database_url=url).effective_database_url)
    async with engine.begin() as conn:
        await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        await conn.execute(sa.text("CREATE SCHEMA public"))
    return engine


async def _insert_organisations(engine: AsyncEngine, ids: list[uuid.UUID]) -> None:
    rows = [
        {
            "id": org_id,
            "finess": finess_with_key(f"35{880000 + n:06d}"),
            "name": f"Établissement de test {n}",
            "type": "chu" if n == LARGE_ORG else "ch",
            "commune_insee": "35238",
            "departement": "35",
            "created_at": LOADED_AT,
            "updated_at": LOADED_AT,
        }
        for n, org_id in enumerate(ids)
    ]
    async with engine.begin() as conn:
        await conn.execute(sa.insert(Organisation.__table__), rows)


async def load(engine: AsyncEngine, population: Population) -> dict[str, float]:
    """Bulk-load the population in one transaction; returns timings."""
    await _insert_organisations(engine, population.organisations)
    started = time.perf_counter()
    generating = 0.0
    care_rows = 0
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            raw = (await conn.get_raw_connection()).driver_connection
        else:  # a larger page cache while loading only (index pages of 1M rows); reset below
            await conn.exec_driver_sql("PRAGMA cache_size = -262144")
        batches = population.batches()
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            generating += time.perf_counter() - t0
            if batch is None:
                break
            patients, cares = batch
            care_rows += len(cares)
            if engine.dialect.name == "postgresql":
                await raw.copy_records_to_table("patients", records=patients, columns=_PATIENT_COLUMNS)
                await raw.copy_records_to_table("care_relationships", records=cares, columns=_CARE_COLUMNS)
            else:
                await conn.execute(sa.insert(Patient.__table__), _as_dicts(_PATIENT_COLUMNS, patients))
                await conn.execute(sa.insert(CareRelationship.__table__), _as_dicts(_CARE_COLUMNS, cares))
        if engine.dialect.name == "sqlite":
            await conn.exec_driver_sql("PRAGMA cache_size = -2000")  # SQLite's default, as the app runs
    total = time.perf_counter() - started
    return {
        "load_s": round(total, 1),
        "generate_s": round(generating, 1),
        "care_relationships": care_rows,
        "patients_per_s": round(population.size / max(total - generating, 1e-9)),
    }


def _as_dicts(columns: tuple[str, ...], rows: list[tuple]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


async def analyze(engine: AsyncEngine) -> None:
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM ANALYZE patients"))
            await conn.execute(sa.text("VACUUM ANALYZE care_relationships"))
    else:
        async with engine.begin() as conn:
            await conn.execute(sa.text("ANALYZE"))


# --- queries -------------------------------------------------------------------------------------------


@dataclass
class Query:
    kind: str
    criteria: PatientCriteria


def build_queries(population: Population, count: int, seed: int = SEED + 1) -> list[Query]:
    """Criteria as users type them: family-name prefix (3-5 letters), name + birth date, name + first name."""
    rng = random.Random(seed)
    queries = []
    kinds = ("nom (préfixe 3-5)", "nom + date de naissance", "nom + prénom")
    for i in range(count):
        target = rng.choice(population.samples)
        family = target["used"] if target["used"] and rng.random() < 0.3 else target["family"]
        prefix = _prefix(family, rng.choice((3, 4, 5)))
        kind = kinds[i % 3]
        if kind == kinds[0]:
            criteria = PatientCriteria(family=prefix)
        elif kind == kinds[1]:
            name = family if rng.random() < 0.5 else prefix
            criteria = PatientCriteria(family=name, birth_date=target["birth"])
        else:
            name = family if rng.random() < 0.5 else prefix
            criteria = PatientCriteria(family=name, given=target["given"])
        queries.append(Query(kind, criteria))
    return queries


def _prefix(name: str, letters: int) -> str:
    """The first ``letters`` letters as typed ('LE GALL', 3 -> 'LE G': spaces do not count)."""
    typed, count = "", 0
    for char in name:
        typed += char
        count += char.isalpha()
        if count == letters:
            break
    return typed


def principal_for(organisation_id: uuid.UUID, name: str) -> Principal:
    return Principal(
        account_id=uuid.uuid5(uuid.NAMESPACE_URL, f"telesante:bench:account:{organisation_id}"),
        email="bench@exemple.fr",
        professional_id=uuid.uuid5(uuid.NAMESPACE_URL, f"telesante:bench:professional:{organisation_id}"),
        display_name="Dr Banc d'Essai",
        grants=(Grant(Role.REQUESTER, organisation_id, name),),
        auth_method="system",
    )


class FirstDesignRepository(PatientRepository):
    """The first scoping, kept as a peer: ``id IN (every patient of my organisations) OR id IN (my grants)``,
    every criterion on the patients table.

    SQLite drives it from the organisation's whole care list; PostgreSQL hashes that list on every search, or,
    when it no longer fits in ``work_mem``, rescans it for each candidate (a quadratic plan).
    """

    async def _search_by_family(self, principal: Principal, criteria: PatientCriteria, page: PageRequest):
        return await self._search_filtered(self.visible(principal), criteria, page)


class NameRangeScopeRepository(PatientRepository):
    """The second design, kept as a peer: the scope is ``id IN (care rows of my organisations in this name range
    UNION ALL my grants)`` over the (organisation, name) indexes, then every criterion, the sort and the count on
    the patients table (each match's patient row is read)."""

    async def _search_by_family(self, principal: Principal, criteria: PatientCriteria, page: PageRequest):
        key = fold(criteria.family)
        upper = prefix_upper_bound(key)
        care = CareRelationship
        parts: list[sa.Select] = [
            sa.select(BreakGlassAccess.patient_id).where(
                BreakGlassAccess.account_id == principal.account_id, BreakGlassAccess.expires_at > clock.now()
            )
        ]
        if principal.clinical_organisation_ids:
            for column in (care.search_birth_family, care.search_used_family):
                parts.append(
                    sa.select(care.patient_id).where(
                        care.organisation_id.in_(principal.clinical_organisation_ids),
                        column >= key,
                        column < upper,
                    )
                )
        return await self._search_filtered(Patient.id.in_(sa.union_all(*parts)), criteria, page)


@dataclass(frozen=True)
class Variant:
    label: str
    key: str  # in the JSON line
    repository: type[PatientRepository]


VARIANTS = (
    Variant("actuel", "scoped_search", PatientRepository),
    Variant("2e version (portée par nom)", "second_design_name_range_scope", NameRangeScopeRepository),
    Variant("1re version (portée entière)", "first_design_whole_scope", FirstDesignRepository),
)


def _percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    if len(ordered) < 2:
        ordered = ordered * 2 or [0.0, 0.0]
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(samples_ms),
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "max_ms": round(ordered[-1], 2),
    }


QUERY_TIMEOUT_S = 5  # PostgreSQL statement_timeout: a pathological plan is recorded, not waited for


async def _limit_statement_time(session: AsyncSession, seconds: float) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.text(f"SET LOCAL statement_timeout = '{int(seconds * 1000)}ms'"))


def _is_timeout(exc: DBAPIError) -> bool:
    return "statement timeout" in str(exc.orig) or "QueryCanceled" in type(exc.orig).__name__


async def time_scoped(
    engine: AsyncEngine,
    repository: type[PatientRepository],
    principal: Principal,
    queries: list[Query],
    budget_s: float,
) -> dict[str, Any]:
    """search_visible, one session per search as in a request; stops after the queries or the time budget.

    On PostgreSQL each statement is cut after QUERY_TIMEOUT_S; such a search counts as a timeout and its
    elapsed time (at least the timeout) is kept in the percentiles.
    """
    sessionmaker = make_sessionmaker(engine)
    page = PageRequest(0, 20)
    by_kind: dict[str, list[float]] = {}
    totals: list[int] = []
    timeouts = 0
    deadline = time.monotonic() + budget_s
    for index, query in enumerate([*queries[:5], *queries]):  # the first five warm the caches
        if time.monotonic() > deadline:
            break
        async with sessionmaker() as session:
            await _limit_statement_time(session, QUERY_TIMEOUT_S)
            started = time.perf_counter()
            try:
                result = await repository(session).search_visible(principal, query.criteria, page)
            except DBAPIError as exc:
                if not _is_timeout(exc):
                    raise
                result = None
            elapsed_ms = (time.perf_counter() - started) * 1000
        if index < 5:
            continue
        by_kind.setdefault(query.kind, []).append(elapsed_ms)
        if result is None:
            timeouts += 1
        else:
            totals.append(result.total)
    report: dict[str, Any] = _percentiles([ms for values in by_kind.values() for ms in values])
    report["by_kind"] = {kind: _percentiles(values) for kind, values in by_kind.items()}
    report["timeouts"] = timeouts
    report["median_total"] = statistics.median(totals) if totals else None
    report["max_total"] = max(totals) if totals else None
    report["goal_met"] = report["p95_ms"] <= GOAL_P95_MS and not timeouts
    return report


async def time_baseline(engine: AsyncEngine, queries: list[Query]) -> dict[str, Any]:
    """The bare index probe on the same family keys: no scoping, no count."""
    probe = sa.text(
        "SELECT id FROM patients WHERE search_birth_family >= :k AND search_birth_family < :k2 LIMIT 20"
    )
    samples = []
    async with engine.connect() as conn:
        for index, query in enumerate(queries):
            key = fold(query.criteria.family)
            started = time.perf_counter()
            (await conn.execute(probe, {"k": key, "k2": prefix_upper_bound(key)})).all()
            if index >= 5:  # the first ones warm the cache
                samples.append((time.perf_counter() - started) * 1000)
    return _percentiles(samples)


EXPLAIN_TIMEOUT_S = 30


async def explain(
    engine: AsyncEngine, repository: type[PatientRepository], principal: Principal, criteria: PatientCriteria
) -> list[str]:
    """Plan of the count statement search_visible really sends (captured, EXPLAINed with its parameters).

    PostgreSQL: EXPLAIN ANALYZE, or the estimated plan if it runs longer than EXPLAIN_TIMEOUT_S.
    """
    captured: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "count(" in statement:  # the count is the costly statement; the page shares its plan shape
            captured.append((statement, parameters))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with make_sessionmaker(engine)() as session:
            await _limit_statement_time(session, 1)
            try:
                await repository(session).search_visible(principal, criteria, PageRequest(0, 20))
            except DBAPIError as exc:  # only the statement text was wanted
                if not _is_timeout(exc):
                    raise
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", capture)
    statement, parameters = captured[0]
    lines: list[str] = []
    if engine.dialect.name == "postgresql":
        async with make_sessionmaker(engine)() as session:
            await _limit_statement_time(session, EXPLAIN_TIMEOUT_S)
            connection = await session.connection()
            try:
                rows = await connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, COSTS OFF) " + statement, parameters
                )
                lines.extend(row[0] for row in rows)
            except DBAPIError as exc:
                if not _is_timeout(exc):
                    raise
                await session.rollback()
                connection = await session.connection()
                lines.append(f"(EXPLAIN ANALYZE interrompu après {EXPLAIN_TIMEOUT_S} s — plan estimé :)")
                rows = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
                lines.extend(row[0] for row in rows)
    else:
        async with engine.connect() as conn:
            rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            depth = {0: -1}
            for node, parent, _, detail in rows:  # (id, parent, notused, detail)
                depth[node] = depth.get(parent, -1) + 1
                lines.append("  " * depth[node] + detail)
    return [
        line for line in lines if not line.lstrip().startswith(("JIT:", "Functions:", "Options:", "Timing:"))
    ]


# --- driver --------------------------------------------------------------------------------------------


@dataclass
class EngineResult:
    engine: str
    version: str
    load: dict[str, Any]
    # variant -> scenario -> statistics
    searches: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    plans: dict[str, list[str]] = field(default_factory=dict)

    @property
    def goal_met(self) -> bool:
        return all(s["goal_met"] for s in self.searches["actuel"].values())


async def run_engine(
    name: str, population: Population, count: int, budget_s: float, workdir: Path
) -> EngineResult:
    if name == "postgresql":
        engine = await _fresh_postgresql(os.environ.get("TELESANTE_BENCH_DATABASE_URL", DEFAULT_PG_URL))
    else:
        engine = make_engine(f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_alembic_upgrade)
            version_sql = "SHOW server_version" if name == "postgresql" else "SELECT sqlite_version()"
            version = (await conn.execute(sa.text(version_sql))).scalar_one()
        _progress(f"[{name}] chargement de {population.size:,} patients…")
        population.samples.clear()
        result = EngineResult(name, str(version).split()[0], await load(engine, population))
        await analyze(engine)
        queries = build_queries(population, count)  # same reservoir, same seed: same queries on every engine
        orgs = population.organisations
        scenarios = {
            "grand étab.": principal_for(orgs[LARGE_ORG], "CHU"),
            "petit étab.": principal_for(orgs[SMALL_ORG], "Petit établissement"),
        }
        prefixes = [q.criteria for q in queries if q.kind.startswith("nom (") and len(q.criteria.family) == 3]
        sample = prefixes[0]
        for variant in VARIANTS:
            result.searches[variant.label] = {}
            for label, principal in scenarios.items():
                _progress(
                    f"[{name}] {variant.label.strip()}, {label} : ≤ {count} recherches ou {budget_s:.0f} s…"
                )
                stats = await time_scoped(engine, variant.repository, principal, queries, budget_s)
                result.searches[variant.label][label] = stats
            key = f"{variant.label.strip()}, grand étab., nom « {sample.family} »"
            result.plans[key] = await explain(engine, variant.repository, scenarios["grand étab."], sample)
        result.baseline = await time_baseline(engine, queries)
        return result
    finally:
        await engine.dispose()


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    return info


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / max(denominator, 1e-6), 1)


def _row(engine: str, label: str, stats: dict[str, Any], tail: str = "") -> str:
    def cell(value: Any) -> str:
        return f"{value:>9.2f}" if isinstance(value, float) else f"{value:>9}"

    numbers = f"{stats['n']:>5}{cell(stats['p50_ms'])}{cell(stats['p95_ms'])}{cell(stats['p99_ms'])}"
    return f"{engine:<11}{label:<44}{numbers}{tail}"


def render(results: list[EngineResult], population: Population, count: int) -> str:
    out = [
        f"Recherche de patients par traits — {population.size:,} patients, "
        f"jusqu'à {count} recherches par cas, objectif p95 ≤ {GOAL_P95_MS:.0f} ms",
        "",
    ]
    header = _row("moteur", "cas", {"n": "n", "p50_ms": "p50", "p95_ms": "p95", "p99_ms": "p99"})
    header += f"{'p95/sonde':>11}  objectif"
    out += [header, "-" * len(header)]
    for r in results:
        b = r.baseline
        for variant, scenarios in r.searches.items():
            for label, s in scenarios.items():
                verdict = "atteint" if s["goal_met"] else "MANQUÉ"
                if s["timeouts"]:
                    verdict += f" ({s['timeouts']} > {QUERY_TIMEOUT_S} s)"
                ratio = _ratio(s["p95_ms"], b["p95_ms"])
                out.append(_row(r.engine, f"{variant}, {label}", s, f"{ratio:>10.1f}×  {verdict}"))
                out += [_row("", "  " + kind, k) for kind, k in s["by_kind"].items()]
        out.append(_row(r.engine, "sonde d’index nue (référence)", b))
        load = r.load
        out.append(
            f"{r.engine:<11}{r.version} — chargement {load['load_s']} s (génération {load['generate_s']} s), "
            f"{load['patients_per_s']:,} patients/s, {load['care_relationships']:,} liens de soins"
        )
        out.append("")
    for r in results:
        for label, lines in r.plans.items():
            out.append(f"Plan {r.engine} ({label}), requête de comptage :")
            out += ["    " + line for line in lines]
            out.append("")
    return "\n".join(out)


def as_json(results: list[EngineResult], size: int, count: int, budget_s: float) -> str:
    engines = {}
    for r in results:
        searches = {
            variant: {
                label: {
                    **s,
                    "ratio_p50_to_probe": _ratio(s["p50_ms"], r.baseline["p50_ms"]),
                    "ratio_p95_to_probe": _ratio(s["p95_ms"], r.baseline["p95_ms"]),
                }
                for label, s in scenarios.items()
            }
            for variant, scenarios in r.searches.items()
        }
        engines[r.engine] = {
            "version": r.version,
            "load": r.load,
            "baseline_index_probe": r.baseline,
            **{variant.key: searches[variant.label] for variant in VARIANTS},
            "goal_met": r.goal_met,
        }
    document = {
        "benchmark": "patient_search",
        "patients": size,
        "queries": count,
        "budget_s": budget_s,
        "goal_p95_ms": GOAL_P95_MS,
        "machine": machine(),
        "engines": engines,
    }
    return json.dumps(document, ensure_ascii=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 000 patients, 200 recherches par cas")
    parser.add_argument("--engines", default="sqlite,postgresql", help="moteurs, séparés par des virgules")
    parser.add_argument("--patients", type=int, help="nombre de patients (1 000 000 par défaut)")
    parser.add_argument("--queries", type=int, help="recherches par cas (500 par défaut)")
    parser.add_argument("--budget", type=float, help="secondes au plus par cas mesuré (45, ou 20 en --quick)")
    args = parser.parse_args(argv)
    size = args.patients or (100_000 if args.quick else 1_000_000)
    count = args.queries or (200 if args.quick else 500)
    budget = args.budget or (20.0 if args.quick else 45.0)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    population = Population(size)
    workdir = Path(tempfile.mkdtemp(prefix="telesante-bench-"))
    try:
        results = [asyncio.run(run_engine(name, population, count, budget, workdir)) for name in engines]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(results, population, count))
    print(as_json(results, size, count, budget))


if __name__ == "__main__":
    main()
