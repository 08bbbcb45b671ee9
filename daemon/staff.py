"""Desk staff accounts: names and passwords, for the CLI that manages them and the console's
login.

Passwords are hashed with Argon2id (argon2-cffi's ``PasswordHasher``, its default,
RFC 9106 "low memory" parameters: 64 MiB, 3 passes), a memory-hard KDF, so a stolen
database costs a guesser memory as well as time per try. The hash string carries its own
parameters and salt; a hash made with weaker parameters than today's is re-made at the
next successful login (:func:`needs_rehash`).

A login for a name with no account still spends one verification on a fixed hash, so the
answer's timing does not tell which names exist.

Argon2 is loaded, and the fixed hash made, at the first password this process hashes or
checks, not at import: making the hash takes its 64 MiB, which at import was the daemon's
highest memory of a whole run (every daemon imports this module for the console's login
page; most never see a login). The first login of a process makes the fixed hash whichever
name it gives, so that one costs the same for a known and an unknown name too.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING

from daemon.errors import UserError

if TYPE_CHECKING:
    from argon2 import PasswordHasher

NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")
NAME_RULE = (
    "1-64 characters: lower-case letters, digits and . _ @ - (starting with a letter or digit)"
)
MIN_PASSWORD = 10  # characters
MAX_PASSWORD = 1024  # a form field, not a file; Argon2 itself takes any length

_lock = threading.Lock()
_argon2: tuple[PasswordHasher, str] | None = None


def _hasher() -> tuple[PasswordHasher, str]:
    """The hasher, and the hash an unknown name is verified against (see the module
    docstring), made once per process."""
    global _argon2
    with _lock:
        if _argon2 is None:
            from argon2 import PasswordHasher

            hasher = PasswordHasher()
            _argon2 = (hasher, hasher.hash("expediente: no such account"))
        return _argon2


def valid_name(name: str) -> str:
    """``name`` as stored (lower case), or ``UserError`` saying what a name may be."""
    normal = name.strip().lower()
    if not NAME.fullmatch(normal):
        raise UserError(f"staff name {name!r} is not valid: {NAME_RULE}")
    return normal


def check_password(password: str) -> str:
    """``password`` unchanged, or ``UserError`` saying what is wrong with it."""
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password is too long: at most {MAX_PASSWORD} characters")
    if password != password.strip():
        raise UserError("the password starts or ends with spaces (a copy-paste slip?)")
    return password


def hash_password(password: str) -> str:
    hasher, _ = _hasher()
    return hasher.hash(check_password(password))


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no such account, always False)."""
    if len(password) > MAX_PASSWORD:
        return False
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    hasher, decoy = _hasher()
    try:
        return hasher.verify(stored or decoy, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    from argon2.exceptions import InvalidHashError

    hasher, _ = _hasher()
    try:
        return hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return False
