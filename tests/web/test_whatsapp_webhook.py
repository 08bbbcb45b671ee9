"""``/webhooks/whatsapp`` on its own: the handshake, the signature over the raw body, each
message id recorded once, and no 5xx whatever a signed or unsigned body holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.metrics import Metrics
from daemon.web.app import build_app
from daemon.web.http import App
from daemon.whatsapp import signature_valid
from tests import wsgi
from tests.daemon.desk import (
    WHATSAPP_APP_SECRET,
    WHATSAPP_PHONE_ID,
    WHATSAPP_VERIFY,
    Desk,
    make_desk,
    monday,
)
from tests.servers.whatsapp import hub_signature

PATH = "/webhooks/whatsapp"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Desk, App]:
    desk = make_desk(Path(tmp_path_factory.mktemp("wa")), monday(9), whatsapp=True)
    return desk, build_app(desk.service, desk.signer, Metrics())


def post(app: App, body: bytes, signature: str | None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    status, _, data = wsgi.call(app, wsgi.environ("POST", PATH, body, headers=headers))
    return status, data


def notification(message_id: str, sender: str, phone_number_id: str = WHATSAPP_PHONE_ID) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551140000000", "phone_number_id": phone_number_id},
        "messages": [
            {"from": sender, "id": message_id, "timestamp": "1796036400", "type": "text",
             "text": {"body": "Oi"}},
        ],
    }  # fmt: skip
    document = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        ({"hub.mode": "subscribe", "hub.verify_token": WHATSAPP_VERIFY, "hub.challenge": "42"},
         200, b"42"),
        ({"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "42"}, 403, None),
        ({"hub.mode": "subscribe", "hub.challenge": "42"}, 403, None),
        ({"hub.mode": "unsubscribe", "hub.verify_token": WHATSAPP_VERIFY, "hub.challenge": "4"},
         400, None),
    ],
)  # fmt: skip
def test_the_handshake_answers_the_challenge_only_for_the_verify_token(
    site: tuple[Desk, App], query: dict[str, str], status: int, body: bytes | None
) -> None:
    _, app = site
    answer, _, data = wsgi.call(app, wsgi.environ("GET", f"{PATH}?{urlencode(query)}", b""))
    assert answer == status
    if body is not None:
        assert data == body


def test_only_a_body_signed_with_the_app_secret_is_recorded_and_only_once(
    site: tuple[Desk, App],
) -> None:
    desk, app = site
    body = notification("wamid.once", "551187654321")
    assert post(app, body, None)[0] == 401
    assert post(app, body, "sha256=" + "0" * 64)[0] == 403
    assert post(app, body, hub_signature("another-secret", body))[0] == 403
    assert post(app, body + b" ", hub_signature(WHATSAPP_APP_SECRET, body))[0] == 403
    assert "wamid.once" not in desk.store.inbound_outcomes()
    signed = hub_signature(WHATSAPP_APP_SECRET, body)
    assert post(app, body, signed) == (200, b'{"received":1}')
    assert post(app, body, signed) == (200, b'{"received":0}')  # Meta's retry
    [pending] = [m for m in desk.store.pending_inbound() if m.message_id == "wamid.once"]
    assert pending.phone == "+5511987654321"  # the ninth digit given back
    # Another number of the same business account is not ours to act on.
    other = notification("wamid.other", "551187654321", phone_number_id="999")
    assert post(app, other, hub_signature(WHATSAPP_APP_SECRET, other))[0] == 200
    assert "wamid.other" not in desk.store.inbound_outcomes()


def test_the_signature_check_is_the_hmac_of_the_raw_bytes() -> None:
    body = b'{"a": 1}'
    assert signature_valid("k", body, hub_signature("k", body))
    assert signature_valid("k", body, " " + hub_signature("k", body) + " ")
    assert not signature_valid("k", b'{"a":1}', hub_signature("k", body))
    assert not signature_valid("k", body, hub_signature("k", body).upper())
    assert not signature_valid("k", body, "")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=10,
)
metadata = st.just({"phone_number_id": WHATSAPP_PHONE_ID}) | json_values
value = st.fixed_dictionaries(
    {"metadata": metadata}, optional={"messages": json_values, "statuses": json_values}
)
change = st.fixed_dictionaries(
    {"field": st.just("messages") | json_values}, optional={"value": value}
)
entry = st.fixed_dictionaries({}, optional={"changes": st.lists(change, max_size=2)})
shaped = st.fixed_dictionaries(
    {"object": st.sampled_from(["whatsapp_business_account", "page"]) | json_values},
    optional={"entry": st.lists(entry, max_size=2)},
)


@given(
    body=st.one_of(st.binary(max_size=100), json_values.map(lambda v: json.dumps(v).encode()),
                   shaped.map(lambda v: json.dumps(v).encode())),
    signed=st.booleans(),
)  # fmt: skip
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_body_signed_or_not_gets_a_5xx(
    site: tuple[Desk, App], body: bytes, signed: bool
) -> None:
    _, app = site
    signature = hub_signature(WHATSAPP_APP_SECRET, body) if signed else "sha256=00"
    status, data = post(app, body, signature)
    assert status < 500, data
    assert status == 200 or json.loads(data)["error"]["code"]


def test_without_a_whatsapp_section_the_routes_are_not_there(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, monday(9))
    app = build_app(desk.service, desk.signer, Metrics())
    body: Any = notification("wamid.x", "551187654321")
    assert post(app, body, hub_signature(WHATSAPP_APP_SECRET, body))[0] == 404
