"""``/webhooks/whatsapp``: Meta's subscription handshake, and its signed notifications.

``GET`` answers the challenge only for the configured verify token (403 otherwise).
``POST`` is accepted only with ``X-Hub-Signature-256`` equal to the app secret's
HMAC-SHA256 of the raw body, compared in constant time: without one the answer is 401, with
a wrong one 403, and nothing is read or recorded. A signed notification is recorded (each
message id once) and answered 200 at once; what it asks for happens in the outbox worker,
woken for it, so Meta never waits and never retries for slowness. Without a
``[whatsapp]`` section both are 404.
"""

from __future__ import annotations

import hmac
import logging

from daemon.config import SecretError
from daemon.service import Service
from daemon.web.http import HTTPError, Request, Response, Router
from daemon.whatsapp import BadWebhook, read_webhook, signature_valid

log = logging.getLogger("expediente.whatsapp")

PATH = "/webhooks/whatsapp"


class WhatsAppWebhook:
    def __init__(self, service: Service) -> None:
        self.service = service

    def routes(self, router: Router) -> None:
        router.add("GET", PATH, self.handshake)
        router.add("POST", PATH, self.notification)

    def _secret(self, which: str) -> str:
        whatsapp = self.service.config.whatsapp
        if whatsapp is None:
            raise HTTPError(404, "not_found", "WhatsApp is not configured on this desk")
        secret = whatsapp.verify_token if which == "verify" else whatsapp.app_secret
        try:
            return secret.reveal()
        except SecretError as error:
            log.error("WhatsApp webhook refused: %s", error)
            raise HTTPError(503, "unavailable", "the webhook cannot check requests now") from None

    def handshake(self, request: Request) -> Response:
        token = self._secret("verify")
        given = request.arg("hub.verify_token") or ""
        challenge = request.arg("hub.challenge") or ""
        if request.arg("hub.mode") != "subscribe" or not challenge:
            raise HTTPError(400, "bad_request", "expected hub.mode=subscribe and hub.challenge")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPError(403, "forbidden", "wrong verify token")
        return Response.text(challenge[:200])

    def notification(self, request: Request) -> Response:
        secret = self._secret("app")
        header = request.header("x-hub-signature-256")
        if not header:
            raise HTTPError(401, "unsigned", "X-Hub-Signature-256 is required")
        body = request.body()
        if not signature_valid(secret, body, header):
            raise HTTPError(403, "bad_signature", "X-Hub-Signature-256 does not match the body")
        whatsapp = self.service.config.whatsapp
        assert whatsapp is not None  # noqa: S101 - _secret checked it
        now = self.service.clock.now()
        try:
            webhook = read_webhook(body, whatsapp.phone_number_id, now)
        except BadWebhook as error:
            raise HTTPError(400, "bad_webhook", str(error)) from None
        new = self.service.store.record_webhook(webhook.messages, webhook.statuses, now=now)
        if new or webhook.statuses:
            self.service.wake()
        return Response.json({"received": new})
