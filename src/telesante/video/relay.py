"""Video calls across several instances (``TELESANTE_REDIS_URL`` set): each call is served by one instance.

The first instance a participant of a call connects to becomes the call's **owner** (a Redis key with a short
lifetime, refreshed while the call has participants there). Its ``SignallingHub`` holds the whole call: waiting
room, admissions, relay of offers and answers, journal. A participant whose WebSocket reaches another instance is
**proxied**: that instance forwards what the browser sends to the owner, and the owner's messages back to the
browser, through Redis pub/sub (one channel per instance, in order). The hub's rules therefore stay those of one
process, whatever the load balancer does.

Each instance also keeps an "alive" key. If an owner stops (or dies: its keys expire), the instances proxying to it
close their participants' sockets; the browsers reconnect by themselves and the call gets a new owner, whose hub
reads the call's journal: those admitted before come back without waiting again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

import redis.asyncio as redis_asyncio
from redis.exceptions import RedisError

from telesante.video.signalling import Connection, Member, RoomFull, SignallingHub

log = logging.getLogger(__name__)

# Set the owner if the key still names the dead one (atomic take-over).
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
# Forget the ownership if it is still ours (an instance that stops).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class RemoteConnection:
    """On the owner: a participant whose socket is on another instance."""

    def __init__(self, relay: VideoRelay, instance: str, conn: str):
        self.relay, self.instance, self.conn = relay, instance, conn

    async def send(self, message: dict[str, Any]) -> None:
        await self.relay.publish(self.instance, {"op": "deliver", "conn": self.conn, "message": message})

    async def close(self, code: int, reason: str) -> None:
        await self.relay.publish(
            self.instance, {"op": "close", "conn": self.conn, "code": code, "reason": reason}
        )


class VideoRelay:
    def __init__(
        self,
        url: str,
        hub: SignallingHub,
        *,
        prefix: str = "telesante",
        instance_id: str | None = None,
        ttl_seconds: int = 30,
        heartbeat_seconds: float = 10.0,
    ):
        self.hub = hub
        self.prefix = prefix
        self.instance_id = instance_id or uuid.uuid4().hex
        self.ttl = ttl_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._client = redis_asyncio.Redis.from_url(url, decode_responses=True)
        self._pubsub: redis_asyncio.client.PubSub | None = None
        self._tasks: list[asyncio.Task] = []
        self.proxies: dict[str, tuple[str, Connection]] = {}  # conn -> (owner instance, local socket)
        self.remote_members: dict[str, tuple[str, Member]] = {}  # conn -> (room, member), on the owner

    # --- keys ---------------------------------------------------------------------------------------------------

    def _channel(self, instance: str) -> str:
        return f"{self.prefix}:video:instance:{instance}"

    def _owner_key(self, room: str) -> str:
        return f"{self.prefix}:video:owner:{room}"

    def _alive_key(self, instance: str) -> str:
        return f"{self.prefix}:video:alive:{instance}"

    # --- life -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._client.set(self._alive_key(self.instance_id), "1", ex=self.ttl)
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel(self.instance_id))
        self._pubsub = pubsub
        self._tasks = [
            asyncio.create_task(self._listen(pubsub), name="video-relay-listen"),
            asyncio.create_task(self._heartbeat(), name="video-relay-heartbeat"),
        ]

    async def stop(self) -> None:
        # A rolling restart: the participants proxied to this instance reconnect at once (to a new owner) rather
        # than at the other instances' next heartbeat.
        for conn, (room, member) in list(self.remote_members.items()):
            self.remote_members.pop(conn, None)
            with contextlib.suppress(RedisError, OSError):
                await member.connection.close(1012, "owner-gone")
            await self.hub.leave(room, member, dropped=True)  # journal: their return is a reconnection
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(RedisError, OSError):
            await self._client.delete(self._alive_key(self.instance_id))
            for room in list(self.hub.rooms):
                await self._client.eval(_RELEASE, 1, self._owner_key(room), self.instance_id)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe()
            await self._pubsub.aclose()
            self._pubsub = None
        await self._client.aclose()

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self._client.set(self._alive_key(self.instance_id), "1", ex=self.ttl)
                for room in list(self.hub.rooms):  # the calls this instance owns
                    await self._client.set(self._owner_key(room), self.instance_id, ex=self.ttl)
                owners = {owner for owner, _socket in self.proxies.values()}
                for owner in owners:
                    if not await self._client.exists(self._alive_key(owner)):
                        await self._owner_gone(owner)
            except (RedisError, OSError) as exc:
                log.warning("relais vidéo : Redis injoignable (%s)", exc)
            await asyncio.sleep(self.heartbeat_seconds)

    async def _owner_gone(self, owner: str) -> None:
        """The instance serving some calls is gone: their proxied participants reconnect (to a new owner)."""
        for conn, (their_owner, socket) in list(self.proxies.items()):
            if their_owner == owner:
                self.proxies.pop(conn, None)
                await socket.close(1012, "owner-gone")

    # --- who serves a call -------------------------------------------------------------------------------------

    async def owner_of(self, room: str) -> str:
        """The instance serving this call; this one if nobody does (or the one that did is gone)."""
        key = self._owner_key(room)
        for _attempt in range(3):
            if await self._client.set(key, self.instance_id, nx=True, ex=self.ttl):
                return self.instance_id
            owner = await self._client.get(key)
            if owner is None:
                continue
            if owner == self.instance_id or await self._client.exists(self._alive_key(owner)):
                return owner
            if await self._client.eval(_TAKE_OVER, 1, key, owner, self.instance_id, self.ttl):
                return self.instance_id
        return self.instance_id

    async def publish(self, instance: str, envelope: dict[str, Any]) -> None:
        envelope = {**envelope, "from": self.instance_id}
        await self._client.publish(self._channel(instance), json.dumps(envelope))

    # --- the proxy side (a socket here, the call elsewhere) -----------------------------------------------------

    async def proxy_join(self, owner: str, room: str, conn: str, member: Member) -> None:
        self.proxies[conn] = (owner, member.connection)
        await self.publish(
            owner,
            {
                "op": "join",
                "room": room,
                "conn": conn,
                "id": member.id,
                "name": member.name,
                "role": member.role,
            },
        )

    async def proxy_message(self, owner: str, room: str, conn: str, message: Any) -> None:
        await self.publish(owner, {"op": "message", "room": room, "conn": conn, "message": message})

    async def proxy_leave(self, owner: str, room: str, conn: str, *, dropped: bool) -> None:
        self.proxies.pop(conn, None)
        with contextlib.suppress(RedisError, OSError):
            await self.publish(owner, {"op": "leave", "room": room, "conn": conn, "dropped": dropped})

    # --- the listener ------------------------------------------------------------------------------------------

    async def _listen(self, pubsub: redis_asyncio.client.PubSub) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            except (RedisError, OSError) as exc:
                log.warning("relais vidéo : connexion perdue (%s)", exc)
                await asyncio.sleep(1.0)
                continue
            if not message or message.get("type") != "message":
                continue
            try:
                envelope = json.loads(message["data"])
                await self._dispatch(envelope)
            except Exception:  # noqa: BLE001 - one bad envelope must not stop the relay
                log.exception("relais vidéo : message ignoré")

    async def _dispatch(self, envelope: dict[str, Any]) -> None:
        op, conn = envelope.get("op"), str(envelope.get("conn", ""))
        if op == "deliver":
            local = self.proxies.get(conn)
            if local is not None:
                await local[1].send(envelope["message"])
        elif op == "close":
            local = self.proxies.pop(conn, None)
            if local is not None:
                await local[1].close(int(envelope.get("code", 1000)), str(envelope.get("reason", "")))
        elif op == "join":
            member = Member(
                str(envelope["id"]),
                str(envelope["name"]),
                str(envelope["role"]),
                RemoteConnection(self, str(envelope["from"]), conn),
            )
            room = str(envelope["room"])
            self.remote_members[conn] = (room, member)
            try:
                await self.hub.join(room, member)
            except RoomFull:
                self.remote_members.pop(conn, None)
                await member.connection.send(
                    {
                        "type": "error",
                        "code": "room-full",
                        "fatal": True,
                        "message": f"L'appel réunit déjà {self.hub.max_participants} participants : "
                        "impossible de le rejoindre maintenant.",
                    }
                )
                await member.connection.close(4009, "room-full")
        elif op == "message":
            found = self.remote_members.get(conn)
            if found is not None:
                await self.hub.handle(found[0], found[1], envelope.get("message"))
        elif op == "leave":
            found = self.remote_members.pop(conn, None)
            if found is not None:
                await self.hub.leave(found[0], found[1], dropped=bool(envelope.get("dropped", True)))
