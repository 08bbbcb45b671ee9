"""Google credentials from the file an admin downloaded: a service-account key or an OAuth
``authorized_user`` token; every way the file can be wrong is a :class:`BadConfiguration`
that says what to do, and no secret ever reaches a message."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import google.oauth2.credentials
from google.oauth2 import service_account

from connectors.base import BadConfiguration, brief


def _load_credentials(path: Path, subject: str | None, scopes: Sequence[str], calendar: str) -> Any:
    """Credentials from a service-account key or an ``authorized_user`` file."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadConfiguration(
            f"cannot read credentials_file {path}: {exc.strerror}", calendar=calendar
        ) from None
    except ValueError:
        raise BadConfiguration(
            f"credentials_file {path} is not JSON; download the key again", calendar=calendar
        ) from None
    kind = info.get("type") if isinstance(info, dict) else None
    try:
        if kind == "service_account":
            credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=list(scopes)
            )
            return credentials.with_subject(subject) if subject else credentials
        if kind == "authorized_user":
            if subject:
                raise BadConfiguration(
                    "subject (domain-wide delegation) needs a service-account key, "
                    f"but {path} is an OAuth user token",
                    calendar=calendar,
                )
            user = google.oauth2.credentials.Credentials.from_authorized_user_info(info)  # type: ignore[no-untyped-call]
            token_uri = info.get("token_uri")
            # The library always puts Google's token endpoint here; the file's own wins.
            return user.with_token_uri(token_uri) if isinstance(token_uri, str) else user
    except (ValueError, KeyError) as exc:
        # The library names the missing field; no secret is in the message.
        raise BadConfiguration(
            f"credentials_file {path} is incomplete: {brief(exc)}", calendar=calendar
        ) from None
    raise BadConfiguration(
        f"credentials_file {path} has type {kind!r}; expected a service-account key "
        "(service_account) or an OAuth user token (authorized_user)",
        calendar=calendar,
    )
