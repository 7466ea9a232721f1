"""The documentation site's generated pages and its example engine stay true to the code.

The CLI, settings and state references are generated at build time by
``docs/_hooks/reference.py`` (``.ci/run`` builds the site with ``mkdocs build --strict``);
these tests check that every command, option, variable and state reaches the generated text,
without needing MkDocs installed.
The engine of "Writing an engine" lives in ``docs/examples/roost-digest``; its own tests run
here, and its ``pyproject.toml`` builds into a wheel that declares the engine's entry point.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer

from roost.cli.commands import app
from roost.runtime.models import WorkState
from roost.runtime.plugins import DISABLE_AUTOLOAD_ENV
from roost.runtime.settings import ENV_VARS, RoostSettings
from roost_testkit.venvs import clean_env, run_uv

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "roost-digest"


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "roost_docs_reference", REPO / "docs" / "_hooks" / "reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def command_paths(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += command_paths(sub, (*path, name))
    return found


def test_cli_reference_has_every_command_and_option(hook: ModuleType) -> None:
    text = hook.cli_reference()
    commands = command_paths(typer.main.get_command(app), ("roost",))
    assert len(commands) > 15  # the tree was walked, subcommands included
    for path, command in commands:
        assert f"### {' '.join(path)} {{#{'-'.join(path)}}}" in text, path
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("-"):
                    assert f"`{opt}" in text or f", {opt}" in text, (path, opt)
    assert "[`roost server stop`](#roost-server-stop)" in text


def test_settings_reference_has_every_variable(hook: ModuleType) -> None:
    text = hook.settings_reference()
    assert set(ENV_VARS) == set(RoostSettings.model_fields)
    for name in RoostSettings.model_fields:
        entry = ENV_VARS[name]
        variable = entry if isinstance(entry, str) else entry[0]
        [row] = [line for line in text.splitlines() if line.startswith(f"| `{variable}` |")]
        assert row.endswith(f"(`{name}`) |"), row
    assert f"`{DISABLE_AUTOLOAD_ENV}`" in text
    assert "| `ROOST_LEASE_TTL` | duration | `30s` |" in text
    assert "| `ROOST_STRICT_DURABILITY` | boolean | `0` |" in text


def test_states_reference_has_every_state(hook: ModuleType) -> None:
    text = hook.states_reference()
    for state in WorkState:
        [row] = [line for line in text.splitlines() if line.startswith(f"| `{state.value}` |")]
        assert row.split(" | ")[1] == ("yes" if state.is_terminal else "no"), row
    assert "<!-- generated: states -->" in (REPO / "docs" / "concepts.md").read_text()


def test_markers_are_replaced_and_unknown_ones_fail(hook: ModuleType) -> None:
    page = "# Settings\n\n<!-- generated: settings -->\n"
    assert "ROOST_QUEUE" in hook.on_page_markdown(page)
    with pytest.raises(ValueError, match="unknown generated reference 'nope'"):
        hook.on_page_markdown("<!-- generated: nope -->\n")


@pytest.mark.slow
def test_example_engine_tests_pass() -> None:
    env = {**clean_env(), "PYTHONPATH": str(EXAMPLE / "src")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout


@pytest.mark.slow
def test_example_engine_package_declares_its_entry_point(tmp_path: Path) -> None:
    run_uv("build", "--wheel", "--quiet", "-o", str(tmp_path), str(EXAMPLE), cwd=tmp_path)
    [wheel] = tmp_path.glob("roost_digest-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[roost.engines]\ndigest = roost_digest.engine:build_engine" in text.replace(
        "\r\n", "\n"
    )
    assert "roost_digest/engine.py" in names
    assert wheel.name == "roost_digest-0.1.0-py3-none-any.whl"
