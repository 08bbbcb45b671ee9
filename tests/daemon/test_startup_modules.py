"""A daemon loads no library for a feature its desk has not configured.

Every module a process imports stays in its memory for good: the PostgreSQL driver, the
Google client and Argon2 (the console's passwords) are loaded when a desk uses them, not by
every daemon; and of the public holidays, the desk's country alone (see
``daemon/config/holidays_internals.py``). What every desk uses on its main path (the
booking pages' templates, the CalDAV client once a calendar syncs) is not deferred. Each
check runs in a fresh interpreter: this one has loaded everything the suite needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.daemon.desk import write_config

ROOT = Path(__file__).resolve().parents[2]

# Loaded only by a desk that configures them: [store] kind = "postgresql", a Google calendar,
# a console login (or `expediente staff`).
UNCONFIGURED = ("psycopg", "psycopg_pool", "googleapiclient", "google.auth", "httplib2", "argon2")


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout))


def test_a_caldav_desk_on_sqlite_loads_no_unconfigured_feature(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    loaded = modules_after(
        "from daemon.config import load_config\n"
        "from daemon.loop import Daemon\n"
        f"daemon = Daemon(load_config({str(path)!r}))\n"
        "daemon.service.warm()\n"
        "daemon.store.close()\n"
    )
    assert "daemon.web.app" in loaded and "jinja2" in loaded  # the whole daemon was built
    assert sorted(n for n in UNCONFIGURED if n in loaded) == []
    assert sorted(m for m in loaded if m.startswith("holidays.countries.")) == [
        "holidays.countries.brazil"
    ]


def test_argon2_comes_with_the_first_password_checked() -> None:
    loaded = modules_after(
        "from daemon.staff import verify_password\n"
        "assert 'argon2' not in __import__('sys').modules\n"
        "assert not verify_password(None, 'no such account here')\n"
    )
    assert "argon2" in loaded
