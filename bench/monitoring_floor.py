"""Remote-monitoring ingest's floor on PostgreSQL: the least CPU a reading of a device batch can cost on this machine.

    python -m bench.monitoring_floor [--quick] [--patients N] [--rounds N]

Issue 7 asks for 20,000 observations/s on PostgreSQL on this machine. Its two cores then give each reading 100 µs of
CPU, for everything: the database, the server's Python, the clients. ``bench.monitoring_ingest`` measures the
application; this one measures a floor beneath it, in the same shape of work and on the same tables, with everything
that is not essential left out: no HTTP, no web framework, no SQLAlchemy, no authentication, no session, one
connection (asyncpg), the entries checked only for what the statements need. What it keeps is what the issue itself
asks of each reading:

- the batch read (``orjson``) and each entry's patient, device, code, unit, value and time taken out of it, the value
  converted by the application's own ``clinical.normalise``;
- the readings stored once (the enrolments and devices of the batch's patients looked up; one ``INSERT … SELECT FROM
  unnest(…) ON CONFLICT DO NOTHING`` with the application's keys and indexes, its foreign keys checked);
- an audit row per patient, chained by a SHA-256 hash under the chain's lock, as ``audit.record_accesses`` writes them;
- the rules judged on arrival, in groups of 100 enrolments as the application does: each enrolment's row locked, its
  window of readings read (one row of arrays per enrolment), its recent alerts looked for, and the application's own
  ``rules.evaluate`` run on the programme's rules;
- the per-entry answer serialised.

The same readings as ``bench.monitoring_ingest`` (10,000 heart-failure patients, three stable weights each per round,
batches of 500, one day of history first), run one batch after another on one core. Measured: this process's CPU
(``time.process_time``) and the PostgreSQL backend's (``/proc/<pid>/schedstat``, the server on this host), per
reading. The limit it is compared with: the machine's cores divided by that sum, the readings a second the machine
could take if it did nothing else (no HTTP, no clients, no second process, no waiting), against issue 7's goal. The
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.monitoring_ingest import GOAL_PG, bundle, observation, seed_in_subprocess, stable_readings
from bench.notify import migrate, recreate_database, server_env
from bench.stroke_alert import machine

DATABASE = "monitoring_floor"
GROUP = 100  # enrolments judged per transaction (fhir.monitoring.JUDGE_GROUP)
CHAIN_LOCK = 4_242_001  # this benchmark's own advisory lock (its audit rows go to a table of its own)

PATIENTS_OF_BATCH = """
SELECT e.patient_id, e.id, d.id, d.serial FROM monitoring_enrolments e
JOIN monitoring_devices d ON d.enrolment_id = e.id AND d.unlinked_at IS NULL
WHERE e.patient_id = ANY($1::uuid[]) AND e.status = 'active'"""
INSERT = """
WITH inserted AS (
  INSERT INTO monitoring_observations (received_at, source, entered_by_name, id, enrolment_id, patient_id, measure,
    code, value, unit, sent_value, sent_unit, effective_at, device_id, dedup_key)
  SELECT $1, $2, $3, r.* FROM unnest($4::uuid[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::float8[],
    $10::text[], $11::float8[], $12::text[], $13::timestamptz[], $14::uuid[], $15::text[])
    AS r(id, enrolment_id, patient_id, measure, code, value, unit, sent_value, sent_unit, effective_at, device_id,
    dedup_key)
  ON CONFLICT (enrolment_id, dedup_key) DO NOTHING RETURNING id, enrolment_id)
SELECT array_agg(id), array_agg(enrolment_id) FROM inserted"""
CHAIN_HEAD = (
    "SELECT pg_advisory_xact_lock($1), (SELECT seq FROM floor_audit ORDER BY seq DESC LIMIT 1), "
    "(SELECT hash FROM floor_audit ORDER BY seq DESC LIMIT 1)"
)
AUDIT = """
INSERT INTO floor_audit (occurred_at, request_id, channel, ip, account_id, actor, roles, organisations, action,
  object_type, break_glass, seq, object_id, patient_id, details, prev_hash, hash)
SELECT $1, $2, 'api', '127.0.0.1', NULL, $3, 'monitoring_operator', $4, 'create', 'MonitoringObservation', false, r.*
FROM unnest($5::bigint[], $6::text[], $7::uuid[], $8::text[], $9::text[], $10::text[])
  AS r(seq, object_id, patient_id, details, prev_hash, hash)"""
LOCK = """
SELECT array_agg(id), array_agg(colour) FROM (SELECT id, colour FROM monitoring_enrolments
  WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE) AS locked"""
WINDOW = """
SELECT enrolment_id, array_agg(measure), array_agg(value), array_agg(effective_at), array_agg(id)
FROM monitoring_observations WHERE enrolment_id = ANY($1::uuid[]) AND effective_at >= $2 GROUP BY enrolment_id"""
ALERTS = """
SELECT id FROM monitoring_alerts WHERE enrolment_id = ANY($1::uuid[]) AND (status <> 'closed' OR raised_at >= $2)"""


def backend_cpu_us(pid: int) -> float | None:
    """The CPU time a PostgreSQL backend of this host has used (µs), None when it is not readable here."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1_000
    except (OSError, ValueError, IndexError):
        return None


class Floor:
    """The essential work of a device batch, on one asyncpg connection."""

    def __init__(self, connection: Any, now: datetime) -> None:
        from telesante.monitoring import clinical, rules

        self.connection, self.now = connection, now
        self.normalise, self.rules = clinical.normalise, rules
        self.programme_rules = rules.PROGRAMMES["insuffisance_cardiaque"].rules
        self.window = rules.window(self.programme_rules)

    async def batch(self, body: bytes) -> bytes:
        from telesante.kit.models import uuid7

        connection, now = self.connection, self.now
        entries = orjson.loads(body)["entry"]
        wanted = []
        for entry in entries:
            resource = entry["resource"]
            reference = resource["subject"]["reference"]
            wanted.append(uuid.UUID(reference.removeprefix("Patient/")))
        known = {row[0]: row[1:] for row in await connection.fetch(PATIENTS_OF_BATCH, wanted)}
        rows: list[tuple[Any, ...]] = []
        answers: list[dict[str, Any]] = []
        for position, entry in enumerate(entries):
            resource = entry["resource"]
            found = known.get(wanted[position])
            serial = resource["device"]["identifier"]["value"]
            if entry["request"]["method"] != "POST" or found is None or found[2] != serial:
                answers.append({"response": {"status": "422 Unprocessable Entity"}})
                continue
            coding, quantity = resource["code"]["coding"][0], resource["valueQuantity"]
            measure, value = self.normalise(
                coding["code"], quantity["value"], quantity["code"], system=coding["system"]
            )
            identifier = resource["identifier"][0]
            answers.append({"response": None})  # known once stored: created, or already there
            rows.append(
                (
                    uuid7(),
                    found[0],
                    wanted[position],
                    measure.key,
                    coding["code"],
                    value,
                    measure.unit,
                    float(quantity["value"]),
                    quantity["code"],
                    datetime.fromisoformat(resource["effectiveDateTime"]),
                    found[1],
                    f"id:{identifier['system']}|{identifier['value']}",
                )
            )
        if not rows:
            return orjson.dumps({"resourceType": "Bundle", "type": "batch-response", "entry": answers})
        columns = [list(column) for column in zip(*rows, strict=True)]
        async with connection.transaction():
            [(ids, enrolments)] = await connection.fetch(INSERT, now, "device", "Passerelle", *columns)
            enrolments = sorted(set(enrolments or ()))
            [(_, seq, previous)] = await connection.fetch(CHAIN_HEAD, CHAIN_LOCK)
            seq, previous = seq or 0, previous or "0" * 64
            audit: list[list[Any]] = [[], [], [], [], [], []]
            details = '{"count":1,"source":"device"}'
            for patient in {row[2] for row in rows}:
                seq += 1
                digest = hashlib.sha256(
                    orjson.dumps(
                        {"seq": seq, "patient_id": str(patient), "details": details, "prev_hash": previous},
                        option=orjson.OPT_SORT_KEYS,
                    )
                ).hexdigest()
                for column, value in zip(
                    audit, (seq, str(patient), patient, details, previous, digest), strict=True
                ):
                    column.append(value)
                previous = digest
            await connection.execute(AUDIT, now, "floor", "Passerelle <passerelle@chu>", "CHU", *audit)
        reading = self.rules.Reading._make
        since = now - timedelta(days=30)
        for start in range(0, len(enrolments), GROUP):
            group = enrolments[start : start + GROUP]
            async with connection.transaction():
                await connection.fetch(LOCK, group)
                windows = {
                    enrolment: list(map(reading, zip(measures, values, times, reading_ids, strict=True)))
                    for enrolment, measures, values, times, reading_ids in await connection.fetch(
                        WINDOW, group, now - self.window
                    )
                }
                await connection.fetch(ALERTS, group, now - self.window - timedelta(days=31))
                for enrolment in group:
                    self.rules.evaluate(self.programme_rules, windows.get(enrolment, []), now, since, {})
        new = set(ids or ())
        pending = (answer for answer in answers if answer["response"] is None)
        for row, answer in zip(rows, pending, strict=True):
            status = "201 Created" if row[0] in new else "200 OK"
            answer["response"] = {"status": status, "location": f"Observation/{row[0]}"}
        return orjson.dumps({"resourceType": "Bundle", "type": "batch-response", "entry": answers})


async def run(database_url: str, info: dict[str, Any], batch: int, rounds: int) -> dict[str, Any]:
    import asyncpg

    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "DROP TABLE IF EXISTS floor_audit; CREATE TABLE floor_audit (LIKE audit_events INCLUDING ALL)"
        )
        backend = await connection.fetchval("SELECT pg_backend_pid()")
        now = datetime.now(UTC)
        floor = Floor(connection, now)
        patients = info["patient_ids"]
        history = [
            observation(patient, index, 70.0, now - timedelta(hours=66), "history")
            for index, patient in enumerate(patients)
        ]
        # the history, as the ingest benchmark's warm-up (not timed)
        for start in range(0, len(history), batch):
            await floor.batch(orjson.dumps(bundle(history[start : start + batch])))
        await connection.execute("ANALYZE")
        gc.freeze()  # as the servers do (TELESANTE_GC_FREEZE)
        python_s, backend_us, readings, by_round = 0.0, 0.0, 0, []
        for round_ in range(rounds):
            load = stable_readings(patients, now, round_)
            bodies = [
                orjson.dumps(bundle(load[start : start + batch])) for start in range(0, len(load), batch)
            ]
            started, before = time.process_time(), backend_cpu_us(backend)
            for body in bodies:
                await floor.batch(body)
            spent, after = time.process_time() - started, backend_cpu_us(backend)
            python_s += spent
            if before is not None and after is not None:
                backend_us += after - before
            readings += len(load)
            by_round.append(round(1e6 * spent / len(load), 1))
        await connection.execute("DROP TABLE floor_audit")
    finally:
        await connection.close()
    python_us = 1e6 * python_s / readings
    database_us = backend_us / readings if backend_us else None
    total = python_us + (database_us or 0.0)
    cores = os.cpu_count() or 1
    ceiling = cores * 1e6 / total
    return {
        "readings": readings,
        "python_us_per_reading": round(python_us, 1),
        "python_us_by_round": by_round,
        "postgres_us_per_reading": round(database_us, 1) if database_us is not None else None,
        "total_us_per_reading": round(total, 1),
        "cores": cores,
        "ceiling_observations_per_s": round(ceiling),
        "goal_observations_per_s": GOAL_PG,
        "goal_within_ceiling": ceiling >= GOAL_PG,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 patients instead of 10,000")
    parser.add_argument("--patients", type=int, default=None)
    parser.add_argument("--batch", type=int, default=500, help="Observations per batch Bundle")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    patients = args.patients or (1_000 if args.quick else 10_000)
    started, load_at_start = datetime.now(UTC), os.getloadavg()[0]
    database_url = await recreate_database(DATABASE)
    env = server_env(Path(tempfile.mkdtemp(prefix="telesante-bench-floor-")), database_url, None, "floor")
    try:
        migrate(env)
        info = seed_in_subprocess(env, patients)
    finally:
        shutil.rmtree(env["TELESANTE_DATA_DIR"], ignore_errors=True)
    result = await run(database_url, info, args.batch, max(1, args.rounds))
    print(
        f"Plancher PostgreSQL ({patients} patients, {result['readings']} mesures) : Python "
        f"{result['python_us_per_reading']} µs par mesure (tours : "
        f"{' / '.join(str(v) for v in result['python_us_by_round'])}), PostgreSQL "
        f"{result['postgres_us_per_reading']} µs ; total {result['total_us_per_reading']} µs, soit au plus "
        f"{result['ceiling_observations_per_s']} obs/s sur {result['cores']} cœurs sans HTTP ni clients "
        f"(objectif {GOAL_PG} : {'à portée' if result['goal_within_ceiling'] else 'HORS DE PORTÉE'})",
        flush=True,
    )
    print(
        json.dumps(
            {
                "benchmark": "monitoring_floor",
                "quick": args.quick,
                "patients": patients,
                "machine": machine(started, load_at_start),
                **result,
            }
        )
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
