"""The WhatsApp part of the store on each backend: inbound messages once each and in the
order they came, the 24-hour windows, sent messages' statuses and what a failure causes,
and the Cloud API's health."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.store import Inserted, SessionRecord, Store
from daemon.store.whatsapp import RE_ENGAGEMENT, UNDELIVERABLE, InboundMessage, StatusUpdate
from rules.model import Status
from tests.daemon.store_helpers import NOW, open_store
from tests.factories import new_session

PHONE = "+5511987654321"  # the sample booking's number, as the store keeps it


@pytest.fixture
def store(store_at: str | Path) -> Iterator[Store]:
    """The test desk's store, on each backend (``store_at`` in tests/conftest.py)."""
    opened = open_store(store_at)
    yield opened
    opened.close()


def message(
    message_id: str, *, minutes: int = 0, phone: str | None = PHONE, received: int = 0
) -> InboundMessage:
    """A text from ``phone`` sent ``minutes`` after NOW, received ``received`` after NOW."""
    return InboundMessage(
        message_id, (phone or "x")[1:], phone, "text",
        NOW + timedelta(minutes=minutes), NOW + timedelta(minutes=received),
    )  # fmt: skip


def booked(store: Store) -> SessionRecord:
    result = store.insert_booking(new_session(), buffer=timedelta(0), now=NOW)
    assert isinstance(result, Inserted)
    return result.session


def whatsapp_items(store: Store) -> list[dict[str, object]]:
    due = store.due_outbox(NOW + timedelta(days=1))
    return [item.payload for item in due if item.action == "whatsapp"]


def test_each_message_is_recorded_once_and_pending_in_the_order_it_came(store: Store) -> None:
    # Ids that sort against the order of arrival, all received in one second.
    batch = [message("wamid.c"), message("wamid.a"), message("wamid.b", phone=None)]
    assert store.record_webhook(batch, [], now=NOW) == 3
    assert store.record_webhook(batch[:2], [], now=NOW) == 0  # Meta retried
    assert [m.message_id for m in store.pending_inbound()] == ["wamid.c", "wamid.a", "wamid.b"]
    assert store.pending_inbound()[2] == batch[2]
    assert [m.message_id for m in store.pending_inbound(limit=1)] == ["wamid.c"]
    assert store.inbound_outcomes() == {"wamid.a": None, "wamid.b": None, "wamid.c": None}


def test_a_message_is_settled_once_with_the_answers_it_causes(store: Store) -> None:
    session = booked(store)
    store.record_webhook([message("wamid.1")], [], now=NOW)
    answer = {"event": "checked_in", "form": "text"}
    assert store.settle_inbound(
        "wamid.1", "checked_in", now=NOW, session_id=session.id, outbox=[(session.id, answer)]
    )
    assert not store.settle_inbound(
        "wamid.1", "answered", now=NOW, outbox=[(session.id, {"event": "again"})]
    )
    assert store.inbound_outcomes() == {"wamid.1": "checked_in"}
    assert store.pending_inbound() == []
    assert whatsapp_items(store) == [answer]


def test_the_window_opens_with_the_latest_message_and_never_moves_back(store: Store) -> None:
    store.record_webhook([message("wamid.new", minutes=10)], [], now=NOW)
    store.record_webhook([message("wamid.old", minutes=0)], [], now=NOW)  # delivered late
    assert store.window_open(PHONE, NOW + timedelta(hours=24, minutes=9))
    assert not store.window_open(PHONE, NOW + timedelta(hours=24, minutes=10))
    assert not store.window_open("+5511000000000", NOW)
    store.record_webhook([message("wamid.nophone", phone=None)], [], now=NOW)
    assert not store.window_open("x", NOW)  # an id that is no number opens no window


def test_an_automatic_answer_is_given_once_in_a_while(store: Store) -> None:
    every = timedelta(hours=1)
    assert not store.claim_auto_reply(PHONE, NOW, every)  # never wrote: nobody to answer
    store.record_webhook([message("wamid.1")], [], now=NOW)
    assert store.claim_auto_reply(PHONE, NOW, every)
    assert not store.claim_auto_reply(PHONE, NOW + timedelta(minutes=59), every)
    assert store.claim_auto_reply(PHONE, NOW + every, every)


def test_a_number_finds_its_sessions_in_the_statuses_asked(store: Store) -> None:
    session = booked(store)
    assert store.sessions_for_phone(PHONE, [Status.BOOKED]) == [session]
    assert store.sessions_for_phone(PHONE, [Status.IN_PROGRESS, Status.COMPLETED]) == []
    assert store.sessions_for_phone("+5511000000000", [Status.BOOKED]) == []


def test_statuses_only_move_forward(store: Store) -> None:
    session = booked(store)
    for wamid in ("wamid.out2", "wamid.out1"):
        store.record_sent(
            wamid, session_id=session.id, event="booked", form="template", payload={}, now=NOW
        )
    store.record_sent(  # the same id again (a retried call) changes nothing
        "wamid.out2", session_id=None, event="other", form="text", payload={}, now=NOW
    )
    later = NOW + timedelta(minutes=1)
    store.record_webhook(
        [],
        [
            StatusUpdate("wamid.out2", "read", later),
            StatusUpdate("wamid.out2", "delivered", later + timedelta(minutes=1)),  # late
            StatusUpdate("wamid.out1", "sent", later),
            StatusUpdate("wamid.unknown", "read", later),  # another system's message
            StatusUpdate("wamid.out1", "deleted", later),  # a status Meta added since
        ],
        now=later,
    )
    sent = store.whatsapp_messages(session.id)
    assert [(m.wamid, m.event, m.status, m.status_at) for m in sent] == [
        ("wamid.out2", "booked", "read", later),
        ("wamid.out1", "booked", "sent", later),
    ]  # in the order they were sent


def test_a_refused_free_text_is_sent_again_as_its_template(store: Store) -> None:
    session = booked(store)
    payload = {"event": "booked", "form": "text", "template": "sessao_agendada"}
    store.record_sent(
        "wamid.t", session_id=session.id, event="booked", form="text", payload=payload, now=NOW
    )
    failed = StatusUpdate("wamid.t", "failed", NOW, RE_ENGAGEMENT, "Re-engagement message")
    store.record_webhook([], [failed, failed], now=NOW)
    assert whatsapp_items(store) == [{**payload, "form": "template"}]
    [sent] = store.whatsapp_messages(session.id)
    assert (sent.status, sent.error_code, sent.error) == (
        "failed", RE_ENGAGEMENT, "Re-engagement message"
    )  # fmt: skip


def test_an_undeliverable_number_flags_the_session_and_other_failures_are_audited(
    store: Store,
) -> None:
    session = booked(store)
    for wamid in ("wamid.u", "wamid.o"):
        store.record_sent(
            wamid, session_id=session.id, event="booked", form="template", payload={}, now=NOW
        )
    store.record_webhook(
        [],
        [
            StatusUpdate("wamid.u", "failed", NOW, UNDELIVERABLE, "Message undeliverable"),
            StatusUpdate("wamid.o", "failed", NOW, 131000, "Something went wrong"),
        ],
        now=NOW,
    )
    [flagged] = store.flagged_sessions()
    assert flagged.id == session.id and "131026" in (flagged.needs_attention or "")
    actions = [e.action for e in store.audit_log(session.id)]
    assert actions.count("flagged") == 1 and actions.count("delivery_failed") == 1
    assert whatsapp_items(store) == []


def test_health_keeps_the_first_token_refusal_until_a_message_goes_through(
    store: Store,
) -> None:
    health = store.whatsapp_health()
    assert (health.token_refused_at, health.last_error, health.last_ok_at) == (None, None, None)
    store.whatsapp_problem("rate limited", now=NOW)
    assert store.whatsapp_health().token_refused_at is None
    store.whatsapp_problem("token refused (190)", now=NOW, token_refused=True)
    later = NOW + timedelta(minutes=5)
    store.whatsapp_problem("token refused again", now=later, token_refused=True)
    health = store.whatsapp_health()
    assert (health.token_refused_at, health.last_error) == (NOW, "token refused again")
    store.record_sent("wamid.ok", session_id=None, event="x", form="text", payload={}, now=later)
    health = store.whatsapp_health()
    assert (health.token_refused_at, health.last_error, health.last_ok_at) == (None, None, later)
