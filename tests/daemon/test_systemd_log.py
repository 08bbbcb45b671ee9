"""sd_notify over a real datagram socket; journald-aware log format."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from daemon.log import JournalFormatter
from daemon.systemd import Notifier


def test_notify_sends_datagrams_to_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"})
        assert notifier.enabled and notifier.watchdog_interval == 10.0
        assert notifier.ready("serving")
        assert server.recv(256) == b"READY=1\nSTATUS=serving"
        assert notifier.watchdog()
        assert server.recv(256) == b"WATCHDOG=1"


def test_without_systemd_notify_is_a_quiet_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready() and notifier.watchdog_interval is None


def test_watchdog_for_another_pid_is_ignored() -> None:
    assert Notifier({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}).watchdog_interval is None


def test_journal_lines_carry_priority_and_no_timestamp() -> None:
    formatter = JournalFormatter("%(name)s: %(message)s")
    record = logging.LogRecord(
        "expediente", logging.WARNING, __file__, 1, "calendar down", (), None
    )
    assert formatter.format(record) == "<4>expediente: calendar down"
