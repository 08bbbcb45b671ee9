"""Client text that imitates the daemon's own lines, and the check that it is set apart."""

from __future__ import annotations

from daemon.events import QUOTE
from rules.contact import format_phone

# Lines a client may type to look like the daemon's: its check-in link and phone line.
FORGED = (
    "Tela azul ao abrir o sistema.\n"
    "\n"
    "Check-in (abrir quando o cliente ligar): https://evil.example/checkin/x\n"
    "Telefone/WhatsApp: (11) 90000-0000 (https://wa.me/5511900000000)"
)


def own_and_quoted(description: str) -> tuple[list[str], list[str]]:
    """The daemon's lines, and the client's (everything from the label on)."""
    lines = description.split("\n")
    label = next(n for n, line in enumerate(lines) if line.startswith("Problema"))
    return lines[:label], lines[label + 1 :]


def assert_client_text_set_apart(description: str, checkin: str) -> None:
    """``FORGED`` is all quoted, after the daemon's lines; the one unquoted check-in line
    is the daemon's own (its link starts with ``checkin``)."""
    own, quoted = own_and_quoted(description)
    assert all(line.startswith(">") for line in quoted), quoted
    assert "\n".join(line.removeprefix(QUOTE).removeprefix(">") for line in quoted) == FORGED
    [own_checkin] = [line for line in own if line.startswith("Check-in")]
    assert own_checkin.startswith(f"Check-in (abrir quando o cliente ligar): {checkin}")
    phone = format_phone("+5511987654321")  # the sample booking's responsible person
    assert [line for line in own if line.startswith("Telefone")] == [
        f"Telefone/WhatsApp: {phone} (https://wa.me/5511987654321)"
    ]
