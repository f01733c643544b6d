"""The compte rendu page of a call, as a browser without JavaScript posts it: its date and time is read as Paris
wall-clock time, and bad input is named by its label with nothing signed."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from telesante.kit import clock
from telesante.requests.models import RequestReport
from telesante.video import service
from tests.patients.test_pages import alert, post_form, sign_in, text_of


async def test_the_report_date_is_paris_time_and_a_far_year_is_named(client, session, world, appointment):
    """« Date et heure de réalisation » follows the shared rule of clock.from_paris: the hour repeated on the
    last Sunday of October is its first, summer-time occurrence. A year typed wrong (0001 overflowed in UTC:
    a 500), a value that is not a date or a blank field is named by its label; nothing is signed."""
    room = await service.open_room(session, world.nurse.principal, appointment.id)
    request_id = appointment.request_id
    page = f"/video/salles/{room.id}/compte-rendu"
    await sign_in(client, world.doctor)
    report = {
        "conclusion": "Chutes liées à une hypotension orthostatique.",
        "prescriptions": "aucune",
        "participant_name_0": "Dr Tanguy",
        "participant_role_0": "médecin téléconsultant",
    }

    async def signed_reports() -> list[RequestReport]:
        query = sa.select(RequestReport).where(RequestReport.request_id == request_id)
        return list((await session.execute(query)).scalars())

    for performed_at, message in (
        ("0001-01-01T00:00", "Date et heure : date attendue entre 2000 et 2100"),
        ("2207-01-01T08:00", "Date et heure : date attendue entre 2000 et 2100"),
        ("01/12/2026 09:00", "Date et heure : date et heure attendues (AAAA-MM-JJTHH:MM)"),
        ("", "Date et heure : champ obligatoire"),
    ):
        refused = await post_form(client, page, {**report, "performed_at": performed_at})
        assert refused.status_code == 422, text_of(refused)
        assert alert(refused) == message
    assert await signed_reports() == []

    signed = await post_form(client, page, {**report, "performed_at": "2026-10-25T02:30"})
    assert signed.status_code == 303, alert(signed)
    [stored] = await signed_reports()
    assert clock.as_utc(stored.performed_at) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
