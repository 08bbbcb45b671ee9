"""The technician's event: the daemon's own lines first, the client's words last and quoted."""

from __future__ import annotations

from datetime import UTC, datetime

from daemon.events import QUOTE, checkin_url, session_event
from daemon.signing import Signer
from tests.daemon.forged import FORGED, assert_client_text_set_apart, own_and_quoted
from tests.factories import session_record as record
from tests.rules.factories import seed_policy

NOW = datetime(2026, 11, 30, 10, tzinfo=UTC)
POLICY = seed_policy()
SIGNER = Signer(b"signing-key-for-tests-0123456789")
PUBLIC = "https://agenda.example.com"


def test_the_clients_words_come_last_quoted_under_a_label() -> None:
    session = record(description=FORGED)
    event = session_event(session, POLICY, public_url=PUBLIC, signer=SIGNER, now=NOW)
    assert_client_text_set_apart(event.description, checkin_url(PUBLIC, SIGNER, session, POLICY))
    own, quoted = own_and_quoted(event.description)
    assert own[-2:] == [f"Sessão: {session.id}", ""]
    assert quoted[:2] == ["> Tela azul ao abrir o sistema.", ">"]


def test_no_description_no_label() -> None:
    event = session_event(record(description=""), POLICY, public_url=PUBLIC, signer=SIGNER, now=NOW)
    assert "Problema" not in event.description and QUOTE not in event.description
    assert event.description.endswith("Sessão: s1")


def test_the_label_is_in_the_desks_language() -> None:
    session = record(description="blue screen")
    event = session_event(session, POLICY, public_url=PUBLIC, signer=SIGNER, language="en", now=NOW)
    assert event.description.endswith(
        "Problem, in the client's words (not verified):\n> blue screen"
    )
