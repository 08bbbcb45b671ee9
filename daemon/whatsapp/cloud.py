"""The Cloud API's messages endpoint: one POST, and Meta's refusals as one error.

Meta answers a refusal with ``{"error": {"code", "message", "error_data": {"details"}}}``
and an HTTP status that says less than the code (most refusals are 400). The code is
what the sender decides on (``daemon/whatsapp/outbound.py``). Redirects are not followed:
the signed token must not follow one elsewhere.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from http.client import HTTPException
from typing import Any

from connectors.retry import retry_after_seconds
from daemon.config import SecretError, WhatsAppConfig
from daemon.notify.webhooks import webhook_opener

USER_AGENT = "expediente-whatsapp/1"
_MAX_RESPONSE = 64 * 1024


class CloudError(Exception):
    """A request the API refused (``code`` is Meta's, 0 when it gave none) or that did not
    reach it (``status`` 0)."""

    def __init__(
        self, message: str, *, code: int = 0, status: int = 0, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Accepted:
    """The message's id at Meta and the account it goes to (maybe without the ninth digit)."""

    wamid: str
    wa_id: str


class CloudClient:
    def __init__(self, config: WhatsAppConfig) -> None:
        self.config = config
        self._opener = webhook_opener()

    def send(self, message: dict[str, Any], now: datetime) -> Accepted:
        """POST one message; raises :class:`CloudError`."""
        config = self.config
        try:
            token = config.access_token.reveal()
        except SecretError as error:
            raise CloudError(str(error)) from None
        url = f"{config.api_endpoint}{config.phone_number_id}/messages"
        body = json.dumps({"messaging_product": "whatsapp", **message}, ensure_ascii=False)
        request = urllib.request.Request(  # noqa: S310 - the URL schema only allows http(s)
            url,
            data=body.encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=config.timeout.total_seconds()) as response:
                document = _json(response.read(_MAX_RESPONSE))
        except urllib.error.HTTPError as error:
            with error:
                raise _refusal(error, now) from None
        except (urllib.error.URLError, HTTPException, OSError) as error:
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            raise CloudError(f"the Cloud API at {url} is unreachable: {reason}") from None
        try:
            wamid = str(document["messages"][0]["id"])
            contacts = document.get("contacts") or [{}]
            wa_id = str(contacts[0].get("wa_id") or message.get("to", ""))
        except (KeyError, IndexError, TypeError, AttributeError):
            raise CloudError(f"the Cloud API answered without a message id: {document}") from None
        return Accepted(wamid, wa_id)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}


def _refusal(error: urllib.error.HTTPError, now: datetime) -> CloudError:
    document = _json(error.read(_MAX_RESPONSE))
    found = document.get("error") if isinstance(document, dict) else None
    found = found if isinstance(found, dict) else {}
    code = found.get("code")
    details = found.get("error_data", {}) if isinstance(found.get("error_data"), dict) else {}
    text = str(details.get("details") or found.get("message") or error.reason)
    return CloudError(
        f"the Cloud API refused the message ({error.code}, code {code}): {text}",
        code=code if isinstance(code, int) else 0,
        status=error.code,
        retry_after=retry_after_seconds(error.headers.get("Retry-After"), now),
    )
