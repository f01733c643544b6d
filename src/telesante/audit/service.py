"""record_access(): one chained row per read or change of patient data; verify_chain() checks them all.

Each row's hash is SHA-256 over a canonical JSON form of its fields *including the previous row's hash*,
so editing or deleting any row breaks every later link. See docs/domains/audit.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from telesante.audit.models import AuditEvent
from telesante.audit.repository import AuditRepository
from telesante.auth.principal import Principal
from telesante.kit import clock, context
from telesante.kit.pagination import Page, PageRequest

GENESIS_HASH = "0" * 64


class Action:
    READ = "read"
    SEARCH = "search"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    BREAK_GLASS = "break_glass"
    EXPORT = "export"


def _shared_fields(
    occurred_at,
    request_id,
    channel,
    ip,
    account_id,
    actor,
    roles,
    organisations,
    action,
    object_type,
    break_glass,
) -> dict[str, Any]:
    """The canonical form's fields that the rows of one ``record_accesses`` call share."""
    return {
        "occurred_at": clock.as_utc(occurred_at).isoformat(timespec="microseconds"),
        "request_id": request_id,
        "channel": channel,
        "ip": ip,
        "account_id": str(account_id) if account_id else None,
        "actor": actor,
        "roles": roles,
        "organisations": organisations,
        "action": action,
        "object_type": object_type,
        "break_glass": bool(break_glass),
    }


_FLAT = frozenset({str, int, bool, type(None)})


def details_text(details: dict[str, Any] | None) -> str:
    """An audit row's details as stored (and hashed): ``json.dumps(details, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False, default=str)``. A flat dictionary of strings, integers, booleans and nulls (a device batch's
    ``{"count", "source"}`` for each of its hundreds of patients) is serialised by orjson, which gives these bytes for
    such values (``tests/audit/test_chain.py`` compares the two); anything else, or what orjson refuses (an integer
    beyond 64 bits, a lone surrogate), by ``json.dumps`` itself."""
    if not details:
        return "{}"
    if all(type(key) is str and type(value) in _FLAT for key, value in details.items()):
        with contextlib.suppress(TypeError):  # orjson.JSONEncodeError is a TypeError
            return orjson.dumps(details, option=orjson.OPT_SORT_KEYS).decode()
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _canonical(shared: dict[str, Any], seq, object_id, patient_id, details, prev_hash) -> bytes:
    payload = {
        **shared,
        "seq": seq,
        "object_id": object_id,
        "patient_id": str(patient_id) if patient_id else None,
        "details": details,
        "prev_hash": prev_hash,
    }
    # Byte for byte what json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False) gives for these
    # values (strings, integers, booleans, null), in C: tests/audit/test_chain.py checks the two agree.
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def canonical_form(event: AuditEvent | SimpleNamespace) -> bytes:
    shared = _shared_fields(
        event.occurred_at,
        event.request_id,
        event.channel,
        event.ip,
        event.account_id,
        event.actor,
        event.roles,
        event.organisations,
        event.action,
        event.object_type,
        event.break_glass,
    )
    return _canonical(shared, event.seq, event.object_id, event.patient_id, event.details, event.prev_hash)


def compute_hash(event: AuditEvent | SimpleNamespace) -> str:
    return hashlib.sha256(canonical_form(event)).hexdigest()


async def record_access(
    session: AsyncSession,
    principal: Principal | None,
    *,
    action: str,
    object_type: str,
    object_id: Any,
    patient_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    break_glass: bool = False,
) -> AuditEvent:
    """Append one audit row in the current transaction (it commits or rolls back with the change)."""
    repo = AuditRepository(session)
    last = await repo.chain_head()
    event = _chained(
        last, principal, action, object_type, object_id, patient_id, details, break_glass, clock.now()
    )
    await repo.append(event)
    return event


async def record_accesses(
    session: AsyncSession,
    principal: Principal | None,
    *,
    action: str,
    object_type: str,
    entries: Sequence[tuple[Any, uuid.UUID | None, dict[str, Any] | None]],
) -> None:
    """Append one audit row per ``(object id, patient id, details)`` in one write: the rows of a batch (a device
    gateway's readings for many patients) are chained exactly as ``record_access`` would chain them one by one."""
    if not entries:
        return
    repo = AuditRepository(session)
    head = await repo.chain_head()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    ctx = context.current()
    common = {
        "occurred_at": clock.now(),
        "request_id": ctx.request_id,
        "channel": ctx.channel,
        "ip": ctx.ip or "",
        "account_id": principal.account_id if principal else None,
        "actor": (f"{principal.display_name} <{principal.email}>" if principal else "système")[:300],
        "roles": (",".join(sorted(r.value for r in principal.roles)) if principal else "")[:300],
        "organisations": (" | ".join(principal.organisation_names) if principal else "")[:1000],
        "action": action,
        "object_type": object_type,
        "break_glass": False,
    }
    shared = _shared_fields(**common)  # once for every row (a device batch audits hundreds of patients)
    rows = []
    for object_id, patient_id, details in entries:
        seq += 1
        row = {
            "seq": seq,
            "object_id": str(object_id)[:64],
            "patient_id": patient_id,
            "details": details_text(details),
            "prev_hash": prev_hash,
        }
        canonical = _canonical(shared, seq, row["object_id"], patient_id, row["details"], prev_hash)
        row["hash"] = prev_hash = hashlib.sha256(canonical).hexdigest()
        rows.append(row)
    await repo.insert_rows(rows, common)


def _chained(
    last: AuditEvent | None,
    principal: Principal | None,
    action: str,
    object_type: str,
    object_id: Any,
    patient_id: uuid.UUID | None,
    details: dict[str, Any] | None,
    break_glass: bool,
    occurred,
) -> AuditEvent:
    ctx = context.current()
    event = AuditEvent(
        seq=(last.seq + 1) if last else 1,
        occurred_at=occurred,
        request_id=ctx.request_id,
        channel=ctx.channel,
        ip=ctx.ip or "",
        account_id=principal.account_id if principal else None,
        actor=(f"{principal.display_name} <{principal.email}>" if principal else "système")[:300],
        roles=(",".join(sorted(r.value for r in principal.roles)) if principal else "")[:300],
        organisations=(" | ".join(principal.organisation_names) if principal else "")[:1000],
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:64],
        patient_id=patient_id,
        break_glass=break_glass,
        details=details_text(details),
        prev_hash=last.hash if last else GENESIS_HASH,
    )
    event.hash = compute_hash(event)
    return event


@dataclass
class ChainReport:
    ok: bool
    rows: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


async def verify_chain(session: AsyncSession) -> ChainReport:
    repo = AuditRepository(session)
    expected_seq = 1
    prev = GENESIS_HASH
    count = 0
    async for row in repo.iterate():
        if row.seq != expected_seq:
            return ChainReport(
                False, count, prev, expected_seq, f"ligne {expected_seq} manquante (supprimée ?)"
            )
        if row.prev_hash != prev:
            return ChainReport(False, count, prev, row.seq, "chaînage rompu : hash précédent différent")
        if compute_hash(row) != row.hash:
            return ChainReport(False, count, prev, row.seq, "contenu modifié : hash recalculé différent")
        prev = row.hash
        expected_seq += 1
        count += 1
    return ChainReport(True, count, prev)


async def list_patient_events(
    session: AsyncSession, patient_id: uuid.UUID, page: PageRequest
) -> Page[AuditEvent]:
    """Raw listing for a patient's access log. Callers check access to the patient first."""
    return await AuditRepository(session).list_for_patient(patient_id, page)
