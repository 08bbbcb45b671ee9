"""Files written from the schema: the commented example file and the key reference.

``deploy/expediente.example.toml`` (:func:`example_toml`) and the key table of
``docs/configuration.md`` (:func:`reference_page`) are generated, never edited by hand, so
they cannot disagree with what the loader accepts; tests compare both with what is
shipped. ``python -m daemon.config`` (:func:`main`) writes them out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.config.kinds import OPTIONAL, REQUIRED, ArrayOfTables, Setting, Table
from daemon.config.problems import toml_value
from daemon.config.schema import SCHEMA

EXAMPLE_HEADER = """\
expediente configuration: every key, with its default value and what it does.

Generated from the schema in daemon/config/schema.py by example_toml(); edit the schema,
not this file. Keys written out show their default values: change them or leave them out
(the [[technicians]] entry is an example to adapt). Keys behind a "#" are optional, shown
with an example value.

Durations: "90s", "10m", "2h", "1d", "1h30m". Hours: "07:30-12:00", in the desk's time
zone. Dates: "2026-12-24". Relative paths are relative to this file's folder.

Secrets (calendar passwords, Google credentials, the admin token, the signing key, the
SMTP password, webhook keys) are read from files, never written here: the keys ending in
_file name those files; keep them readable by the daemon's user alone (chmod 600). Under
systemd, LoadCredential=NAME:/path hands a file to the service in $CREDENTIALS_DIRECTORY;
when a file there has the same name as a configured secret file (e.g. admin-token for
secrets/admin-token), it is read instead of the configured path.

Check a file with: expediente check-config /etc/expediente/expediente.toml"""


def _comment(text: str, width: int = 98) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        if lines:
            lines.append("#")
        wrapped = textwrap.wrap(paragraph.replace("\n", " "), width - 2, break_on_hyphens=False)
        lines += [f"# {line}" for line in wrapped]
    return lines


class _ExampleWriter:
    """Renders tables of the schema; help is written the first time a table appears."""

    def __init__(self) -> None:
        self.explained: set[int] = set()

    def section(self, setting: Setting) -> list[str]:
        kind = setting.kind
        if isinstance(kind, ArrayOfTables):
            default = setting.default
            items = default if isinstance(default, list) and default else setting.example
            commented = default is not REQUIRED and not default
            lines = _comment(setting.help)
            for n, item in enumerate(items if isinstance(items, list) else []):
                lines += [""] if n else []
                lines += self.table(kind.table, setting.name, item, array=True, commented=commented)
            return lines
        if not isinstance(kind, Table):
            raise TypeError(f"section {setting.name} is neither a table nor a list of tables")
        commented = setting.default is OPTIONAL
        return _comment(setting.help) + self.table(kind, setting.name, {}, False, commented)

    def table(
        self, table: Table, header: str, values: Any, array: bool, commented: bool
    ) -> list[str]:
        explain = id(table) not in self.explained
        self.explained.add(id(table))
        title = f"[[{header}]]" if array else f"[{header}]"
        lines = [f"# {title}" if commented else title]
        values = values if isinstance(values, dict) else {}
        variant = values.get("kind") if table.variants else None
        nested: list[Setting] = []
        for setting in table.settings_for(variant):
            if isinstance(setting.kind, Table | ArrayOfTables):
                nested.append(setting)
                continue
            lines += self.key(setting, values, commented, explain, help=not table.compact)
        if table.extra_example:
            lines.append(f"# {table.extra_example}")
        if explain:
            for other, settings in table.variants.items():
                if other == variant:
                    continue
                lines += ["#", f'# Or, for kind = "{other}":', f'# kind = "{other}"']
                for setting in settings:
                    lines += self.key(setting, {}, True, True)
        for setting in nested:
            sub = values.get(setting.name, setting.example)
            name = f"{header}.{setting.name}"
            if isinstance(setting.kind, ArrayOfTables):
                subtable = setting.kind.table
                for item in sub if isinstance(sub, list) else []:
                    lines.append("")
                    if explain:
                        lines += _comment(setting.help)
                    lines += self.table(subtable, name, item, True, commented)
            elif isinstance(setting.kind, Table):
                lines.append("")
                if explain:
                    lines += _comment(setting.help)
                lines += self.table(setting.kind, name, sub, False, commented)
        return lines

    def key(
        self,
        setting: Setting,
        values: Mapping[str, Any],
        commented: bool,
        explain: bool,
        *,
        help: bool = True,
    ) -> list[str]:
        lines = _comment(setting.help) if explain and help and setting.help else []
        if not explain and setting.name not in values:
            return lines  # a repeated entry shows its own values only
        if setting.name in values:
            line = f"{setting.name} = {toml_value(values[setting.name])}"
        elif setting.default not in (REQUIRED, OPTIONAL):
            line = f"{setting.name} = {toml_value(setting.default)}"
        elif setting.example is not None:
            line = f"{setting.name} = {toml_value(setting.example)}"
            commented = commented or setting.default is OPTIONAL
        else:
            return lines
        lines.append(f"# {line}" if commented else line)
        return lines


def example_toml() -> str:
    """The commented example configuration, generated from :data:`SCHEMA`."""
    writer = _ExampleWriter()
    lines = _comment(EXAMPLE_HEADER)
    for setting in SCHEMA.settings:
        lines.append("")
        lines += writer.section(setting)
    return "\n".join(lines) + "\n"


def reference_markdown() -> str:
    """A Markdown table of every key (type, default, help), generated from :data:`SCHEMA`."""
    rows = ["| key | expects | default | what it does |", "|---|---|---|---|"]

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    def walk(table: Table, prefix: str) -> None:
        for variant in (None, *table.variants):
            settings = table.settings if variant is None else table.variants[variant]
            for setting in settings:
                name = f"{prefix}.{setting.name}" if prefix else setting.name
                kind = setting.kind
                if isinstance(kind, ArrayOfTables):
                    walk(kind.table, f"{name}[]")
                    continue
                if isinstance(kind, Table) and not kind.extra:
                    walk(kind, name)
                    continue
                if setting.default is REQUIRED:
                    default = "required"
                elif setting.default is OPTIONAL:
                    default = "—"
                else:
                    default = f"`{toml_value(setting.default)}`"
                condition = f' (kind = "{variant}")' if variant else ""
                rows.append(
                    f"| `{name}`{condition} | {cell(kind.expected)} | {cell(default)} | "
                    f"{cell(setting.help)} |"
                )

    walk(SCHEMA, "")
    return "\n".join(rows) + "\n"


# The configuration page of the documentation: a hand-written introduction, then this line,
# then the key table. Only what follows the line is generated.
REFERENCE_MARKER = (
    "<!-- Generated from the schema in daemon/config/schema.py: edit the schema, then run "
    "python -m daemon.config --reference docs/configuration.md -->"
)


def reference_page(page: str) -> str:
    """``page`` (the text of docs/configuration.md) with everything after
    :data:`REFERENCE_MARKER` replaced by :func:`reference_markdown`; what comes before it is
    kept as written. Raises ValueError when the marker line is missing."""
    head, marker, _ = page.partition(REFERENCE_MARKER)
    if not marker:
        raise ValueError(f"the line that starts the generated part is missing: {REFERENCE_MARKER}")
    return f"{head}{marker}\n\n{reference_markdown()}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m daemon.config``: write out what the schema generates (exit 2 on error)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m daemon.config",
        description="Print or update the files generated from the configuration schema.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--example",
        action="store_true",
        help="print the commented example configuration (deploy/expediente.example.toml)",
    )
    what.add_argument(
        "--reference",
        nargs="?",
        const="",
        metavar="PAGE",
        help="print the key table in Markdown; with PAGE (docs/configuration.md), rewrite "
        "the generated part of that page and keep its introduction",
    )
    args = parser.parse_args(argv)
    if args.example:
        sys.stdout.write(example_toml())
    elif not args.reference:
        sys.stdout.write(reference_markdown())
    else:
        page = Path(args.reference)
        try:
            page.write_text(reference_page(page.read_text(encoding="utf-8")), encoding="utf-8")
        except (OSError, ValueError) as error:
            print(f"{parser.prog}: {page}: {error}", file=sys.stderr)
            return 2
    return 0
