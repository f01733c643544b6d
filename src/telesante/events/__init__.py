"""Live events: an event bus (in-process, or Redis for several instances), publication after commit, and the
Server-Sent Events stream ``GET /evenements``. See ``docs/domains/events.md``."""

from telesante.events.bus import Event, EventBus, InProcessBus, RedisBus, make_event_bus
from telesante.events.service import bind_event_bus, publish_on_commit, use_event_bus

__all__ = [
    "Event",
    "EventBus",
    "InProcessBus",
    "RedisBus",
    "bind_event_bus",
    "make_event_bus",
    "publish_on_commit",
    "use_event_bus",
]
