"""A local WhatsApp Cloud API for tests: the messages endpoint and the webhooks it sends.

Meta's API cannot be reached from the tests, so this server keeps its rules as Meta's
public reference writes them (Cloud API "Messages", "Error codes", "Webhooks"), and
refuses what Meta refuses:

* ``POST /{version}/{phone-number-id}/messages`` with ``Authorization: Bearer <token>``;
  a missing or wrong token is HTTP 401 with error code ``190`` (``OAuthException``), a
  phone number id other than the desk's is ``100``.
* ``"messaging_product": "whatsapp"``, ``"to"`` as digits (E.164 without ``+``), and
  ``"type"`` ``template`` or ``text``. A template must be one of the approved
  :attr:`CloudApi.templates` in its approved language (else ``132001``) with exactly its
  number of body parameters (else ``132000``); a parameter must be non-empty text (else
  ``131008``) without new-line or tab characters or more than four spaces in a row (else
  ``132018``).
* Free-form ``text`` only within 24 hours of the client's last message (the customer
  service window). Outside it the request is *accepted* (200 and a ``wamid``) and the
  refusal comes later, as Meta does it: a ``failed`` status webhook with error
  ``131047`` (re-engagement message). A number with no WhatsApp account gets ``failed``
  with ``131026`` (message undeliverable) the same way.
* Brazilian mobiles whose account predates the ninth digit: a message to
  ``5511987654321`` reaches the account ``551187654321``, and the answer's
  ``contacts[0].wa_id`` says so.
* Throughput refusals on demand (:meth:`CloudApi.refuse_next`): ``130429`` (HTTP 400) or
  HTTP 429 (code ``80007``).

Webhooks go to :attr:`CloudApi.callback`, signed ``X-Hub-Signature-256: sha256=<hex
HMAC-SHA256 of the raw body with the app secret>``, only when the test calls
:meth:`CloudApi.deliver_webhooks` (no background thread, so a test decides the order).
A delivery answered other than 200 stays queued and is sent again on the next call, as
Meta retries; :meth:`CloudApi.replay` sends one already delivered again (Meta's
duplicates). Statuses: ``sent`` when a message is accepted, then ``delivered`` and
``read`` when the test says so (:meth:`CloudApi.progress`). Time is the test's clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.servers.local import LocalHttp, QuietHandler

WINDOW = timedelta(hours=24)
VERSION = "v21.0"
WABA_ID = "102290129340398"
DISPLAY_NUMBER = "5511940000000"

# Each refusal as Meta's reference names it: code → (HTTP status, title).
ERRORS: Mapping[int, tuple[int, str]] = {
    100: (400, "Invalid parameter"),
    190: (401, "Invalid OAuth access token - Cannot parse access token"),
    80007: (429, "Rate limit issues"),
    130429: (400, "Rate limit hit"),
    131008: (400, "Required parameter is missing"),
    131009: (400, "Parameter value is not valid"),
    131026: (400, "Message undeliverable"),
    131047: (400, "Re-engagement message"),
    132000: (400, "Number of parameters does not match the expected number of params"),
    132001: (400, "Template name does not exist in the translation"),
    132018: (400, "There was an issue with the parameters in your template."),
}


def hub_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Refused(Exception):
    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


@dataclass
class Webhook:
    """One webhook delivery: its body as sent, how often it was tried, Meta's answer."""

    body: bytes
    attempts: int = 0
    answered: list[int] = field(default_factory=list)

    @property
    def document(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Sent:
    """A message the API accepted: the request's JSON and the id it answered."""

    wamid: str
    request: dict[str, Any]
    wa_id: str
    status: str = "accepted"

    @property
    def template(self) -> str | None:
        template = self.request.get("template")
        return template.get("name") if isinstance(template, dict) else None

    @property
    def parameters(self) -> list[str]:
        template = self.request.get("template") or {}
        body = [c for c in template.get("components", []) if c.get("type") == "body"]
        return [p["text"] for c in body for p in c.get("parameters", [])]

    @property
    def text(self) -> str | None:
        text = self.request.get("text")
        return text.get("body") if isinstance(text, dict) else None


class CloudApi(LocalHttp):
    """The server (see the module docstring); ``with CloudApi(...) as api`` runs it.

    ``templates`` maps each approved template name to ``(language code, number of body
    parameters)``; ``accounts`` are the WhatsApp ids that exist; ``now`` is the test's
    clock.
    """

    def __init__(
        self,
        *,
        phone_number_id: str,
        token: str,
        app_secret: str,
        templates: Mapping[str, tuple[str, int]],
        now: Callable[[], datetime],
        accounts: tuple[str, ...] = (),
    ) -> None:
        self.phone_number_id = phone_number_id
        self.token = token
        self.app_secret = app_secret
        self.templates = dict(templates)
        self.now = now
        self.accounts = set(accounts)
        self.callback = ""
        self.sent: list[Sent] = []
        self.refused: list[tuple[int, dict[str, Any]]] = []
        self.queue: list[Webhook] = []
        self.delivered: list[Webhook] = []
        self.requests = 0
        self._last_inbound: dict[str, datetime] = {}
        self._refusals: list[int] = []
        self._ids = 0
        self._lock = threading.Lock()
        api = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                status, document = api._answer(self.path, dict(self.headers.items()), body)
                raw = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._serve(Handler)
        self.endpoint = f"http://127.0.0.1:{self.port}/{VERSION}/"

    # ------------------------------------------------------------ test controls

    def refuse_next(self, code: int, times: int = 1) -> None:
        """Refuse the next ``times`` message requests with ``code`` (130429 or 80007)."""
        self._refusals += [code] * times

    def close_window(self, wa_id: str) -> None:
        """Meta counts the client's window as closed (the daemon may think otherwise: a
        clock apart, a message it never got)."""
        self._last_inbound.pop(wa_id, None)

    def subscribe(self, callback: str, verify_token: str) -> bool:
        """Register ``callback`` as Meta's dashboard does: a GET with the verify token and a
        challenge, accepted only when answered 200 with the challenge itself."""
        challenge = str(1158201444 + self._ids)
        query = urllib.parse.urlencode(
            {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
        )
        try:
            with urllib.request.urlopen(f"{callback}?{query}", timeout=10) as response:  # noqa: S310 - 127.0.0.1
                ok = bool(response.status == 200 and response.read().decode() == challenge)
        except urllib.error.HTTPError as error:
            error.close()
            ok = False
        if ok:
            self.callback = callback
        return ok

    def client_says(self, wa_id: str, text: str, *, name: str = "Maria") -> str:
        """The client with account ``wa_id`` sends ``text``: its window opens, and a
        ``messages`` webhook is queued. Returns the message's id."""
        return self._inbound(wa_id, {"type": "text", "text": {"body": text}}, name)

    def client_reacts(self, wa_id: str, wamid: str, emoji: str = "\N{THUMBS UP SIGN}") -> str:
        """The client reacts to message ``wamid`` (a reaction opens no window)."""
        reaction = {"type": "reaction", "reaction": {"message_id": wamid, "emoji": emoji}}
        return self._inbound(wa_id, reaction, "Maria", opens_window=False)

    def _inbound(
        self, wa_id: str, content: dict[str, Any], name: str, *, opens_window: bool = True
    ) -> str:
        now = self.now()
        self.accounts.add(wa_id)
        if opens_window:
            self._last_inbound[wa_id] = now
        wamid = self._new_id()
        value = {
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": wamid,
                    "timestamp": str(int(now.timestamp())),
                    **content,
                }
            ],
        }
        self._queue(value)
        return wamid

    def progress(self, wamid: str, status: str) -> None:
        """The message reached the phone (``delivered``) or was read (``read``)."""
        sent = next(s for s in self.sent if s.wamid == wamid)
        sent.status = status
        self._queue({"statuses": [self._status(sent, status)]})

    def deliver_webhooks(self) -> list[int]:
        """POST every queued webhook to :attr:`callback`, signed; those not answered 200
        stay queued. Returns the statuses answered."""
        answers = []
        pending, self.queue = self.queue, []
        for hook in pending:
            status = self.post(hook.body)
            hook.attempts += 1
            hook.answered.append(status)
            answers.append(status)
            (self.delivered if status == 200 else self.queue).append(hook)
        return answers

    def replay(self, hook: Webhook) -> int:
        """Send a delivered webhook again, as Meta sometimes does."""
        status = self.post(hook.body)
        hook.answered.append(status)
        return status

    def post(self, body: bytes, signature: str | None = None) -> int:
        """POST ``body`` to the callback, signed with the app secret unless ``signature``
        is given ("" sends none)."""
        if not self.callback:
            raise AssertionError("no webhook subscribed: call subscribe() first")
        request = urllib.request.Request(self.callback, data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/json")
        signed = hub_signature(self.app_secret, body) if signature is None else signature
        if signed:
            request.add_header("X-Hub-Signature-256", signed)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.close()
            return error.code
        except OSError:
            return 0

    # ------------------------------------------------------------ the API

    def _new_id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"wamid.HBgN{self._ids:012d}"

    def _queue(self, value: dict[str, Any]) -> None:
        document = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": WABA_ID,
                    "changes": [
                        {
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": DISPLAY_NUMBER,
                                    "phone_number_id": self.phone_number_id,
                                },
                                **value,
                            },
                            "field": "messages",
                        }
                    ],
                }
            ],
        }
        self.queue.append(Webhook(json.dumps(document, separators=(",", ":")).encode()))

    def _status(self, sent: Sent, status: str, error: int | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": sent.wamid,
            "status": status,
            "timestamp": str(int(self.now().timestamp())),
            "recipient_id": sent.wa_id,
        }
        if error is not None:
            title = ERRORS[error][1]
            entry["errors"] = [
                {"code": error, "title": title, "message": title, "error_data": {"details": title}}
            ]
        return entry

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        self.requests += 1
        try:
            document = self._accept(path, headers, body)
        except Refused as refusal:
            status, title = ERRORS[refusal.code]
            try:
                request = json.loads(body)
            except ValueError:
                request = {}
            self.refused.append((refusal.code, request if isinstance(request, dict) else {}))
            error = {
                "message": f"({refusal.code}) {title}",
                "type": "OAuthException",
                "code": refusal.code,
                "error_data": {"messaging_product": "whatsapp", "details": refusal.details},
                "fbtrace_id": "AbCdEf0123",
            }
            return status, {"error": error}
        return 200, document

    def _accept(self, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.token}".encode()):
            raise Refused(190, "Error validating access token")
        match = re.fullmatch(rf"/{re.escape(VERSION)}/([0-9]+)/messages", path)
        if match is None or match.group(1) != self.phone_number_id:
            raise Refused(100, f"Unsupported post request: {path}")
        if self._refusals:
            raise Refused(self._refusals.pop(0), "Too many messages sent from this number")
        try:
            request = json.loads(body)
        except ValueError:
            raise Refused(100, "The request body is not JSON") from None
        if not isinstance(request, dict) or request.get("messaging_product") != "whatsapp":
            raise Refused(100, "messaging_product must be whatsapp")
        to = request.get("to")
        if not isinstance(to, str) or not re.fullmatch(r"[1-9][0-9]{7,14}", to):
            raise Refused(100, "to must be the recipient's number in digits")
        kind = request.get("type", "text")
        if kind == "template":
            self._check_template(request.get("template"))
        elif kind == "text":
            text = request.get("text")
            words = text.get("body") if isinstance(text, dict) else None
            if not isinstance(words, str) or not words.strip():
                raise Refused(131008, "text.body is required")
            if len(words) > 4096:
                raise Refused(131009, "text.body is longer than 4096 characters")
        else:
            raise Refused(100, f"type {kind!r} is not supported here")
        wa_id = self._account(to)
        sent = Sent(self._new_id(), request, wa_id or to)
        self.sent.append(sent)
        if wa_id is None:
            self._queue({"statuses": [self._status(sent, "failed", 131026)]})
        elif kind == "text" and not self._in_window(wa_id):
            self._queue({"statuses": [self._status(sent, "failed", 131047)]})
        else:
            self._queue({"statuses": [self._status(sent, "sent")]})
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": wa_id or to}],
            "messages": [{"id": sent.wamid, "message_status": "accepted"}],
        }

    def _check_template(self, template: object) -> None:
        if not isinstance(template, dict):
            raise Refused(131008, "template is required")
        name = template.get("name")
        language = template.get("language")
        code = language.get("code") if isinstance(language, dict) else None
        approved = self.templates.get(name) if isinstance(name, str) else None
        if approved is None or approved[0] != code:
            raise Refused(132001, f"template name ({name}) does not exist in {code}")
        components = template.get("components", [])
        if not isinstance(components, list):
            raise Refused(100, "components must be a list")
        parameters: list[Any] = []
        for component in components:
            if not isinstance(component, dict) or component.get("type") != "body":
                raise Refused(132000, "only body parameters are expected")
            found = component.get("parameters", [])
            parameters += found if isinstance(found, list) else [None]
        if len(parameters) != approved[1]:
            raise Refused(132000, f"expected {approved[1]} body parameters, got {len(parameters)}")
        for parameter in parameters:
            text = parameter.get("text") if isinstance(parameter, dict) else None
            if not isinstance(parameter, dict) or parameter.get("type") != "text":
                raise Refused(131008, "each body parameter needs type text")
            if not isinstance(text, str) or not text.strip():
                raise Refused(131008, "a body parameter is empty")
            if re.search(r"[\n\t]| {5,}", text):
                raise Refused(
                    132018,
                    "Param text cannot have new-line/tab characters or more than 4 "
                    "consecutive spaces",
                )

    def _account(self, to: str) -> str | None:
        """The account a number reaches, with the ninth-digit rule for Brazilian mobiles."""
        if to in self.accounts:
            return to
        if to.startswith("55") and len(to) == 13 and to[4] == "9":
            old = to[:4] + to[5:]
            if old in self.accounts:
                return old
        return None

    def _in_window(self, wa_id: str) -> bool:
        last = self._last_inbound.get(wa_id)
        return last is not None and self.now() - last < WINDOW


DEPLOY_GUIDE = Path(__file__).resolve().parents[2] / "deploy" / "README.md"


def deploy_guide_handshake(public_url: str, verify_token_file: Path) -> str:
    """Run the deploy guide's ``curl`` check of the webhook as an admin would paste it,
    against ``public_url`` and the test's verify-token file; returns what it printed."""
    section = DEPLOY_GUIDE.read_text(encoding="utf-8").split("\n## WhatsApp\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    [command] = [line.strip() for line in section.splitlines() if line.strip().startswith("curl")]
    command = command.replace("https://agenda.your-desk.com.br", public_url)
    command = command.replace(
        "sudo cat /etc/expediente/secrets/whatsapp-verify-token", f"cat {verify_token_file}"
    )
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return done.stdout
