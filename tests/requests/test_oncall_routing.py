"""A request routed to whoever is on call in a regional network rota: the neurologist on duty in another hospital
is paged, sees the request, accepts it (which acknowledges the page); unanswered, the page escalates."""

from __future__ import annotations

from datetime import timedelta

import pytest

from telesante.directory.models import OrganisationType, Role
from telesante.kit import clock
from telesante.kit.errors import NotFound
from telesante.offers import service as offer_service
from telesante.offers.models import ActType, Routing
from telesante.offers.schemas import OfferCreate
from telesante.oncall import service as oncall
from telesante.oncall.schemas import RotaCreate, ShiftCreate
from telesante.requests import service
from telesante.requests.schemas import RequestCreate, RequestSend
from tests.factories import make_actor, make_organisation, make_patient
from tests.requests.conftest import give_consent


@pytest.fixture
async def network(session):
    """A CHU runs a stroke rota shared with a second hospital; a general hospital asks."""
    asking = await make_organisation(session, "CH de Fougères")
    chu = await make_organisation(session, "CHU de Rennes", type=OrganisationType.CHU)
    partner = await make_organisation(session, "CH de Saint-Malo")
    admin = await make_actor(session, chu, Role.ORG_ADMIN)
    head = await make_actor(session, chu, Role.EXPERT)
    on_duty = await make_actor(session, partner, Role.EXPERT)  # a neurologist of the partner hospital
    backup = await make_actor(session, chu, Role.EXPERT)
    requester = await make_actor(session, asking, Role.REQUESTER)
    rota = await oncall.create_rota(
        session,
        admin.principal,
        RotaCreate(
            name="Astreinte neurovasculaire régionale",
            scope="network",
            organisation_id=chu.id,
            network_organisation_ids=[partner.id],
            head_professional_id=head.professional.id,
            ack_minutes=5,
        ),
    )
    now = clock.now().replace(second=0, microsecond=0)
    for who, role in ((on_duty, "primary"), (backup, "backup")):
        await oncall.add_shift(
            session,
            admin.principal,
            rota.id,
            ShiftCreate(
                professional_id=who.professional.id,
                role=role,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=12),
            ),
        )
    offer = await offer_service.create_offer(
        session,
        admin.principal,
        OfferCreate(
            organisation_id=chu.id,
            title="Avis neurovasculaire (thrombolyse)",
            act_type=ActType.TELEEXPERTISE,
            form_code="question_generique",
            routing=Routing.ON_CALL,
            rota_id=rota.id,
            response_minutes=15,
            urgent=True,
        ),
    )
    patient = await make_patient(session, requester, birth_family_name="Le Goff")
    await give_consent(session, requester, patient.id)
    draft = await service.create_request(
        session,
        requester.principal,
        RequestCreate(
            offer_id=offer.id,
            patient_id=patient.id,
            answers={"question": "Thrombolyse ?", "context": "Aphasie brutale depuis 40 min, NIHSS 8"},
        ),
    )
    return {
        "requester": requester,
        "on_duty": on_duty,
        "backup": backup,
        "head": head,
        "draft": draft,
        "offer": offer,
    }


async def test_the_person_on_duty_elsewhere_is_paged_and_accepts(session, settings, network):
    requester, on_duty = network["requester"], network["on_duty"]
    with pytest.raises(NotFound):  # not yet: nothing was sent
        await service.get_request(session, on_duty.principal, network["draft"].id)
    sent = await service.send_request(
        session, requester.principal, settings, network["draft"].id, RequestSend()
    )
    [page] = await oncall.list_pages(session, "tele_request", sent.id)
    assert page.professional_id == on_duty.professional.id and page.status == "pending"

    seen = await service.get_request(session, on_duty.principal, sent.id)  # paged: they may open it
    assert seen["request"].status == "sent"
    accepted = await service.accept_request(session, on_duty.principal, sent.id)
    assert accepted.assigned_professional_id == on_duty.professional.id
    [page] = await oncall.list_pages(session, "tele_request", sent.id)
    assert page.acknowledged_at is not None
    # An expert of the CHU sees its requests (and who took this one).
    seen = await service.get_request(session, network["backup"].principal, sent.id)
    assert seen["request"].assigned_name == on_duty.principal.display_name


async def test_an_unanswered_page_escalates_to_the_backup(session, settings, engine, network):
    sent = await service.send_request(
        session, network["requester"].principal, settings, network["draft"].id, RequestSend()
    )
    [page] = await oncall.list_pages(session, "tele_request", sent.id)
    later = clock.as_utc(page.escalate_at) + timedelta(seconds=1)
    clock.set_clock(lambda: later)
    await oncall.escalate_page(session, {"page_id": str(page.id), "target": page.target})
    pages = await oncall.list_pages(session, "tele_request", sent.id)
    assert network["backup"].professional.id in {p.professional_id for p in pages}
