"""Time-ordered UUIDs (RFC 9562, version 7): the layout the standard gives, the machine's time in milliseconds in the
first 48 bits, random bits after it, and keys made later sorting after (as text too, which is how SQLite stores
them)."""

from __future__ import annotations

import time
import uuid

from telesante.kit.models import uuid7


def _unix_ms(value: uuid.UUID) -> int:
    return value.int >> 80


def test_the_layout_is_that_of_rfc_9562():
    before = time.time_ns() // 1_000_000
    values = [uuid7() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    for value in values:
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        assert before <= _unix_ms(value) <= after
        assert uuid.UUID(str(value)) == value and uuid.UUID(hex=value.hex) == value
    assert len(set(values)) == len(values)
    # the 74 bits after the time are random: across 2,000 keys each of them takes both values
    random_part = [(v.int >> 64 & 0xFFF) << 62 | (v.int & (1 << 62) - 1) for v in values]
    for bit in range(74):
        seen = {value >> bit & 1 for value in random_part}
        assert seen == {0, 1}, f"bit {bit} never changes"


def test_keys_made_in_a_later_millisecond_sort_after_as_numbers_and_as_stored_text():
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    assert _unix_ms(second) > _unix_ms(first)
    assert second.int > first.int and second.hex > first.hex and str(second) > str(first)
