"""The README, docs and --help texts stay true to the code."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from pvegit.cli import build_parser
from pvegit.config.categories import CATALOGUE, RUNTIME_EXCLUDES, SECRET_PATTERNS
from pvegit.content.masking import MASK_RULES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def subcommands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix}{name}"
                found[full] = sub
                found.update(subcommands(sub, full + " "))
    return found


def test_every_command_and_option_is_in_the_readme() -> None:
    usage = README.split("## Command line", 1)[1].split("```", 2)[1]
    for name, parser in subcommands(build_parser()).items():
        words = name.split()
        if len(words) == 2:
            assert re.search(rf"pvegit {words[0]} .*\b{words[1]}\b", usage), name
        else:
            assert f"pvegit {name}" in usage or f"pvegit [--home DIR] {name}" in usage, name
        for action in parser._actions:
            if not action.option_strings or "--help" in action.option_strings:
                continue
            assert any(
                re.search(rf"{re.escape(option)}\b", usage) for option in action.option_strings
            ), f"{name} {action.option_strings} is not in the README"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    first_block = README.split("```", 2)[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci/run").read_text()
    assert "\nmake test\n" in ci


def test_categories_doc_lists_every_path() -> None:
    text = (ROOT / "docs/categories.md").read_text()
    for category in CATALOGUE:
        assert f"## `{category.name}`" in text
        for path in category.paths:
            assert f"`/{path}`" in text, path
        for pattern in category.excludes:
            assert f"`/{pattern}`" in text, pattern
        for command in category.commands:
            assert f"`{command}`" in text, command
    for path in (*RUNTIME_EXCLUDES, *SECRET_PATTERNS):
        assert f"`/{path}`" in text, path
    masked = text.split("## Masked lines", 1)[1]
    for rule in MASK_RULES:
        for path in rule.paths:
            assert f"`/{path}`" in masked, path


def test_categories_doc_lists_the_pve9_paths() -> None:
    from testbed.pve9 import PVE9_PATHS

    section = (ROOT / "docs/categories.md").read_text().split("## Proxmox VE 9", 1)[1]
    for pattern, category in PVE9_PATHS:
        shown = pattern.removesuffix("/*") + ("/" if pattern.endswith("/*") else "")
        assert f"`/{shown}` | `{category}`" in section, pattern


def test_help_texts_render() -> None:
    for name, parser in subcommands(build_parser()).items():
        assert parser.format_help().strip(), name
