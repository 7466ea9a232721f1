"""The README's CLI reference matches the command tree that `--help` prints."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from cli_support import Cli

from roost.cli.commands import app

README = Path(__file__).resolve().parents[3] / "README.md"
COMMON = {"--log-level", "--log-format", "--verbose"}
"""Options every command takes, documented once with the global options."""


def reference() -> str:
    text = README.read_text()
    start = text.index("\n## CLI reference\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def rows() -> dict[str, str]:
    """``{"roost enqueue": "<the rest of its table row>"}``."""
    found: dict[str, str] = {}
    for line in reference().splitlines():
        match = re.match(r"\| `(roost [a-z -]+)` \|(.*)\|$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def commands() -> dict[str, Any]:
    """Every leaf command of the tree: ``{"roost server stop": command, ...}``."""
    out: dict[str, Any] = {}

    def walk(group: Any, prefix: str) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, f"{prefix} {name}")
            else:
                out[f"{prefix} {name}"] = command

    walk(typer.main.get_command(app), "roost")
    return out


def long_options(command: Any) -> list[str]:
    names: list[str] = []
    for param in command.params:
        if param.param_type_name == "option":
            names += [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
        else:
            names.append(param.name.upper())
    return [n for n in names if n != "--help"]


def test_every_command_is_documented_and_nothing_else() -> None:
    assert sorted(rows()) == sorted(commands())


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_option_of_a_command_is_in_its_row(name: str) -> None:
    row = rows()[name]
    for option in long_options(commands()[name]):
        if option in COMMON:
            continue
        assert re.search(rf"`\[?{re.escape(option)}[\] `]", row), (name, option)


def test_global_options_are_documented() -> None:
    text = reference()
    root = typer.main.get_command(app)
    for param in root.params:
        for option in param.opts:
            if option.startswith("--") and option != "--help":
                assert re.search(rf"\| `{re.escape(option)}[ `]", text), option


def test_help_lists_every_documented_command(cli: Cli) -> None:
    top = cli("--help")
    assert top.code == 0
    for name in rows():
        words = name.split()
        if len(words) == 2:
            assert words[1] in top.stdout, name
        else:
            sub = cli(words[1], "--help")
            assert words[2] in sub.stdout, name


@pytest.mark.parametrize("name", sorted(commands()))
def test_each_help_page_shows_its_options(cli: Cli, name: str) -> None:
    result = cli(*name.split()[1:], "--help")
    assert result.code == 0
    for option in long_options(commands()[name]):
        if option.startswith("--"):
            assert option in result.stdout, (name, option)


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_takes_the_common_options(name: str) -> None:
    assert COMMON <= set(long_options(commands()[name])), name
