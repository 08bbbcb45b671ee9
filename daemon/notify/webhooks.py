"""Webhooks: the JSON document a receiver gets, its signature, and the POST.

Webhook requests
----------------
``POST`` with a JSON body ``{"event", "occurred_at", "delivery", "session": {...}}``; the
session carries the booking's fields and status but no links (they are capabilities). A
``moved`` event adds ``"previous": {"start", "end"}``, the time the session had.
Headers:

* ``X-Expediente-Event``: the event name.
* ``X-Expediente-Delivery``: an id that stays the same across retries of one delivery,
  so receivers can drop duplicates.
* ``X-Expediente-Timestamp``: Unix seconds when this attempt was signed.
* ``X-Expediente-Signature``: ``sha256=`` + hex HMAC-SHA256, keyed with the webhook's
  secret, of ``<timestamp>.<body>`` (the timestamp's ASCII digits, a dot, the raw body
  bytes). Receivers recompute it, compare in constant time, and refuse timestamps more
  than a few minutes old, which stops a captured request being replayed later. Without a
  ``secret_file`` no signature is sent.

Redirects are not followed (a moved receiver is a configuration to fix, and following
one would hand the signed body to wherever it points).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from http.client import HTTPException
from typing import Any

from connectors.retry import retry_after_seconds
from daemon.config import SecretError
from daemon.notify.base import DeliveryFailed, NotifierBase, _instants
from daemon.store import SessionRecord

USER_AGENT = "expediente-webhook/1"
_MAX_RESPONSE = 64 * 1024  # receivers' answers are read only to free the connection


def delivery_id(*parts: str) -> str:
    """A stable id from what identifies a delivery, so a re-plan gives the same one."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Expediente-Signature`` value; receivers compute the same to verify."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def session_document(session: SessionRecord) -> dict[str, Any]:
    """What a webhook receiver learns about a session: its data, no links or ETags."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(UTC).isoformat(timespec="seconds")

    return {
        "id": session.id,
        "type": session.type,
        "status": str(session.status),
        "start": when(session.start),
        "end": when(session.end),
        "technician": session.technician_id,
        "company": session.company,
        "responsible_name": session.responsible_name,
        "phone": session.phone,
        "email": session.email,
        "remote_tool": session.remote_tool,
        "remote_id": session.remote_id,
        "description": session.description,
        "language": session.language,
        "rules_version": session.rules_version,
        "rules_accepted_at": when(session.rules_accepted_at),
        "created_at": when(session.created_at),
        "updated_at": when(session.updated_at),
        "checked_in_at": when(session.checked_in_at),
        "ended_at": when(session.ended_at),
        "cancel_reason": session.cancel_reason,
        "rebooked_from": session.rebooked_from,
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


def webhook_opener() -> urllib.request.OpenerDirector:
    """The opener every webhook POST goes through: one that never follows a redirect."""
    return urllib.request.build_opener(_NoRedirect())


class WebhookSender(NotifierBase):
    """Posts a planned webhook delivery, signed when the hook has a secret."""

    def _post(self, payload: Mapping[str, Any], now: datetime) -> None:
        url = str(payload.get("url", ""))
        hook = next((h for h in self.config.webhooks if h.url == url), None)
        if hook is None:
            raise DeliveryFailed(f"webhook {url} is no longer configured", permanent=True)
        document = {
            "event": payload["event"],
            "occurred_at": payload["occurred_at"],
            "delivery": payload["id"],
            "session": payload["session"],
        }
        before = _instants(payload.get("from_start"), payload.get("from_end"))
        if before is not None:
            document["previous"] = {
                "start": before[0].astimezone(UTC).isoformat(timespec="seconds"),
                "end": before[1].astimezone(UTC).isoformat(timespec="seconds"),
            }
        body = json.dumps(
            document,
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Expediente-Event": str(payload["event"]),
            "X-Expediente-Delivery": str(payload["id"]),
            "X-Expediente-Timestamp": str(timestamp),
        }
        if hook.secret is not None:
            try:
                secret = hook.secret.reveal()
            except SecretError as error:
                raise DeliveryFailed(str(error)) from None
            headers["X-Expediente-Signature"] = signature(secret, timestamp, body)
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - the URL schema only allows http(s)
        try:
            with self._opener.open(request, timeout=hook.timeout.total_seconds()) as response:
                response.read(_MAX_RESPONSE)
        except urllib.error.HTTPError as error:
            with error:
                raise _http_failure(url, error, now) from None
        except (urllib.error.URLError, HTTPException, OSError) as error:
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            raise DeliveryFailed(f"webhook {url} unreachable: {reason}") from None


def _http_failure(url: str, error: urllib.error.HTTPError, now: datetime) -> DeliveryFailed:
    code = error.code
    retry_after = retry_after_seconds(error.headers.get("Retry-After"), now)
    if 300 <= code < 400:
        location = error.headers.get("Location", "?")
        return DeliveryFailed(
            f"webhook {url} answered {code} (redirect to {location}); redirects are not "
            "followed: put the final address in [[webhooks]] url",
            permanent=True,
        )
    if code in (408, 429) or code >= 500:
        return DeliveryFailed(f"webhook {url} answered {code}", retry_after=retry_after)
    return DeliveryFailed(f"webhook {url} refused the delivery: {code}", permanent=True)
