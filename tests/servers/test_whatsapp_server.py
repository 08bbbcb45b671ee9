"""The local Cloud API refuses what Meta refuses, checked with plain urllib: the token, the
templates and their parameters, the 24-hour window, undeliverable numbers, throughput
refusals, and signed webhooks retried until answered 200."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from daemon.clock import FixedClock
from tests.daemon.desk import monday
from tests.servers.local import LocalHttp, QuietHandler
from tests.servers.whatsapp import CloudApi, hub_signature

TOKEN = "EAAG-test-token-0123456789"
SECRET = "app-secret-0123456789"
CLIENT = "5511987654321"


class Callback(LocalHttp):
    """A webhook endpoint that checks the signature as a receiver must."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        callback = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                body = query["hub.challenge"][0].encode()
                self.send_response(200 if query["hub.verify_token"] == ["right"] else 403)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                signed = hmac.compare_digest(self.headers.get("X-Hub-Signature-256", ""), expected)
                status = callback.status if signed else 401
                if status == 200:
                    callback.received.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._serve(Handler)
        self.url = f"http://127.0.0.1:{self.port}/webhooks/whatsapp"

    def values(self) -> list[dict[str, Any]]:
        return [c["value"] for doc in self.received for e in doc["entry"] for c in e["changes"]]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(monday(7))


@pytest.fixture
def api(clock: FixedClock) -> Iterator[tuple[CloudApi, Callback]]:
    server = CloudApi(
        phone_number_id="123456789012345",
        token=TOKEN,
        app_secret=SECRET,
        templates={"sessao_agendada": ("pt_BR", 2)},
        now=clock.now,
        accounts=(CLIENT,),
    )
    with Callback() as callback, server:
        assert server.subscribe(callback.url, "right")
        yield server, callback


def send(api: CloudApi, body: dict[str, Any], token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
        api.endpoint + "123456789012345/messages",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def template(to: str = CLIENT, *params: str, name: str = "sessao_agendada") -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": to,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "pt_BR"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
            ],
        },
    }


def text(to: str = CLIENT) -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "Olá"}}


def test_a_template_with_its_parameters_is_accepted_and_reported_sent(
    api: tuple[CloudApi, Callback],
) -> None:
    server, callback = api
    status, body = send(server, template(CLIENT, "30/11/2026", "09:00"))
    assert status == 200
    wamid = body["messages"][0]["id"]
    assert body["contacts"] == [{"input": CLIENT, "wa_id": CLIENT}]
    assert server.deliver_webhooks() == [200]
    server.progress(wamid, "delivered")
    server.progress(wamid, "read")
    server.deliver_webhooks()
    statuses = [s["status"] for v in callback.values() for s in v["statuses"]]
    assert statuses == ["sent", "delivered", "read"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (template(CLIENT, "a", "b", name="nao_aprovado"), 132001),
        (template(CLIENT, "only one"), 132000),
        (template(CLIENT, "a", "b", "c"), 132000),
        (template(CLIENT, "linha\nquebrada", "b"), 132018),
        (template(CLIENT, "a     b", "b"), 132018),
        (template(CLIENT, "", "b"), 131008),
        (template("+5511987654321", "a", "b"), 100),
        ({**template(CLIENT, "a", "b"), "messaging_product": "sms"}, 100),
    ],
)
def test_what_meta_refuses_is_refused(
    api: tuple[CloudApi, Callback], body: dict[str, Any], code: int
) -> None:
    server, _ = api
    status, answer = send(server, body)
    assert (status, answer["error"]["code"]) == (400, code)
    assert server.sent == []


def test_a_wrong_token_is_190_and_a_wrong_language_is_an_unknown_template(
    api: tuple[CloudApi, Callback],
) -> None:
    server, _ = api
    status, answer = send(server, template(CLIENT, "a", "b"), token="EAAG-revoked")
    assert (status, answer["error"]["code"]) == (401, 190)
    english = template(CLIENT, "a", "b")
    english["template"]["language"]["code"] = "en_US"
    assert send(server, english)[1]["error"]["code"] == 132001


def test_free_text_needs_the_24_hour_window(
    api: tuple[CloudApi, Callback], clock: FixedClock
) -> None:
    server, callback = api
    assert send(server, text())[0] == 200  # accepted, then refused by webhook
    server.client_says(CLIENT, "Oi")
    clock.advance(timedelta(hours=23, minutes=59))
    assert send(server, text())[0] == 200
    clock.advance(timedelta(minutes=2))
    assert send(server, text())[0] == 200
    server.deliver_webhooks()
    statuses = [s for v in callback.values() for s in v.get("statuses", [])]
    assert [(s["status"], s.get("errors", [{}])[0].get("code")) for s in statuses] == [
        ("failed", 131047),
        ("sent", None),
        ("failed", 131047),
    ]
    [message] = [m for v in callback.values() for m in v.get("messages", [])]
    assert (message["from"], message["text"]["body"]) == (CLIENT, "Oi")


def test_an_account_without_the_ninth_digit_and_a_number_without_whatsapp(
    api: tuple[CloudApi, Callback],
) -> None:
    server, callback = api
    server.accounts = {"551187654321"}
    status, body = send(server, template("5511987654321", "a", "b"))
    assert status == 200 and body["contacts"][0]["wa_id"] == "551187654321"
    assert send(server, template("5521912345678", "a", "b"))[0] == 200
    server.deliver_webhooks()
    statuses = [s for v in callback.values() for s in v["statuses"]]
    assert [s["status"] for s in statuses] == ["sent", "failed"]
    assert statuses[1]["errors"][0]["code"] == 131026


def test_throughput_refusals(api: tuple[CloudApi, Callback]) -> None:
    server, _ = api
    server.refuse_next(130429)
    server.refuse_next(80007)
    assert send(server, template(CLIENT, "a", "b"))[1]["error"]["code"] == 130429
    assert send(server, template(CLIENT, "a", "b"))[0] == 429
    assert send(server, template(CLIENT, "a", "b"))[0] == 200


def test_webhooks_are_retried_until_answered_200_and_can_be_replayed(
    api: tuple[CloudApi, Callback],
) -> None:
    server, callback = api
    server.client_says(CLIENT, "Oi")
    callback.status = 503
    assert server.deliver_webhooks() == [503]
    assert server.deliver_webhooks() == [503]
    callback.status = 200
    assert server.deliver_webhooks() == [200]
    assert server.deliver_webhooks() == []
    [hook] = server.delivered
    assert hook.attempts == 3
    assert server.replay(hook) == 200
    assert len(callback.received) == 2  # the duplicate arrives too: receivers drop it


def test_the_signature_is_the_app_secret_s_hmac_of_the_raw_body(
    api: tuple[CloudApi, Callback],
) -> None:
    server, _ = api
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    assert server.post(body) == 200
    assert server.post(body, signature="") == 401
    assert server.post(body, signature=hub_signature("another-secret", body)) == 401


def test_the_handshake_needs_the_verify_token(api: tuple[CloudApi, Callback]) -> None:
    server, callback = api
    assert not server.subscribe(callback.url, "wrong")
