"""What WhatsApp messages say: parameters Meta accepts, and the template in the desk's
language with the five parameters the approved templates take."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from daemon.whatsapp.compose import Composer, parameter
from tests.daemon.desk import make_desk, monday
from tests.factories import booking_request


@given(st.text(max_size=80))
def test_a_parameter_is_always_one_non_empty_line_meta_accepts(text: str) -> None:
    value = parameter(text)
    assert value and value.strip() == value
    assert not re.search(r"[\n\t\r]| {5,}", value)


def test_the_template_carries_date_time_technician_tool_and_link(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, monday(7), whatsapp=True)
    outcome = desk.service.book(booking_request(monday(9), description="Linha 1\nLinha 2"))
    assert outcome.session is not None
    message = Composer(desk.config, desk.signer).template("reminder", outcome.session)
    template = message["template"]
    assert message["to"] == "5511987654321" and message["type"] == "template"
    assert template["name"] == "sessao_lembrete"
    assert template["language"] == {"code": "pt_BR"}
    [body] = template["components"]
    texts = [p["text"] for p in body["parameters"]]
    assert texts[:4] == ["segunda-feira, 30 de novembro", "09:00", texts[2], "AnyDesk"]
    assert texts[2] in ("Ana Souza", "Bruno Lima")
    assert texts[4].startswith(f"{desk.config.server.public_url}/manage/")
    assert "Linha" not in str(message) and "Relojoaria" not in str(message)
