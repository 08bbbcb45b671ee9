"""What every part of the notifier shares: the delivery, its failure, the attributes.

A :class:`Delivery` is what planning hands the outbox and what the outbox hands back to
be sent; :class:`DeliveryFailed` is the one error sending raises, and its ``permanent``
is what the outbox decides on. The parts (planning, composing, SMTP, webhooks) are
mixins over :class:`NotifierBase`, which only names the attributes the assembled
``Notifier`` sets, so each part is typed without importing the others.
"""

from __future__ import annotations

import logging
import ssl
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from daemon.config import Config
from daemon.signing import Signer

log = logging.getLogger("expediente.notify")


@dataclass(frozen=True)
class Delivery:
    """One message for one recipient or receiver; ``payload`` is stored as JSON."""

    action: Literal["mail", "webhook", "whatsapp"]
    payload: dict[str, Any]
    not_before: datetime | None = None  # e.g. the reminder: start - booking.reminder


class DeliveryFailed(Exception):
    """A delivery did not happen. ``permanent``: retrying cannot help (give up and tell a
    person); otherwise retry, no sooner than ``retry_after`` seconds when given."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class NotifierBase:
    """The attributes ``Notifier.__init__`` sets, for the mixins that read them."""

    config: Config
    signer: Signer
    _tls: ssl.SSLContext | None
    _opener: urllib.request.OpenerDirector


def _instants(start: object, end: object) -> tuple[datetime, datetime] | None:
    """Two stored ISO 8601 instants; ``None`` when either is missing or unreadable (an
    item written by an older version), so the message just leaves the old time out."""
    try:
        first = datetime.fromisoformat(str(start))
        last = datetime.fromisoformat(str(end))
    except ValueError:
        return None
    if first.tzinfo is None or last.tzinfo is None:
        return None
    return first, last
