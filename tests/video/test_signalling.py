"""The signalling hub on its own (no network, no database): waiting room, admission, relay, replacement, limits,
bad messages, and what it records for the compte rendu."""

from __future__ import annotations

import pytest

from telesante.video.models import CallEventKind
from telesante.video.signalling import GUEST, HOST, PROFESSIONAL, Member, RoomFull, SignallingHub


class FakeConnection:
    def __init__(self):
        self.sent: list[dict] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, message):
        self.sent.append(message)

    async def close(self, code, reason):
        self.closed = (code, reason)

    def types(self) -> list[str]:
        return [m["type"] for m in self.sent]

    def last(self, kind: str) -> dict:
        return [m for m in self.sent if m["type"] == kind][-1]


def member(id_, role, name=None) -> Member:
    return Member(id_, name or id_, role, FakeConnection())


@pytest.fixture
def journal():
    events: list[tuple] = []

    async def record(room_id, kind, participant, name, details):
        events.append((kind, participant, details))

    record.events = events
    return record


async def test_waiting_room_and_admission(journal):
    hub = SignallingHub(4, journal)
    nurse = member("a-nurse", PROFESSIONAL)
    await hub.join("r", nurse)
    assert nurse.connection.types() == ["waiting"]
    doctor = member("a-doctor", HOST)
    await hub.join("r", doctor)
    assert doctor.connection.last("welcome")["peers"] == []
    assert doctor.connection.last("lobby")["waiting"] == [
        {"id": "a-nurse", "name": "a-nurse", "role": PROFESSIONAL}
    ]
    # waiting: nothing of the call goes through, in either direction
    await hub.handle("r", nurse, {"type": "signal", "to": "a-doctor", "data": {"description": {}}})
    assert nurse.connection.last("error")["message"].startswith("Vous n'êtes pas encore admis")
    assert "signal" not in doctor.connection.types()
    # only the host admits
    await hub.handle("r", nurse, {"type": "admit", "id": "a-nurse"})
    assert "welcome" not in nurse.connection.types()
    await hub.handle("r", doctor, {"type": "admit", "id": "a-nurse"})
    assert nurse.connection.last("welcome")["peers"] == [{"id": "a-doctor", "name": "a-doctor", "role": HOST}]
    assert doctor.connection.last("peer-joined")["peer"]["id"] == "a-nurse"
    assert doctor.connection.last("lobby")["waiting"] == []
    await hub.handle("r", nurse, {"type": "signal", "to": "a-doctor", "data": {"candidate": None}})
    assert doctor.connection.last("signal") == {
        "type": "signal",
        "from": "a-nurse",
        "data": {"candidate": None},
    }
    kinds = [k for k, *_ in journal.events]
    assert kinds == [CallEventKind.JOINED, CallEventKind.JOINED, CallEventKind.ADMITTED]


async def test_refusal_closes_the_guest(journal):
    hub = SignallingHub(4, journal)
    doctor, guest = member("a-doctor", HOST), member("g-1", GUEST)
    await hub.join("r", doctor)
    await hub.join("r", guest)
    await hub.handle("r", doctor, {"type": "refuse", "id": "g-1"})
    assert guest.connection.last("refused") and guest.connection.closed[0] == 4003
    assert doctor.connection.last("lobby")["waiting"] == []
    assert (CallEventKind.REFUSED, "g-1", {"by": "a-doctor"}) in journal.events


async def test_second_tab_replaces_the_first_and_admission_is_remembered(journal):
    hub = SignallingHub(4, journal)
    doctor, nurse = member("a-doctor", HOST), member("a-nurse", PROFESSIONAL)
    await hub.join("r", doctor)
    await hub.join("r", nurse)
    await hub.handle("r", doctor, {"type": "admit", "id": "a-nurse"})
    second_tab = member("a-nurse", PROFESSIONAL)
    await hub.join("r", second_tab)
    assert nurse.connection.last("replaced") and nurse.connection.closed[0] == 4001
    assert second_tab.connection.types()[0] == "welcome"  # no new admission
    assert doctor.connection.last("peer-joined")["rejoined"] is True
    await hub.leave("r", nurse, dropped=True)  # the old tab's socket ends: nobody is told anything
    assert "peer-left" not in doctor.connection.types()
    assert hub.rooms["r"].members["a-nurse"] is second_tab
    # a real drop, then the same participant comes back
    await hub.leave("r", second_tab, dropped=True)
    assert doctor.connection.last("peer-left") == {"type": "peer-left", "id": "a-nurse", "dropped": True}
    back = member("a-nurse", PROFESSIONAL)
    await hub.join("r", back)
    assert back.connection.types()[0] == "welcome"
    kinds = [k for k, who, _ in journal.events if who == "a-nurse"]
    assert kinds[-3:] == [CallEventKind.REPLACED, CallEventKind.DROPPED, CallEventKind.RECONNECTED]


async def test_room_limit(journal):
    hub = SignallingHub(2, journal)
    doctor, nurse, guest = member("a-doctor", HOST), member("a-nurse", PROFESSIONAL), member("g-1", GUEST)
    await hub.join("r", doctor)
    await hub.join("r", nurse)
    await hub.handle("r", doctor, {"type": "admit", "id": "a-nurse"})
    await hub.join("r", guest)  # waiting is allowed
    await hub.handle("r", doctor, {"type": "admit", "id": "g-1"})
    assert doctor.connection.last("error")["code"] == "room-full"
    assert "welcome" not in guest.connection.types()
    other_doctor_tab_elsewhere = member("a-other-host", HOST)
    with pytest.raises(RoomFull):
        await hub.join("r", other_doctor_tab_elsewhere)
    assert (CallEventKind.ROOM_FULL, "a-other-host", {"admitted": 2}) in journal.events
    assert set(hub.rooms["r"].members) == {"a-doctor", "a-nurse", "g-1"}  # nobody else disturbed


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("pas un objet", "Message illisible"),
        ({"kind": "signal"}, "Message illisible"),
        ({"type": "teleport"}, "Type de message inconnu"),
        ({"type": "signal", "to": "a-absent", "data": {}}, "Destinataire absent"),
        ({"type": "chat", "text": "x" * 2001}, "trop long"),
        ({"type": "chat", "text": "   "}, "vide"),
        ({"type": "state"}, "État inconnu"),
        ({"type": "admit", "id": "a-nobody"}, "n'attend plus"),
    ],
)
async def test_bad_messages_get_a_reason(journal, message, expected):
    hub = SignallingHub(4, journal)
    doctor = member("a-doctor", HOST)
    await hub.join("r", doctor)
    await hub.handle("r", doctor, message)
    assert expected in doctor.connection.last("error")["message"]
    assert hub.rooms["r"].members["a-doctor"] is doctor  # still in the call


async def test_chat_states_and_incidents_reach_the_journal(journal):
    hub = SignallingHub(4, journal)
    doctor, nurse = member("a-doctor", HOST), member("a-nurse", PROFESSIONAL)
    await hub.join("r", doctor)
    await hub.join("r", nurse)
    await hub.handle("r", doctor, {"type": "admit", "id": "a-nurse"})
    await hub.handle("r", nurse, {"type": "chat", "text": " Tension 13/8 "})
    assert doctor.connection.last("chat")["text"] == "Tension 13/8"
    assert nurse.connection.last("chat")["name"] == "a-nurse"
    await hub.handle("r", nurse, {"type": "state", "audio_only": True, "muted": True})
    assert doctor.connection.last("peer-state") == {
        "type": "peer-state",
        "id": "a-nurse",
        "audio_only": True,
        "muted": True,
    }
    await hub.handle("r", nurse, {"type": "incident", "kind": "ice_restart", "peer": "a-doctor"})
    await hub.handle("r", doctor, {"type": "ping"})
    assert doctor.connection.last("pong")
    assert (None, "a-nurse", {"chat": "Tension 13/8"}) in journal.events
    assert (CallEventKind.AUDIO_ONLY, "a-nurse", {"on": True}) in journal.events
    assert (CallEventKind.ICE_RESTART, "a-nurse", {"peer": "a-doctor"}) in journal.events
    # the page switched by itself on a weak network: the journal says so (for the report's incidents)
    await hub.handle("r", doctor, {"type": "state", "audio_only": True, "weak_network": True})
    assert (CallEventKind.AUDIO_ONLY, "a-doctor", {"on": True, "weak_network": True}) in journal.events
    assert nurse.connection.last("peer-state") == {"type": "peer-state", "id": "a-doctor", "audio_only": True}


async def test_a_failing_journal_never_breaks_the_call():
    async def broken(*_args):
        raise RuntimeError("database down")

    hub = SignallingHub(4, broken)
    doctor = member("a-doctor", HOST)
    await hub.join("r", doctor)
    assert doctor.connection.types()[:1] == ["welcome"]


async def test_peers_learn_of_a_newcomer_before_its_offers(journal):
    """The newcomer offers as soon as it is welcomed: the others must already know it (else they drop the offer)."""
    order: list[tuple[str, str]] = []

    class Recording(FakeConnection):
        def __init__(self, name):
            super().__init__()
            self.name = name

        async def send(self, message):
            order.append((self.name, message["type"]))
            await super().send(message)

    hub = SignallingHub(4, journal)
    doctor = Member("a-doctor", "Dr", HOST, Recording("doctor"))
    guest = Member("g-1", "Fille", GUEST, Recording("guest"))
    await hub.join("r", doctor)
    await hub.join("r", guest)
    order.clear()
    await hub.handle("r", doctor, {"type": "admit", "id": "g-1"})
    assert order.index(("doctor", "peer-joined")) < order.index(("guest", "welcome"))


async def test_a_reopened_room_remembers_admissions_and_drops_from_its_history(journal):
    """Everyone left at once (or the call moved to another instance): the hub that opens the room again reads who
    was admitted from the journal, so the nurse comes back without waiting and her return is a reconnection."""
    asked: list[str] = []

    async def history(room_id):
        asked.append(room_id)
        return {"a-doctor", "a-nurse"}, {"a-nurse"}

    hub = SignallingHub(4, journal, history)
    nurse = member("a-nurse", PROFESSIONAL)
    await hub.join("r", nurse)
    assert nurse.connection.types()[0] == "welcome"
    assert journal.events[-1][:2] == (CallEventKind.RECONNECTED, "a-nurse")
    guest = member("g-1", GUEST)  # never admitted: waits as before
    await hub.join("r", guest)
    assert guest.connection.types() == ["waiting"]
    assert asked == ["r"]  # read once, when the room opened in this hub


async def test_a_history_that_fails_only_costs_a_new_admission(journal):
    async def broken(room_id):
        raise OSError("database down")

    hub = SignallingHub(4, journal, broken)
    nurse = member("a-nurse", PROFESSIONAL)
    await hub.join("r", nurse)
    assert nurse.connection.types() == ["waiting"]
