"""A desk with the pages mounted, and a small cookie-keeping WSGI client for its forms."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from daemon.web.api import Api
from daemon.web.csrf import OriginGuard
from daemon.web.http import App, Router
from daemon.web.pages import Pages
from tests import wsgi
from tests.daemon.desk import Desk, make_desk


def pages_app(desk: Desk) -> App:
    """The API and the pages on one router, as the daemon serves them."""
    router = Router()
    Api(desk.service, desk.signer).routes(router)
    pages = Pages(desk.service, desk.signer)
    pages.routes(router)
    public_url = desk.config.server.public_url
    return App(router, error_page=pages.error_page, guard=OriginGuard(public_url))


def pages_desk(folder: Path, now: datetime) -> Desk:
    desk = make_desk(folder, now)
    desk.app = pages_app(desk)
    return desk


@dataclass
class Page:
    status: int
    headers: list[tuple[str, str]]
    text: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def field(self, name: str) -> str:
        """A hidden field's value from the page (CSRF token, form key)."""
        match = re.search(rf'name="{name}" value="([^"]*)"', self.text)
        assert match, f"no {name} field on the page"
        return match.group(1)

    def radios(self) -> list[str]:
        return re.findall(r'name="start" id="[^"]+" value="([^"]+)"', self.text)


@dataclass
class Client:
    """Keeps cookies like a browser; ``address`` is the REMOTE_ADDR of every request."""

    app: App
    address: str = "127.0.0.1"
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Page:
        raw = urlencode(form or {}).encode()
        all_headers = dict(headers or {})
        if self.cookies:
            all_headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        env = wsgi.environ(
            method,
            path,
            raw,
            content_type="application/x-www-form-urlencoded",
            headers=all_headers,
            address=self.address,
        )
        status, response_headers, body = wsgi.call(self.app, env)
        for name, value in response_headers:
            if name.lower() == "set-cookie":
                pair = value.split(";")[0]
                key, _, cookie = pair.partition("=")
                self.cookies[key] = cookie
        return Page(status, response_headers, body.decode())

    def get(self, path: str, headers: dict[str, str] | None = None) -> Page:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict[str, str], headers: dict[str, str] | None = None) -> Page:
        return self.request("POST", path, form, headers)

    def submit(self, page: Page, path: str, form: dict[str, str]) -> Page:
        """POST ``form`` with the CSRF token and form key of ``page``, as its form would."""
        hidden = {"csrf_token": page.field("csrf_token")}
        if 'name="form_key"' in page.text:
            hidden["form_key"] = page.field("form_key")
        return self.post(path, {**hidden, **form})
