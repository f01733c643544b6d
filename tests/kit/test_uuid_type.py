"""The UUID column type reads SQLite's text back into real uuid.UUID objects (equal, hashable, printable) without
uuid.UUID's slow parsing; what is not a UUID is refused as uuid.UUID would refuse it."""

from __future__ import annotations

import pickle
import uuid

import pytest
import sqlalchemy as sa

from telesante.directory.models import Organisation
from telesante.kit.models import uuid_from_text
from tests.factories import make_organisation


def test_text_becomes_the_same_uuid():
    for _ in range(100):
        original = uuid.uuid4()
        for text in (original.hex, str(original), original.hex.upper()):
            read = uuid_from_text(text)
            assert read == original and hash(read) == hash(original)
            assert str(read) == str(original) and repr(read) == repr(original) and read.version == 4
            assert pickle.loads(pickle.dumps(read)) == original  # noqa: S301 - our own bytes
            assert {read: 1}[original] == 1
    assert uuid_from_text(None) is None
    with pytest.raises(ValueError):
        uuid_from_text("pas-un-uuid")
    with pytest.raises(ValueError):
        uuid_from_text("z" * 32)


async def test_uuid_columns_round_trip_on_both_engines(session):
    organisation = await make_organisation(session, "CH de Saint-Brieuc")
    wanted = organisation.id
    session.expunge_all()
    rows = await session.execute(
        sa.select(Organisation.id, Organisation.name).where(Organisation.id == wanted)
    )
    [(found, name)] = rows.all()
    assert isinstance(found, uuid.UUID)
    assert found == wanted and str(found) == str(wanted) and name == "CH de Saint-Brieuc"
