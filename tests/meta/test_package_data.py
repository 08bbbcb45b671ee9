"""Every file the daemon reads at run time (templates, static files, catalogs, migrations)
is in the package: an install from a wheel has only what ``package-data`` names, and a
template in a new folder is easily left out (an editable install hides the mistake)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_package_data_names_every_non_python_file_of_the_daemon() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data: dict[str, list[str]] = config["tool"]["setuptools"]["package-data"]
    shipped: set[Path] = set()
    for package, patterns in package_data.items():
        folder = ROOT / package.replace(".", "/")
        for pattern in patterns:
            shipped |= {p for p in folder.glob(pattern) if p.is_file()}
    wanted = {
        p
        for p in (ROOT / "daemon").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    missing = sorted(str(p.relative_to(ROOT)) for p in wanted - shipped)
    assert not missing, f"add these to [tool.setuptools.package-data]: {missing}"
