"""The ``webhook`` hook: POST each event as JSON to a URL, from a sender thread.

Body: ``{"event_type", "timestamp" (ISO 8601, UTC), "run_id", "environment", "metadata"}`` with
``Content-Type: application/json`` plus the configured headers. Each POST has ``timeout``
seconds; a failing or slow endpoint delays only the sender thread (see ``QueuedHook``), its
failures are logged and counted, and the run is unaffected. Header values (often tokens) and
URL passwords never appear in logs.
"""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit

from baselinr.errors import ConfigError
from baselinr.events.bus import BaseEvent
from baselinr.events.hooks import QueuedHook, Stamped
from baselinr.utils.logging import RunContext


def event_json(event: BaseEvent, context: RunContext) -> bytes:
    """The JSON body posted for ``event`` emitted in ``context``."""
    body = {"event_type": event.event_type, "timestamp": event.timestamp.isoformat(), "run_id": context.run_id,
            "environment": context.environment, "metadata": event.metadata}
    return json.dumps(body, default=str, sort_keys=True).encode()


class WebhookHook(QueuedHook):
    """POSTs each event to ``url`` (one request per event, in emission order)."""

    name = "webhook"

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0,
                 where: str = "hook", context: RunContext | None = None) -> None:
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise ConfigError(f"{where}.url: a webhook url must start with http:// or https://, got scheme {scheme!r}")
        self.url = url
        self.headers = {"Content-Type": "application/json", "User-Agent": "baselinr", **(headers or {})}
        self.timeout = timeout
        super().__init__(context, max_batch=1)  # one POST per event: a failure costs exactly that event

    def deliver(self, events: list[Stamped]) -> None:
        for event, context in events:
            request = urllib.request.Request(self.url, data=event_json(event, context), headers=self.headers,
                                             method="POST")
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - scheme checked
                response.read()
