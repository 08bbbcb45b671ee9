"""Calling a WSGI app in-process, as a server would: one environ builder for every test."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def environ(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
    address: str = "127.0.0.1",
) -> dict[str, Any]:
    """``path`` may carry a query string; header names are given as on the wire."""
    path, _, query = path.partition("?")
    found: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": content_type,
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": address,
    }
    for name, value in (headers or {}).items():
        found["HTTP_" + name.upper().replace("-", "_")] = value
    return found


def call(app: WsgiApp, env: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (in order, repeats kept) and body of one request."""
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"] = int(status.split()[0])
        captured["headers"] = list(response_headers)

    body = b"".join(app(env, start_response))
    return captured["status"], captured["headers"], body
