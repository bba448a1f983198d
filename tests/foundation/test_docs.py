"""The user-facing docs stay a manual: short, current, in step with the code's settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from photosearch.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
DOCS = [README, ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]
FIRST_COMMANDS = ["bash scripts/demo.sh", "bash scripts/test.sh"]

# Variables that are not Settings fields: where the settings file is (read before Settings exists).
NOT_SETTINGS = {"PHOTOSEARCH_CONFIG"}

WORK_LOG = [
    (re.compile(r"\bstops? \d+", re.IGNORECASE), "a development stop"),
    (re.compile(r"\b(this|last|previous|next|earlier) (session|round)\b", re.IGNORECASE), "a work session"),
    (re.compile(r"\bsession \d+", re.IGNORECASE), "a work session"),
    (re.compile(r"\brevert(ed)?\b", re.IGNORECASE), "a revert"),
    # A commit hash: 7–40 hex digits with both a digit and a letter (plain words like "defaced" pass).
    (re.compile(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b"), "a commit hash"),
]


def _env_names() -> set[str]:
    return {f"PHOTOSEARCH_{name.upper()}" for name in Settings.model_fields}


def test_readme_is_short() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; the limit is 300 (details go to docs/)"


def test_readme_starts_with_the_two_fresh_machine_commands() -> None:
    text = README.read_text()
    block = re.search(r"```(?:bash|sh)?\n(.*?)```", text, re.DOTALL)
    assert block, "README.md has no code block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == FIRST_COMMANDS, f"README's first code block must be exactly {FIRST_COMMANDS}, got {commands}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_tell_no_development_history(doc: Path) -> None:
    text = doc.read_text()
    found = [
        f"line {text.count(chr(10), 0, m.start()) + 1}: {what} ({m.group(0)!r})"
        for rx, what in WORK_LOG
        for m in rx.finditer(text)
    ]
    assert not found, f"{doc.name} speaks of how it was made, not of the product: " + "; ".join(found)


def test_every_documented_variable_is_a_setting() -> None:
    documented = set(re.findall(r"PHOTOSEARCH_[A-Z0-9_]*[A-Z0-9]", README.read_text()))
    unknown = documented - _env_names() - NOT_SETTINGS
    assert not unknown, f"README.md documents variables that config.py does not read: {sorted(unknown)}"


def test_every_setting_is_in_the_configuration_table() -> None:
    text = README.read_text()
    table = {m.group(1) for m in re.finditer(r"^\| `(PHOTOSEARCH_[A-Z0-9_]+)` \|", text, re.MULTILINE)}
    missing = _env_names() - table
    assert not missing, f"settings missing from README.md's configuration table: {sorted(missing)}"
    assert table <= _env_names(), f"table rows that are not settings: {sorted(table - _env_names())}"


def test_every_headline_number_is_in_the_benchmarks_doc() -> None:
    """docs/benchmarks.md holds the command and the result behind each number the README's Performance quotes."""
    text = README.read_text()
    section = re.search(r"^## Performance\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE)
    assert section, "README.md has no Performance section"
    bench = set(re.findall(r"\d[\d,]*(?:\.\d+)?", BENCHMARKS.read_text()))
    quoted = set(re.findall(r"\d[\d,]*(?:\.\d+)?", section.group(1)))
    assert quoted, "the Performance section quotes no numbers"
    assert quoted <= bench, f"README quotes numbers docs/benchmarks.md does not have: {sorted(quoted - bench)}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_point_at_files(doc: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    missing = [link for link in local if not (doc.parent / link).exists()]
    assert not missing, f"{doc.name} links to files that do not exist: {missing}"
