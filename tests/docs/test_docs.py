"""docs/ stays in step with the code it describes: the configuration reference is the one
the schema generates, the sample configuration is the one a test loads, the API page names
every route, violation code and status, and every link between pages leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon.config import (
    REFERENCE_MARKER,
    example_toml,
    load_config,
    main,
    reference_markdown,
    reference_page,
)
from daemon.web import openapi
from rules.model import Code, Status

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SAMPLE = REPO / "tests" / "daemon" / "configs" / "spec.toml"
REGENERATE = "python -m daemon.config --reference docs/configuration.md"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def test_configuration_reference_is_the_one_the_schema_generates() -> None:
    text = page("configuration.md")
    assert text == reference_page(text), (
        "docs/configuration.md is out of step with the configuration schema; from the "
        f"repository root, run: {REGENERATE}"
    )


def test_configuration_page_shows_the_sample_configuration_that_loads() -> None:
    # tests/daemon/test_config.py loads the file; the page must show exactly that text.
    sample = SAMPLE.read_text(encoding="utf-8").split("\n", 1)[1]
    assert f"```toml\n{sample}```\n" in page("configuration.md"), (
        "the sample in docs/configuration.md differs from tests/daemon/configs/spec.toml "
        "(after its first comment line): make them the same text"
    )


def test_regenerating_keeps_the_introduction(tmp_path: Path) -> None:
    target = tmp_path / "configuration.md"
    target.write_text(f"# Intro\n\nWritten by hand.\n\n{REFERENCE_MARKER}\n\n| stale |\n")
    assert main(["--reference", str(target)]) == 0
    text = target.read_text(encoding="utf-8")
    assert text == f"# Intro\n\nWritten by hand.\n\n{REFERENCE_MARKER}\n\n{reference_markdown()}"
    assert main(["--reference", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == text


def test_regenerating_refuses_a_page_without_the_marker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "configuration.md"
    target.write_text("# Intro only\n")
    assert main(["--reference", str(target)]) == 2
    assert target.read_text(encoding="utf-8") == "# Intro only\n"
    assert "generated part" in capsys.readouterr().err


def test_the_module_prints_the_example_and_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--example"]) == 0
    assert capsys.readouterr().out == example_toml()
    assert main(["--reference"]) == 0
    assert capsys.readouterr().out == reference_markdown()


def test_api_page_has_every_violation_code_in_its_table() -> None:
    text = page("api.md")
    missing = [str(code) for code in Code if f"| `{code}` |" not in text]
    assert not missing, f"docs/api.md: add these codes to the violation table: {missing}"


def test_api_page_names_every_route_of_the_openapi_document() -> None:
    text = page("api.md")
    config = load_config(SAMPLE, check_secrets=False)
    paths = openapi.document(config.server.public_url, config.policy)["paths"]
    missing = [path for path in paths if f"`{path}`" not in text]
    assert not missing, f"docs/api.md: document these routes: {missing}"


@pytest.mark.parametrize("name", ["api.md", "lifecycle.md"])
def test_every_status_is_described(name: str) -> None:
    text = page(name)
    missing = [str(status) for status in Status if f"| `{status}` |" not in text]
    assert not missing, f"docs/{name}: describe these statuses: {missing}"


def test_the_index_lists_every_page() -> None:
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md")
    index = page("README.md")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert [p for p in pages if f"]({p})" not in index] == []
    assert [p for p in pages if f"](docs/{p})" not in readme] == []


_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _anchors(text: str) -> set[str]:
    """The heading anchors GitHub makes: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", _FENCE.sub("", text), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.replace("`", "").lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("source", [*sorted(p.name for p in DOCS.glob("*.md")), "../README.md"])
def test_links_lead_somewhere(source: str) -> None:
    origin = (DOCS / source).resolve()
    text = origin.read_text(encoding="utf-8")
    broken = []
    for target in _LINK.findall(_FENCE.sub("", text)):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (origin.parent / file).resolve() if file else origin
        found = linked.exists() and (
            not anchor or anchor in _anchors(linked.read_text(encoding="utf-8"))
        )
        if not found:
            broken.append(target)
    assert not broken, f"{source}: links to nowhere: {broken}"
