"""ICE servers for a participant: STUN as configured, TURN with time-limited credentials.

coturn's "TURN REST API" scheme (coturn ``use-auth-secret`` + ``static-auth-secret``; draft-uberti-behave-turn-rest):
the username is ``<expiry as Unix time>:<participant>`` and the password is ``base64(HMAC-SHA1(secret, username))``.
coturn recomputes the password from the shared secret and refuses the username once its time has passed, so the
platform never stores TURN passwords and a leaked credential dies by itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from telesante.config import Settings


def turn_credentials(secret: str, participant: str, now: datetime, ttl_seconds: int) -> tuple[str, str]:
    expiry = int(now.timestamp()) + ttl_seconds
    username = f"{expiry}:{participant}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(settings: Settings, participant: str, now: datetime) -> list[dict[str, Any]]:
    """The ``iceServers`` of an ``RTCPeerConnection`` for this participant."""
    servers: list[dict[str, Any]] = []
    if settings.video_stun_url_list:
        servers.append({"urls": settings.video_stun_url_list})
    if settings.video_turn_url_list and settings.video_turn_secret is not None:
        username, credential = turn_credentials(
            settings.video_turn_secret.get_secret_value(), participant, now, settings.video_turn_ttl_seconds
        )
        servers.append({"urls": settings.video_turn_url_list, "username": username, "credential": credential})
    return servers
