"""publish_on_commit: published once the transaction commits, never when it rolls back — in a web request (the
real session dependency of the app) and in a background job (``run_in_transaction``)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from contextlib import asynccontextmanager

import pytest
from fastapi import Request

from telesante.auth.dependencies import SessionDep
from telesante.db import run_in_transaction
from telesante.events.bus import Event, InProcessBus
from telesante.events.service import (
    bind_event_bus,
    current_event_bus,
    publish_on_commit,
    unbind_event_bus,
    use_event_bus,
)
from telesante.kit.errors import Conflict
from tests.factories import make_organisation

ALICE = uuid.uuid4()


def request_event(**data) -> Event:
    return Event(type="request.updated", recipients=frozenset({ALICE}), data=data or {"request_id": "r1"})


@pytest.fixture
def probe(app):
    """A route of the test app that raises an event then succeeds, fails, or re-renders a form (rollback only).
    It notes whether anything was delivered before its transaction ended."""
    seen: dict = {}

    async def handler(request: Request, session: SessionDep, outcome: str = "ok"):
        publish_on_commit(session, request_event(outcome=outcome))
        await session.flush()
        if "subscription" in seen:
            seen["delivered_before_commit"] = seen["subscription"].pending
        if outcome == "erreur":
            raise Conflict("Conflit simulé.")
        if outcome == "formulaire":
            request.state.rollback_only = True
        return {"ok": True}

    app.add_api_route("/api/essai-evenement", handler, methods=["GET"])
    return seen


async def test_a_request_publishes_after_its_commit(app, client, probe):
    bus = app.state.event_bus
    async with bus.subscribe(ALICE) as subscription:
        probe["subscription"] = subscription
        response = await client.get("/api/essai-evenement")
        assert response.status_code == 200, response.text
        assert probe["delivered_before_commit"] == 0
        async with asyncio.timeout(5):
            received = await anext(subscription)
        assert received.type == "request.updated" and received.data == {"outcome": "ok"}


@pytest.mark.parametrize("outcome,status", [("erreur", 409), ("formulaire", 200)])
async def test_nothing_is_published_when_the_request_rolls_back(app, client, probe, outcome, status):
    bus = app.state.event_bus
    async with bus.subscribe(ALICE) as subscription:
        response = await client.get("/api/essai-evenement", params={"outcome": outcome})
        assert response.status_code == status, response.text
        # then a request that commits: the only event received is that one
        assert (await client.get("/api/essai-evenement")).status_code == 200
        async with asyncio.timeout(5):
            received = await anext(subscription)
        assert received.data == {"outcome": "ok"}
        assert subscription.pending == 0


async def test_each_application_publishes_on_its_own_bus(app, client, probe):
    other = (
        InProcessBus()
    )  # another application's bus bound to the process: not used inside this app's requests
    bind_event_bus(other)
    try:
        async with app.state.event_bus.subscribe(ALICE) as mine, other.subscribe(ALICE) as theirs:
            assert (await client.get("/api/essai-evenement")).status_code == 200
            async with asyncio.timeout(5):
                await anext(mine)
            assert theirs.pending == 0
    finally:
        unbind_event_bus(other)
    assert current_event_bus() is None


async def test_a_background_job_publishes_after_its_commit_and_not_on_failure(app, session):
    bus = InProcessBus()
    bind_event_bus(bus)  # what the app's lifespan does at start-up
    transaction = asynccontextmanager(run_in_transaction)
    try:
        async with bus.subscribe(ALICE) as subscription:
            with pytest.raises(RuntimeError, match="échec du travail"):
                async with transaction(app.state.database.sessionmaker) as job_session:
                    publish_on_commit(job_session, request_event(job="raté"))
                    raise RuntimeError("échec du travail")
            async with transaction(app.state.database.sessionmaker) as job_session:
                organisation = await make_organisation(job_session, "Clinique des évènements")
                publish_on_commit(job_session, request_event(organisation_id=str(organisation.id)))
                assert subscription.pending == 0  # not before the commit
            assert subscription.pending == 1
            received = await anext(subscription)
            assert received.data == {"organisation_id": str(organisation.id)}
    finally:
        unbind_event_bus(bus)


async def test_use_event_bus_scopes_a_bus_explicitly(session):
    bus = InProcessBus()
    assert current_event_bus() is None
    with use_event_bus(bus):
        assert current_event_bus() is bus
        async with bus.subscribe(ALICE) as subscription:
            publish_on_commit(session, request_event())
            assert subscription.pending == 0
            await session.commit()
            for callback in session.info.pop("after_commit", []):
                await callback()
            assert subscription.pending == 1
    assert current_event_bus() is None


async def test_without_any_bus_the_event_is_dropped_not_an_error(session):
    assert current_event_bus() is None
    publish_on_commit(session, request_event())
    assert "after_commit" not in session.info


class BrokenBus(InProcessBus):
    async def publish(self, event: Event) -> None:
        raise ConnectionError("Redis est tombé")


async def test_a_bus_failure_after_commit_is_logged_and_the_request_still_succeeds(
    app, client, probe, caplog
):
    app.state.event_bus = BrokenBus()
    with caplog.at_level(logging.ERROR, logger="telesante.events"):
        response = await client.get("/api/essai-evenement")
    assert response.status_code == 200, response.text
    assert any("non publié" in record.getMessage() for record in caplog.records)
