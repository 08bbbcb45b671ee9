"""How the demo writes and keeps its configuration (no server is started here: the demo
run end to end is in tests/e2e/test_demo.py)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from daemon.clock import FixedClock
from daemon.config import ConfigError
from daemon.demo import _demo_staff, prepare
from daemon.errors import UserError
from daemon.staff import verify_password
from daemon.store import Store
from tests.daemon.desk import monday


def test_a_new_folder_gets_a_configuration_that_says_it_is_kept_and_how_to_run_it(
    tmp_path: Path,
) -> None:
    config, caldav_port = prepare(tmp_path, None, None)
    path = tmp_path / "expediente.toml"
    assert config.path == path and (config.server.port, caldav_port) == (8080, 5232)
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    text = "\n".join(header)
    assert "kept" in text and "edit it and start the demo again" in text
    assert f"#   expediente run --config {shlex.quote(str(path))}" in header
    radicale = f"{shlex.quote(sys.executable)} -m radicale --config "
    assert f"#   {radicale}{shlex.quote(str(tmp_path / 'radicale.conf'))}" in header


def test_the_ports_chosen_for_a_new_folder_are_written(tmp_path: Path) -> None:
    config, caldav_port = prepare(tmp_path, 9123, 9124)
    assert (config.server.port, caldav_port) == (9123, 9124)
    assert config.server.public_url == "http://127.0.0.1:9123"
    assert {c.url for c in config.calendars} >= {"http://127.0.0.1:9124/ana/work/"}


def test_an_edited_configuration_is_kept_on_the_next_start(tmp_path: Path) -> None:
    prepare(tmp_path, 9123, 9124)
    path = tmp_path / "expediente.toml"
    edited = (
        path.read_text()
        .replace('name = "Suporte Técnico (demo)"', 'name = "Suporte Editado"')
        .replace('slot_step = "30m"', 'slot_step = "15m"')
    )
    path.write_text(edited)
    config, caldav_port = prepare(tmp_path, None, None)  # no flags: the file's ports
    assert path.read_text() == edited
    assert config.desk.name == "Suporte Editado"
    assert (config.server.port, caldav_port) == (9123, 9124)
    # The same ports given again agree with the file: no complaint.
    assert prepare(tmp_path, 9123, 9124)[1] == 9124


@pytest.mark.parametrize(
    ("port", "caldav_port", "says"),
    [
        (8080, None, "--port 8080: the demo's configuration"),
        (None, 5232, "--caldav-port 5232: the technicians' calendars in"),
    ],
)
def test_flags_that_disagree_with_a_kept_configuration_are_an_error(
    tmp_path: Path, port: int | None, caldav_port: int | None, says: str
) -> None:
    prepare(tmp_path, 9123, 9124)
    path = tmp_path / "expediente.toml"
    before = path.read_text()
    with pytest.raises(UserError) as raised:
        prepare(tmp_path, port, caldav_port)
    assert says in str(raised.value) and str(path) in str(raised.value)
    assert path.read_text() == before


def test_a_broken_edit_is_reported_and_left_for_the_admin_to_fix(tmp_path: Path) -> None:
    prepare(tmp_path, None, None)
    path = tmp_path / "expediente.toml"
    broken = path.read_text().replace('horizon = "30d"', 'horizon = "soon"')
    path.write_text(broken)
    with pytest.raises(ConfigError) as raised:
        prepare(tmp_path, None, None)
    assert "horizon" in str(raised.value)
    assert path.read_text() == broken


def test_the_demo_has_a_desk_console_account(tmp_path: Path) -> None:
    config, _ = prepare(tmp_path, None, None)
    path = _demo_staff(config, tmp_path, FixedClock(monday(7)))
    assert path.stat().st_mode & 0o077 == 0
    with Store(config.store.path) as store:
        account = store.staff_account("demo")
        assert account is not None
        assert verify_password(account.password_hash, path.read_text().strip())
    assert _demo_staff(config, tmp_path, FixedClock(monday(8))) == path  # kept, not remade
    with Store(config.store.path) as store:
        again = store.staff_account("demo")
        assert again is not None and again.password_hash == account.password_hash
