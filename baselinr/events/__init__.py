"""The event bus and its hooks."""

from baselinr.events.bus import BaseEvent, EventBus

__all__ = ["BaseEvent", "EventBus"]
