"""Bulk work (a device gateway's batch) gives way to interactive requests at its pauses, within bounds."""

from __future__ import annotations

import asyncio

import pytest

from telesante.fhir import monitoring as fhir_monitoring
from telesante.kit import cooperative


@pytest.fixture(autouse=True)
def _clean_state():
    yield
    cooperative._interactive.clear()  # a failed test may leave its requests behind: not the next test's problem
    cooperative._waiters.clear()


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def _batch(log: list[str], items: int = 4, *, kind: str = "bulk", holding: bool = False):
    async def run() -> None:
        with cooperative.request():
            if kind == "bulk":
                cooperative.bulk()
            for index in range(items):
                if holding:
                    with cooperative.no_waiting():
                        await cooperative.pause(index, every=2)
                else:
                    await cooperative.pause(index, every=2)
                log.append(f"item {index}")

    return run()


def _interactive(log: list[str], release: asyncio.Event, *, background: bool = False):
    async def run() -> None:
        with cooperative.request():
            if background:
                cooperative.background()
            log.append("interactive starts")
            await release.wait()
            log.append("interactive ends")

    return run()


async def test_bulk_work_waits_at_its_pause_until_the_interactive_request_ends():
    log: list[str] = []
    release = asyncio.Event()
    interactive = asyncio.create_task(_interactive(log, release))
    await _settle()
    batch = asyncio.create_task(_batch(log))
    await _settle()
    assert log == ["interactive starts", "item 0"]  # stopped at its first pause (after item 0)
    release.set()
    await asyncio.gather(interactive, batch)
    assert log == ["interactive starts", "item 0", "interactive ends", "item 1", "item 2", "item 3"]
    assert not cooperative._interactive and not cooperative._waiters


@pytest.mark.parametrize("case", ["interactive", "background", "holding", "old"])
async def test_what_never_waits(case, monkeypatch):
    """An interactive request does not wait for another; nothing waits for an event stream; bulk work holding
    what others need does not wait; an interactive request older than the priority window holds nothing back."""
    monkeypatch.setattr(cooperative, "MAX_WAIT_SECONDS", 3600.0)  # a wait would not end: wait_for below fails
    monkeypatch.setattr(cooperative, "PRIORITY_SECONDS", 0.0 if case == "old" else 3600.0)
    log: list[str] = []
    release = asyncio.Event()
    other = asyncio.create_task(_interactive(log, release, background=case == "background"))
    await _settle()
    await asyncio.wait_for(
        _batch(log, kind="interactive" if case == "interactive" else "bulk", holding=case == "holding"), 2
    )
    assert log == ["interactive starts", "item 0", "item 1", "item 2", "item 3"]
    release.set()
    await other


async def test_bulk_work_is_never_starved(monkeypatch):
    """An interactive request that lasts (within the priority window) delays each pause by at most
    MAX_WAIT_SECONDS: the batch still finishes while it is in progress."""
    monkeypatch.setattr(cooperative, "PRIORITY_SECONDS", 3600.0)
    monkeypatch.setattr(cooperative, "MAX_WAIT_SECONDS", 0.01)
    log: list[str] = []
    release = asyncio.Event()
    other = asyncio.create_task(_interactive(log, release))
    await _settle()
    await asyncio.wait_for(_batch(log, items=6), 5)
    assert log[-1] == "item 5" and "interactive ends" not in log
    release.set()
    await other


async def test_a_gateway_batch_declares_itself_bulk_and_a_single_reading_stays_interactive():
    def bundle(count: int) -> dict:
        entry = {
            "request": {"method": "POST", "url": "Observation"},
            "resource": {"resourceType": "Observation"},
        }
        return {"resourceType": "Bundle", "type": "batch", "entry": [entry] * count}

    kinds = []
    for count in (1, cooperative.BULK_ENTRIES, cooperative.BULK_ENTRIES + 1):
        with cooperative.request():
            await fhir_monitoring.prepare_batch(bundle(count))
            kinds.append(cooperative._current.get().kind)
    assert kinds == ["interactive", "interactive", "bulk"]
    assert not cooperative._interactive


async def test_the_event_stream_is_background_work():
    """Open for minutes: if it counted as interactive, every gateway batch of the instance would wait at each pause."""
    from telesante.events import api as events_api

    with cooperative.request():
        response = await events_api.event_stream(
            None, None, None
        )  # no principal: 401, after declaring itself
        assert response.status_code == 401
        assert cooperative._current.get().kind == "background"
        assert not cooperative._interactive
