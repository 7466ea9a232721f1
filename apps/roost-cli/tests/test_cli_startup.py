"""Commands start without importing what they do not use (no timing: ``sys.modules``).

Each command runs in a fresh interpreter, as ``roost`` does (``roost.cli.app.main``), and
reports the modules it had imported when it exited. Redis' client, pydantic-settings, the
plugins, the demo, the console, Prometheus, httpx or rich on piped output would each add a
tenth of a second or more to a command that does not need them (docs/performance.md, "CLI
start-up").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_support import Cli

PROBE = """
import json, sys
out, args = sys.argv[1], json.loads(sys.argv[2])
sys.argv = ["roost", *args]
code = 0
try:
    from roost.cli.app import main
    main()
except SystemExit as exc:
    code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""

NEVER_WITHOUT_NEED = (
    "roost.cli.demo",
    "roost.cli.demo_approval",
    "roost.console",
    "starlette",
    "uvicorn",
    "httpx",
    "prometheus_client",
    "roost.redis.metrics",
    "roost.cli.printer",
    "rich",  # stdout is a pipe here: plain text, no rich
)
"""No command below needs these: the demo, the console and its server, the worker's
Prometheus metrics and printer, the watchlist engine's HTTP client, rich on piped output."""

NOT_FOR_HELP = (
    *(m for m in NEVER_WITHOUT_NEED if m != "rich"),  # typer draws its help with rich
    "redis",
    "roost.redis",
    "pydantic_settings",
    "roost.runtime.settings",
    "roost.runtime.plugins",
    "pluggy",
    "roost_watchlist",
    "roost_otel",
    "opentelemetry",
)
"""``roost --help`` needs no server, no settings and no plugin."""


@dataclass
class Started:
    code: int
    stdout: str
    stderr: str
    modules: set[str]

    def loaded(self, *names: str) -> list[str]:
        """Which of ``names`` (or any of their submodules) were imported."""
        return [n for n in names if any(m == n or m.startswith(n + ".") for m in self.modules)]


def start(cli: Cli, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Started:
    """Run ``roost ARGS`` in a fresh interpreter, its stdout a pipe; what it imported."""
    out = tmp_path / "modules.json"
    environ = {**os.environ, **cli.env, "COLUMNS": "100", **(env or {})}
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        if name not in (env or {}):
            environ.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), json.dumps(args)],
        env=environ,
        cwd=cli.cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(out.read_text())
    return Started(report["code"], done.stdout, done.stderr, set(report["modules"]))


@pytest.mark.parametrize(("args", "code"), [(("--help",), 0), ((), 2)], ids=["--help", "no-args"])
def test_help_imports_no_backend_no_settings_no_plugin(
    cli: Cli, tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    started = start(cli, tmp_path, *args)
    assert started.code == code  # no arguments: the help, and exit 2 (a usage error)
    assert "status" in started.stdout and "Commands" in started.stdout
    assert started.loaded("typer", "roost.cli.commands") == ["typer", "roost.cli.commands"]
    assert started.loaded(*NOT_FOR_HELP) == []


def test_status_imports_the_backend_and_nothing_else_heavy(cli: Cli, tmp_path: Path) -> None:
    work_id = cli("enqueue", "--engine", "watchlist", "--payload", "{}").stdout.strip()
    started = start(cli, tmp_path, "status", work_id)
    assert started.code == 0
    assert json.loads(started.stdout)["meta"]["work_id"] == work_id
    # It did read Redis, through the plugin: the check below sees real imports.
    assert started.loaded("redis", "roost.redis.plugin", "roost_watchlist") == [
        "redis",
        "roost.redis.plugin",
        "roost_watchlist",
    ]
    assert started.loaded(*NEVER_WITHOUT_NEED) == []


@pytest.mark.parametrize(
    "args",
    [("list",), ("status", "--human", "{work_id}"), ("events", "{work_id}")],
    ids=["list", "status-human", "events"],
)
def test_read_commands_on_a_pipe_import_nothing_heavy(
    cli: Cli, tmp_path: Path, args: tuple[str, ...]
) -> None:
    work_id = cli("enqueue", "--engine", "watchlist", "--payload", "{}").stdout.strip()
    started = start(cli, tmp_path, *(a.format(work_id=work_id) for a in args))
    assert started.code == 0
    assert work_id in started.stdout
    assert started.loaded(*NEVER_WITHOUT_NEED) == []


def test_a_bad_id_still_exits_2_with_one_line(cli: Cli, tmp_path: Path) -> None:
    started = start(cli, tmp_path, "status", "no such id!")
    assert started.code == 2
    assert started.stderr.count("\n") == 1 and started.stderr.startswith("error: ")
    assert started.loaded(*NEVER_WITHOUT_NEED) == []


def test_the_probe_sees_a_heavy_module_a_command_imports(cli: Cli, tmp_path: Path) -> None:
    """The checks above can fail: the demo's verb imports its story, rich draws for a TTY."""
    demo = start(cli, tmp_path, "demo", "no-such-story")
    assert demo.code == 2
    assert "unknown demo 'no-such-story'" in demo.stderr
    assert demo.loaded("roost.cli.demo", "httpx") == ["roost.cli.demo"]

    cli("enqueue", "--engine", "watchlist", "--payload", "{}")
    coloured = start(cli, tmp_path, "list", env={"FORCE_COLOR": "1"})
    assert coloured.code == 0
    assert coloured.loaded("rich") == ["rich"]
