"""The technician's event: the daemon's own lines first, the client's words last and quoted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from daemon.config import parse_config
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


def test_a_spanish_desk_reads_its_events_in_spanish(tmp_path: Path) -> None:
    technician = '[[technicians]]\nid = "ana"\nname = "Ana Souza"\n[technicians.calendar]\n'
    technician += 'kind = "caldav"\nurl = "http://127.0.0.1:9/ana/work/"\n'
    config = parse_config(
        '[desk]\nlanguage = "es"\n' + technician, path=tmp_path / "x.toml", check_secrets=False
    )
    session = record(description="Pantalla azul")
    event = session_event(
        session,
        config.policy,
        public_url=PUBLIC,
        signer=SIGNER,
        language=config.desk.language,  # as the outbox writes it
        now=NOW,
    )
    assert event.summary == "Relojoaria Central — Atención remota"
    own, quoted = own_and_quoted(event.description)
    assert own[0] == "Responsable: Maria Lima"
    assert own[2] == "Acceso remoto: AnyDesk — ID: 123456789"
    assert "Tolerancia: 10 min; sin check-in hasta entonces, la sesión se reagenda." in own
    assert own[-2:] == ["Sesión: s1", ""]
    assert event.description.endswith(
        "Problema, en palabras del cliente (no verificado):\n> Pantalla azul"
    )
    assert quoted == ["> Pantalla azul"]
