"""Secrets: read from files only, held out of sight, found in systemd's credentials folder.

Calendar passwords, Google credentials, the admin token, the signing key, SMTP and webhook
keys are read from files only; an inline secret (``password = "..."``) is refused with a
hint to use ``password_file``. Under systemd, ``LoadCredential=`` copies files into
``$CREDENTIALS_DIRECTORY``: when that variable is set and the folder holds a file with the
same base name as a configured secret file, that copy is read instead, so a hardened unit
can hand the service secrets its user could not otherwise read. Secret values live in
:class:`Secret`, whose ``repr`` and ``str`` are ``***``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

from daemon.config.kinds import Context, Invalid, Kind
from daemon.config.problems import KeyPath, show
from daemon.errors import UserError


class SecretError(UserError):
    """A secret file became unreadable after the configuration was loaded."""


class Secret:
    """A secret held out of sight: ``repr``, ``str`` and formatting all give ``***``.

    The value is read from its file on first :meth:`reveal` and kept privately (the
    loader reveals each secret once to check it, unless told not to). Surrounding
    whitespace, such as the newline ``echo`` leaves, is dropped.
    """

    __slots__ = ("_path", "_value")

    def __init__(self, path: Path | None = None, *, value: str | None = None) -> None:
        if path is None and value is None:
            raise ValueError("a Secret needs a file path or a value")
        self._path = path
        self._value = value

    @property
    def path(self) -> Path | None:
        """The file the secret is read from (``None`` for one given in code, e.g. tests)."""
        return self._path

    def _read(self) -> str:
        if self._value is None:
            if self._path is None:
                raise FileNotFoundError("no secret file")
            self._value = self._path.read_text(encoding="utf-8").strip()
        return self._value

    def reveal(self) -> str:
        """The secret's value; raises :class:`SecretError` naming the file if unreadable."""
        try:
            return self._read()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise SecretError(f"cannot read secret file {self._path}: {reason}") from None

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        if self._path is None or other._path is None:
            return self is other
        return self._path == other._path

    def __hash__(self) -> int:
        return hash(self._path) if self._path is not None else id(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError("secrets are not pickled")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self


class SecretFile(Kind):
    """The path of a file holding a secret; the file itself is checked unless told not to."""

    holds_secret = True

    def __init__(
        self,
        *,
        example: str,
        min_length: int = 1,
        json_key: bool = False,
        create: str = "create {path} holding the secret, readable only by the daemon's user "
        "(chmod 600 {path})",
    ) -> None:
        self.expected = f'the path of a file holding the secret, like "{example}"'
        self.min_length = min_length
        self.json_key = json_key
        self.create = create

    def locate(self, raw: str, ctx: Context) -> Path:
        """The configured file, or its namesake in ``$CREDENTIALS_DIRECTORY`` if present."""
        configured = ctx.resolve(raw)
        credentials = ctx.environ.get("CREDENTIALS_DIRECTORY")
        if credentials:
            candidate = Path(credentials) / configured.name
            if candidate.is_file():
                return candidate
        return configured

    def convert(self, raw: object, ctx: Context, path: KeyPath) -> Secret:
        if not isinstance(raw, str) or not raw.strip():
            raise Invalid(self.expected, hint="secrets are read from files only")
        location = self.locate(raw.strip(), ctx)
        secret = Secret(location)
        if ctx.check_secrets:
            self._check(secret, location, raw)
        return secret

    def _check(self, secret: Secret, location: Path, raw: str) -> None:
        expected = "a readable file holding the secret"
        try:
            value = secret._read()
        except FileNotFoundError:
            raise Invalid(
                expected,
                found=f"{show(raw)} ({location} does not exist)",
                hint=self.create.format(path=location),
            ) from None
        except OSError as error:
            raise Invalid(
                expected,
                found=f"{show(raw)} ({location}: {error.strerror})",
                hint="the daemon's user must be able to read it; "
                "under systemd, LoadCredential= can hand it over",
            ) from None
        except UnicodeDecodeError:
            raise Invalid(expected, found=f"{location}, which is not UTF-8 text") from None
        if not value:
            raise Invalid(
                expected,
                found=f"{location}, which is empty",
                hint=self.create.format(path=location),
            )
        if len(value) < self.min_length:
            raise Invalid(
                f"a secret of at least {self.min_length} characters",
                found=f"{len(value)} characters in {location}",
                hint=self.create.format(path=location),
            )
        if self.json_key:
            try:
                document = json.loads(value)
            except ValueError:
                document = None
            if not isinstance(document, dict) or "type" not in document:
                raise Invalid(
                    "a Google service-account key or authorized-user token (JSON)",
                    found=f"{location}, which is not one",
                    hint="download a service-account key in the Google Cloud console",
                )
