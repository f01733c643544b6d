"""The signalling of video calls: who is in which room, the waiting room, and the relay of WebRTC offers, answers
and ICE candidates between participants (media never passes through the platform: browsers connect to each other,
through TURN when a network demands it).

One ``SignallingHub`` per application instance holds the rooms of the calls whose participants are connected to
it. It knows nothing of HTTP or the database: a ``Connection`` sends a JSON-able dict and closes, and the
``journal`` callback records what the compte rendu needs (joins, drops, reconnections, audio-only, …).

Rules:
- a participant is identified by who they are (``a-<account id>``, ``g-<guest link id>``), not by their tab: a
  second tab (or a reload) **replaces** the first connection, which is told why and closed;
- the host (the appointment's doctor) enters directly; everyone else waits until the host admits them; an
  admission is remembered for the room, so a participant who drops or reloads comes back without waiting. The
  ``history`` callback reads past admissions and drops from the journal when a room is (re)opened in this hub —
  after everyone left at once, or on a new instance after the call's owner stopped — so nobody waits twice;
- at most ``max_participants`` are admitted and connected at once (mesh: each pair has its own connection);
- messages are relayed only between admitted participants; a waiting participant receives nothing of the call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from telesante.kit import clock
from telesante.video.models import CallEventKind

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024  # an SDP with several tracks is ~10 KiB
MAX_CHAT_CHARACTERS = 2000
HOST, PROFESSIONAL, GUEST = "host", "professional", "guest"


class Connection(Protocol):
    async def send(self, message: dict[str, Any]) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


Journal = Callable[..., Awaitable[None]]
# room id -> (ids admitted before, ids whose last connection dropped)
History = Callable[[str], Awaitable[tuple[set[str], set[str]]]]


@dataclass
class Member:
    id: str
    name: str
    role: str  # HOST, PROFESSIONAL or GUEST
    connection: Connection
    admitted: bool = False
    dropped_before: bool = False

    def public(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "role": self.role}


@dataclass
class Room:
    id: str
    members: dict[str, Member] = field(default_factory=dict)
    admitted_ids: set[str] = field(default_factory=set)
    dropped_ids: set[str] = field(default_factory=set)

    def admitted(self) -> list[Member]:
        return [m for m in self.members.values() if m.admitted]

    def waiting(self) -> list[Member]:
        return [m for m in self.members.values() if not m.admitted]


class RoomFull(Exception):
    pass


class SignallingHub:
    def __init__(
        self, max_participants: int = 4, journal: Journal | None = None, history: History | None = None
    ):
        self.max_participants = max_participants
        self.journal = journal
        self.history = history
        self.rooms: dict[str, Room] = {}
        self._lock = asyncio.Lock()

    def connection_count(self) -> int:
        return sum(len(room.members) for room in self.rooms.values())

    async def _record(self, room: Room, kind: CallEventKind, member: Member, **details: Any) -> None:
        if self.journal is None:
            return
        try:
            await self.journal(room.id, kind, member.id, member.name, details)
        except Exception:  # noqa: BLE001 - the journal must never break a call in progress
            log.exception("call journal failed: %s %s", room.id, kind)

    @staticmethod
    async def _send(member: Member, message: dict[str, Any]) -> None:
        try:
            await member.connection.send(message)
        except Exception:  # noqa: BLE001 - a connection going away is handled by its own leave()
            log.debug("send to %s failed", member.id)

    async def join(self, room_id: str, member: Member) -> None:
        """Connect a participant: replaces their previous connection, admits the host and those already admitted,
        puts the others in the waiting room. ``RoomFull`` when admitting would exceed the limit."""
        past = await self._past(room_id) if room_id not in self.rooms else None
        async with self._lock:
            room = self.rooms.get(room_id)
            if room is None:
                room = self.rooms[room_id] = Room(room_id)
                if past is not None:
                    room.admitted_ids, room.dropped_ids = past
            previous = room.members.get(member.id)
            if member.role == HOST or member.id in room.admitted_ids:
                others = [m for m in room.admitted() if m.id != member.id]
                if len(others) >= self.max_participants:
                    await self._record(room, CallEventKind.ROOM_FULL, member, admitted=len(others))
                    if not room.members:
                        self.rooms.pop(room_id, None)
                    raise RoomFull()
                member.admitted = True
                room.admitted_ids.add(member.id)
            room.members[member.id] = member
        if previous is not None:
            await self._send(
                previous,
                {
                    "type": "replaced",
                    "message": "Vous avez rejoint cet appel depuis une autre page : celle-ci est fermée.",
                },
            )
            await previous.connection.close(4001, "replaced")
            await self._record(room, CallEventKind.REPLACED, member)
        elif member.id in room.dropped_ids:
            room.dropped_ids.discard(member.id)
            await self._record(room, CallEventKind.RECONNECTED, member)
        else:
            await self._record(room, CallEventKind.JOINED, member, role=member.role)
        if member.admitted:
            await self._welcome(room, member, replaced=previous is not None)
        else:
            await self._send(
                member,
                {
                    "type": "waiting",
                    "message": "Le médecin va vous admettre dans la téléconsultation. Patientez…",
                },
            )
        await self._lobby(room)

    async def _past(self, room_id: str) -> tuple[set[str], set[str]] | None:
        if self.history is None:
            return None
        try:
            admitted, dropped = await self.history(room_id)
        except Exception:  # noqa: BLE001 - without its history the call still works: admissions are asked again
            log.exception("call history unavailable: %s", room_id)
            return None
        return set(admitted), set(dropped)

    async def _welcome(self, room: Room, member: Member, *, replaced: bool = False) -> None:
        """Those already in the call first learn of the newcomer, then the newcomer gets the list and sends its
        offers: an offer never reaches a participant before it knows who sends it."""
        peers = [m.public() for m in room.admitted() if m.id != member.id]
        for other in room.admitted():
            if other.id != member.id:
                await self._send(
                    other, {"type": "peer-joined", "peer": member.public(), "rejoined": replaced}
                )
        await self._send(member, {"type": "welcome", "you": member.public(), "peers": peers})

    async def _lobby(self, room: Room) -> None:
        """Tell the host who is waiting."""
        waiting = [m.public() for m in room.waiting()]
        for host in room.admitted():
            if host.role == HOST:
                await self._send(host, {"type": "lobby", "waiting": waiting})

    async def leave(self, room_id: str, member: Member, *, dropped: bool) -> None:
        """A connection ended (``dropped``: without saying goodbye). A connection already replaced by a newer one
        of the same participant leaves silently."""
        async with self._lock:
            room = self.rooms.get(room_id)
            if room is None or room.members.get(member.id) is not member:
                return
            del room.members[member.id]
            if dropped:
                room.dropped_ids.add(member.id)
            if not room.members:
                self.rooms.pop(room_id, None)
        await self._record(room, CallEventKind.DROPPED if dropped else CallEventKind.LEFT, member)
        if member.admitted:
            for other in room.admitted():
                await self._send(other, {"type": "peer-left", "id": member.id, "dropped": dropped})
        await self._lobby(room)

    async def handle(self, room_id: str, member: Member, message: Any) -> None:
        """One message from a connected participant. Bad messages get an error message, never an exception."""
        room = self.rooms.get(room_id)
        if room is None or room.members.get(member.id) is not member:
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._send(member, _error("Message illisible : objet JSON avec un champ « type » attendu."))
            return
        kind = message["type"]
        if kind == "ping":
            await self._send(member, {"type": "pong"})
            return
        if not member.admitted:
            await self._send(member, _error("Vous n'êtes pas encore admis dans la téléconsultation."))
            return
        if kind == "signal":
            target = room.members.get(message.get("to")) if isinstance(message.get("to"), str) else None
            if target is None or not target.admitted or not isinstance(message.get("data"), dict):
                await self._send(member, _error("Destinataire absent de l'appel.", code="peer-gone"))
                return
            await self._send(target, {"type": "signal", "from": member.id, "data": message["data"]})
        elif kind == "chat":
            text = message.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_CHAT_CHARACTERS:
                await self._send(
                    member, _error(f"Message vide ou trop long (au plus {MAX_CHAT_CHARACTERS} caractères).")
                )
                return
            await self.broadcast_chat(room_id, member.id, member.name, text.strip())
        elif kind in ("admit", "refuse"):
            await self._admission(room, member, message.get("id"), admit=kind == "admit")
        elif kind == "state":
            await self._state(room, member, message)
        elif kind == "incident" and message.get("kind") == "ice_restart":
            await self._record(
                room, CallEventKind.ICE_RESTART, member, peer=str(message.get("peer", ""))[:80]
            )
        else:
            await self._send(member, _error(f"Type de message inconnu : {kind[:40]}."))

    async def broadcast_chat(
        self, room_id: str, member_id: str, name: str, text: str, attachment: dict[str, Any] | None = None
    ) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            return
        if self.journal is not None and attachment is None:
            try:
                await self.journal(room.id, None, member_id, name, {"chat": text})
            except Exception:  # noqa: BLE001
                log.exception("chat journal failed: %s", room.id)
        payload = {
            "type": "chat",
            "from": member_id,
            "name": name,
            "text": text,
            "at": clock.now().isoformat(),
        }
        if attachment is not None:
            payload["attachment"] = attachment
        for other in room.admitted():
            await self._send(other, payload)

    async def end_room(self, room_id: str, message: str) -> None:
        """The call is over (its report is signed): everyone is told and disconnected."""
        async with self._lock:
            room = self.rooms.pop(room_id, None)
        if room is None:
            return
        for member in list(room.members.values()):
            await self._send(member, {"type": "ended", "message": message})
            await member.connection.close(4000, "ended")

    async def _admission(self, room: Room, member: Member, guest_id: Any, *, admit: bool) -> None:
        if member.role != HOST:
            await self._send(member, _error("Seul le médecin qui consulte admet les participants."))
            return
        guest = room.members.get(guest_id) if isinstance(guest_id, str) else None
        if guest is None or guest.admitted:
            await self._send(member, _error("Cette personne n'attend plus.", code="not-waiting"))
            return
        if not admit:
            await self._record(room, CallEventKind.REFUSED, guest, by=member.name)
            await self._send(
                guest, {"type": "refused", "message": "Le médecin n'a pas admis votre participation."}
            )
            await guest.connection.close(4003, "refused")
            await self.leave(room.id, guest, dropped=False)
            return
        async with self._lock:
            if len(room.admitted()) >= self.max_participants:
                full = True
            else:
                full = False
                guest.admitted = True
                room.admitted_ids.add(guest.id)
        if full:
            await self._send(
                member, _error(f"L'appel réunit déjà {self.max_participants} participants.", code="room-full")
            )
            return
        await self._record(room, CallEventKind.ADMITTED, guest, by=member.name)
        await self._welcome(room, guest)
        await self._lobby(room)

    async def _state(self, room: Room, member: Member, message: dict[str, Any]) -> None:
        changes = {}
        for key, kind in (("audio_only", CallEventKind.AUDIO_ONLY), ("screen", CallEventKind.SCREEN_SHARE)):
            if isinstance(message.get(key), bool):
                changes[key] = message[key]
                details = {"on": message[key]}
                if key == "audio_only" and message[key] and message.get("weak_network") is True:
                    details["weak_network"] = True  # switched by the page, not by the person
                await self._record(room, kind, member, **details)
        for key in ("muted", "camera_off"):
            if isinstance(message.get(key), bool):
                changes[key] = message[key]
        if not changes:
            await self._send(member, _error("État inconnu."))
            return
        for other in room.admitted():
            if other.id != member.id:
                await self._send(other, {"type": "peer-state", "id": member.id, **changes})


def _error(message: str, code: str = "invalid") -> dict[str, str]:
    return {"type": "error", "code": code, "message": message}
