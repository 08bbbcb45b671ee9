"""WhatsApp through Meta's Cloud API: reminders where Brazilian clients read, and a client's
message at session time as the check-in (rule 2: "chame por WhatsApp ou ligação").

The parts, one job each:

* :mod:`~daemon.whatsapp.cloud`: the messages endpoint and Meta's refusals;
* :mod:`~daemon.whatsapp.compose`: what a message says (templates and free-form text);
* :mod:`~daemon.whatsapp.outbound`: which messages a session event sends, how a refusal
  is handled (the error codes);
* :mod:`~daemon.whatsapp.inbound`: the webhook's payload and signature, and acting on a
  client's message (check-in, or a helpful answer);
* ``daemon/store/whatsapp.py``: what is remembered (message ids once, windows, statuses;
  no message text); ``daemon/web/whatsapp.py``: the ``/webhooks/whatsapp`` routes.

:class:`WhatsApp` is what the outbox worker holds: it plans the ``whatsapp`` items of a
session event, delivers one, and processes the messages the webhook recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from daemon.notify import Delivery
from daemon.service import Service
from daemon.signing import Signer
from daemon.store import SessionRecord
from daemon.whatsapp.cloud import CloudClient, CloudError
from daemon.whatsapp.inbound import BadWebhook, Inbound, read_webhook, signature_valid
from daemon.whatsapp.outbound import Outbound

__all__ = [
    "BadWebhook",
    "CloudClient",
    "CloudError",
    "WhatsApp",
    "read_webhook",
    "signature_valid",
]


class WhatsApp:
    """The outbox's WhatsApp: planning, delivering, and the client's messages."""

    def __init__(self, service: Service, signer: Signer) -> None:
        config = service.config
        if config.whatsapp is None:
            raise ValueError("WhatsApp needs a [whatsapp] section")
        self.outbound = Outbound(config, service.store, signer, CloudClient(config.whatsapp))
        self.inbound = Inbound(service)

    def plan(self, session: SessionRecord, event: str, now: datetime) -> list[Delivery]:
        return self.outbound.plan(session, event, now)

    def deliver(
        self, payload: dict[str, Any], session: SessionRecord | None, now: datetime
    ) -> None:
        self.outbound.deliver(payload, session, now)

    def process(self) -> int:
        return self.inbound.process()
