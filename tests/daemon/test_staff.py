"""Desk staff accounts: the CLI that manages them, the store that keeps them, Argon2id."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from daemon.cli import main
from daemon.clock import FixedClock
from daemon.config import load_config
from daemon.errors import UserError
from daemon.staff import hash_password, needs_rehash, valid_name, verify_password
from daemon.store import Store
from tests.daemon.desk import monday, write_config
from tests.daemon.store_helpers import open_store as open_test_store

PASSWORD = "correct horse battery"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def staff(capsys: pytest.CaptureFixture[str], *argv: str, minute: int = 0) -> tuple[int, str, str]:
    code = main(["staff", *argv], clock=FixedClock(monday(8, minute)))
    out, err = capsys.readouterr()
    return code, out, err


def password_file(tmp_path: Path, text: str = PASSWORD + "\n") -> str:
    path = tmp_path / "pw"
    path.write_text(text)
    return str(path)


def open_store(config_path: Path) -> Store:
    return Store(load_config(config_path, check_secrets=False).store.path)


def test_add_list_remove(
    capsys: pytest.CaptureFixture[str], config_path: Path, tmp_path: Path
) -> None:
    pw = password_file(tmp_path)
    code, out, _ = staff(
        capsys, "add", "Carla", "--config", str(config_path), "--password-file", pw
    )
    assert code == 0 and out.strip() == "carla: added"
    code, out, _ = staff(capsys, "list", "--config", str(config_path))
    assert code == 0 and out.splitlines() == ["carla  last login: never", "1 account(s)"]
    with open_store(config_path) as store:
        account = store.staff_account("carla")
        assert account is not None and account.password_hash.startswith("$argon2id$")
        assert PASSWORD not in account.password_hash
        assert verify_password(account.password_hash, PASSWORD)
        assert [e.action for e in store.audit_log()][:1] == ["staff_added"]
        assert store.audit_log()[0].actor == "admin-cli"
    code, out, _ = staff(capsys, "remove", "carla", "--config", str(config_path))
    assert code == 0 and out.strip() == "carla: removed"
    code, out, _ = staff(capsys, "list", "--config", str(config_path))
    assert out.splitlines() == ["0 account(s)"]


def test_adding_an_existing_account_needs_replace_which_logs_it_out(
    capsys: pytest.CaptureFixture[str], config_path: Path, tmp_path: Path
) -> None:
    pw = password_file(tmp_path)
    assert (
        staff(capsys, "add", "carla", "--config", str(config_path), "--password-file", pw)[0] == 0
    )
    with open_store(config_path) as store:
        store.start_staff_login("t" * 64, "carla", now=monday(8), address="127.0.0.1")
    code, _, err = staff(
        capsys, "add", "carla", "--config", str(config_path), "--password-file", pw
    )
    assert code == 2 and "exists" in err and "--replace" in err
    new = password_file(tmp_path, "another long secret\n")
    code, out, _ = staff(
        capsys, "add", "carla", "--config", str(config_path), "--password-file", new, "--replace"
    )
    assert code == 0 and out.strip() == "carla: password set"
    with open_store(config_path) as store:
        account = store.staff_account("carla")
        assert account is not None and verify_password(account.password_hash, "another long secret")
        assert store.staff_login("t" * 64) is None


@pytest.mark.parametrize(
    ("argv", "text", "expected"),
    [
        (["add", "Ana Maria"], PASSWORD, "not valid"),
        (["add", "carla"], "short", "too short"),
        (["add", "carla"], "", "empty"),
        (["remove", "nobody"], None, "no account 'nobody'"),
    ],
)
def test_bad_input_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
    config_path: Path,
    tmp_path: Path,
    argv: list[str],
    text: str | None,
    expected: str,
) -> None:
    extra = [] if text is None else ["--password-file", password_file(tmp_path, text)]
    code, _, err = staff(capsys, *argv, "--config", str(config_path), *extra)
    assert code == 2 and expected in err, err


def test_the_password_comes_from_standard_input_when_it_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert staff(capsys, "add", "carla", "--config", str(config_path))[0] == 0
    with open_store(config_path) as store:
        account = store.staff_account("carla")
        assert account is not None and verify_password(account.password_hash, PASSWORD)


def test_passwords_are_argon2id_and_unknown_names_never_verify() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$") and not needs_rehash(stored)
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "x")
    assert not verify_password(None, PASSWORD)
    assert not verify_password("not a hash", PASSWORD)
    assert hash_password(PASSWORD) != stored  # salted


def test_names_are_normalised_or_refused() -> None:
    assert valid_name(" Carla.S ") == "carla.s"
    for bad in ("", "-x", "a b", "x" * 65, "ç"):
        with pytest.raises(UserError):
            valid_name(bad)


@pytest.fixture
def store(store_at: str | Path) -> Iterator[Store]:
    """A store on each backend (``store_at`` in tests/conftest.py)."""
    opened = open_test_store(store_at)
    yield opened
    opened.close()


def test_logins_and_failures_in_the_store(store: Store) -> None:
    now = monday(8)
    assert store.add_staff("carla", hash_password(PASSWORD), now=now, actor="admin-cli")
    store.record_login_failure("10.0.0.1", "carla", now=now, forget_before=now)
    store.record_login_failure("10.0.0.2", "carla", now=now, forget_before=now)
    by_address, by_name = store.login_failures("10.0.0.1", "carla", now - timedelta(1))
    assert len(by_address) == 1 and len(by_name) == 2
    later = now + timedelta(minutes=5)
    store.start_staff_login("h" * 64, "carla", now=later, address="10.0.0.1")
    assert store.login_failures("10.0.0.9", "carla", now)[1] == []  # a login forgives
    login = store.staff_login("h" * 64)
    assert login is not None and login.staff_name == "carla" and login.created_at == later
    store.touch_staff_login("h" * 64, later + timedelta(minutes=1))
    login = store.staff_login("h" * 64)
    assert login is not None and login.last_seen_at == later + timedelta(minutes=1)
    account = store.staff_account("carla")
    assert account is not None and account.last_login_at == later
    assert store.end_staff_login("h" * 64, now=later) == "carla"
    assert store.staff_login("h" * 64) is None
    actions = [(e.actor, e.action) for e in store.audit_log()]
    assert ("staff:carla", "staff_logout") in actions
    assert ("staff:carla", "staff_login") in actions
    assert store.login_failures("10.0.0.1", "carla", now - timedelta(1)) == ([], [])


def test_logins_past_either_expiry_are_pruned(store: Store) -> None:
    now = monday(8)
    store.add_staff("carla", hash_password(PASSWORD), now=now, actor="admin-cli")
    store.start_staff_login("a" * 64, "carla", now=now - timedelta(hours=13), address="x")
    store.touch_staff_login("a" * 64, now)  # active, but past the absolute expiry
    store.start_staff_login("b" * 64, "carla", now=now - timedelta(minutes=31), address="x")
    store.start_staff_login("c" * 64, "carla", now=now - timedelta(minutes=5), address="x")
    removed = store.prune_staff_logins(
        idle_before=now - timedelta(minutes=30), created_before=now - timedelta(hours=12)
    )
    assert removed == 2
    assert [store.staff_login(t * 64) is not None for t in "abc"] == [False, False, True]


def test_a_login_is_never_moved_back_and_ends_with_its_account(store: Store) -> None:
    now = monday(8)
    store.add_staff("carla", hash_password(PASSWORD), now=now, actor="admin-cli")
    store.add_staff("ana", hash_password(PASSWORD), now=now, actor="admin-cli")
    store.start_staff_login("a" * 64, "carla", now=now, address="x")
    store.touch_staff_login("a" * 64, now - timedelta(minutes=1))  # a slow request's late word
    login = store.staff_login("a" * 64)
    assert login is not None and login.last_seen_at == now
    store.set_staff_hash("carla", "$argon2id$rehashed")
    assert store.staff_login("a" * 64) is not None, "a re-hash logs nobody out"
    assert [a.name for a in store.staff_accounts()] == ["ana", "carla"]
    assert not store.add_staff("carla", "$argon2id$other", now=now, actor="admin-cli")
    assert store.remove_staff("carla", now=now, actor="admin-cli")
    assert store.staff_login("a" * 64) is None and store.staff_account("carla") is None
    assert not store.remove_staff("carla", now=now, actor="admin-cli")
    assert store.end_staff_login("a" * 64, now=now) is None


def test_failures_older_than_the_window_are_forgotten_as_new_ones_come(store: Store) -> None:
    now = monday(8)
    for minutes in (30, 20, 10):
        store.record_login_failure(
            "10.0.0.1",
            "nobody",
            now=now - timedelta(minutes=minutes),
            forget_before=now - timedelta(hours=1),
        )
    store.record_login_failure(
        "10.0.0.1", "nobody", now=now, forget_before=now - timedelta(minutes=15)
    )
    by_address, by_name = store.login_failures("10.0.0.1", "nobody", now - timedelta(days=1))
    assert by_address == by_name == [now - timedelta(minutes=10), now]
    assert [e.action for e in store.audit_log()].count("staff_login_failed") == 4
