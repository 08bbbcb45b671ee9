"""``expediente staff add|remove|list``: the desk console's accounts, kept in the store.

A password never appears on the command line (shell history, ``ps``): it is read from
``--password-file`` (its first line), asked twice at a prompt without echo, or, when
standard input is not a terminal, read from its first line. Each
change is in the store's audit log, by ``admin-cli``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from daemon.clock import Clock
from daemon.errors import UserError

ACTOR = "admin-cli"


def add_parser(commands: Any) -> None:
    """Mount ``staff`` on the main parser's subcommands."""
    staff = commands.add_parser("staff", help="desk console accounts (add, remove, list)")
    actions = staff.add_subparsers(dest="staff_command", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="create an account (or --replace its password)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--config", required=True, type=Path)
    add.add_argument(
        "--password-file",
        type=Path,
        help="read the password from this file's first line (default: ask at a prompt)",
    )
    add.add_argument(
        "--replace",
        action="store_true",
        help="the account exists: set a new password (logs it out everywhere)",
    )
    remove = actions.add_parser("remove", help="delete an account and log it out")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--config", required=True, type=Path)
    listing = actions.add_parser("list", help="the accounts and their last login")
    listing.add_argument("--config", required=True, type=Path)


def run(args: argparse.Namespace, clock: Clock) -> int:
    from daemon.config import load_config
    from daemon.staff import hash_password, valid_name
    from daemon.store import Store

    config = load_config(args.config, check_secrets=False)
    store = Store(config.store.path)
    now = clock.now()
    try:
        if args.staff_command == "list":
            accounts = store.staff_accounts()
            zone = config.policy.timezone
            for account in accounts:
                last = account.last_login_at
                seen = f"{last.astimezone(zone):%Y-%m-%d %H:%M}" if last else "never"
                print(f"{account.name}  last login: {seen}")
            print(f"{len(accounts)} account(s)")
            return 0
        name = valid_name(args.name)
        if args.staff_command == "remove":
            if not store.remove_staff(name, now=now, actor=ACTOR):
                raise UserError(f"no account {name!r} (see: expediente staff list)")
            print(f"{name}: removed")
            return 0
        if store.staff_account(name) is not None and not args.replace:
            raise UserError(f"the account {name!r} exists; to set a new password add --replace")
        password = _password(args.password_file)
        store.add_staff(name, hash_password(password), now=now, actor=ACTOR, replace=args.replace)
        print(f"{name}: {'password set' if args.replace else 'added'}")
        return 0
    finally:
        store.close()


def _password(path: Path | None) -> str:
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read the password file {path}: {error}") from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise UserError(f"the password file {path} is empty (the password is its first line)")
        return lines[0]
    if not sys.stdin.isatty():  # piped in (a script): the first line, as from a file
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UserError("no password on standard input: give --password-file FILE")
        return line
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise UserError("the two passwords differ; nothing was changed")
    return first
