"""Declarative base with a stable naming convention, UUID keys and UTC timestamps."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from telesante.kit import clock

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class JSONText(str):
    """A JSON value already serialized (a DICOM header turned into DICOM JSON by the parsing helper process): a JSON
    column stores it as it is (``serialize_json``), not parsed and serialized again in the server."""

    __slots__ = ()


def serialize_json(value: object) -> str:
    """The engines' JSON serializer: ``json.dumps``, except for a ``JSONText``, which is JSON already."""
    if type(value) is JSONText:
        return str.__str__(value)
    return json.dumps(value)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every engine (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use telesante.kit.clock.now()")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return clock.as_utc(value)

    def result_processor(self, dialect, coltype):
        if dialect.driver == "asyncpg":
            # asyncpg gives a timestamptz back in UTC already (datetime.timezone.utc, whatever the session's time
            # zone): one call per value instead of four (a device batch reads thousands of reading times back)
            return _aware_utc
        return super().result_processor(dialect, coltype)


def _aware_utc(value):
    return value if value is None or value.tzinfo is not None else value.replace(tzinfo=UTC)


_new_object = object.__new__
_set_attribute = object.__setattr__
_UNKNOWN_SAFETY = (
    uuid.SafeUUID.unknown
)  # an enum member read once: reading it per value costs as much as the rest


def uuid_from_text(value):
    """A stored UUID text (32 hex digits on SQLite) as uuid.UUID, without uuid.UUID's pure-Python parsing."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    digits = value.replace("-", "")
    if len(digits) != 32:
        return uuid.UUID(value)  # raises with the standard message
    return _uuid_from_int(int(digits, 16))


def _uuid_from_int(value: int) -> uuid.UUID:
    """``uuid.UUID(int=value)`` without its pure-Python checks (``value`` is known to fit in 128 bits)."""
    result = _new_object(uuid.UUID)
    _set_attribute(result, "int", value)
    _set_attribute(result, "is_safe", _UNKNOWN_SAFETY)
    return result


class Uuid(sa.Uuid):
    """``sa.Uuid`` read back ten times faster on SQLite, where UUIDs are text: ``uuid.UUID(hex)`` costs about 8 µs
    in pure Python, and a batch of telemonitoring readings spent a quarter of its time there. Same storage, same
    DDL; PostgreSQL's driver already returns UUID objects."""

    cache_ok = True

    def result_processor(self, dialect, coltype):
        processor = super().result_processor(dialect, coltype)
        if processor is None or dialect.name != "sqlite" or not self.as_uuid:
            return processor
        return uuid_from_text


def ci_string(length: int) -> sa.types.TypeEngine:
    """A string compared byte-wise (C collation on PostgreSQL) so prefix ranges use the index."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid()}


def uuid7() -> uuid.UUID:
    """A version 7 UUID (RFC 9562, section 5.7; ``uuid.uuid7`` from Python 3.14): the Unix time in milliseconds in the
    first 48 bits, then the version, 12 random bits, the variant and 62 random bits (74 random bits, as unguessable
    as a random UUID within a millisecond). Keys made one after another sort together, so an index on them grows at
    its end instead of on a random page of the whole table: for an append-heavy table (the telemonitoring readings),
    one random page fewer written per row (docs/performance.md). The time in the key is the machine's clock when the
    row was created; it is not a domain time (``clock.now``) and is never read back as one."""
    unix_ms = time.time_ns() // 1_000_000
    random_bits = int.from_bytes(os.urandom(10), "big")
    return _uuid_from_int(  # one per reading of a device batch: uuid.UUID(int=…) checks in pure Python
        (unix_ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | (random_bits >> 68) << 64
        | 0b10 << 62
        | random_bits & 0x3FFF_FFFF_FFFF_FFFF
    )


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=clock.now, onupdate=clock.now, nullable=False
    )


def str_enum(enum_cls: type, length: int) -> sa.Enum:
    """Store an enum's *values* (``'act'``, not ``'ACT'``) in a VARCHAR on every engine."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )
