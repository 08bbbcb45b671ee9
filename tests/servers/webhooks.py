"""A real webhook receiver for tests, and the deploy guide's recipe for checking what it got.

:class:`Receiver` is an HTTP server on 127.0.0.1 that records each POST and answers what
the test sets; :func:`deploy_guide_webhooks` runs the "Webhooks" section of
``deploy/README.md`` as an admin would paste it, so the guide is tested with the daemon.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.servers.local import LocalHttp, QuietHandler

DEPLOY_GUIDE = Path(__file__).resolve().parents[2] / "deploy" / "README.md"


class Receiver(LocalHttp):
    """A webhook receiver: records each request, answers ``status`` (and headers)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes, str]] = []
        self.status = 204
        self.headers: dict[str, str] = {}
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.requests.append((dict(self.headers.items()), body, self.path))
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._serve(Handler)
        self.url = f"http://127.0.0.1:{self.port}/hook"


def deploy_guide_webhooks(secrets: Path) -> Callable[..., bool]:
    """Run the deploy guide's webhook section as written: its command makes the key file
    (in ``secrets`` instead of /etc/expediente/secrets), its Python is the receiver's check."""
    section = DEPLOY_GUIDE.read_text(encoding="utf-8").split("\n## Webhooks\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    shell = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    python = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert shell is not None and python is not None, "the guide shows both steps"
    [make_key] = [line for line in shell.group(1).splitlines() if "head -c" in line]
    command = make_key.removeprefix("sudo sh -c '").removesuffix("'")
    subprocess.run(
        ["sh", "-c", command.replace("/etc/expediente/secrets", str(secrets))], check=True
    )
    namespace: dict[str, Any] = {}
    exec(compile(python.group(1), str(DEPLOY_GUIDE), "exec"), namespace)  # noqa: S102 - the guide's own code
    verify: Callable[..., bool] = namespace["verify"]
    return verify
