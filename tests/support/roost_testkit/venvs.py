"""Fresh virtual environments for tests that install Roost the way a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

__all__ = ["clean_env", "python_json", "run_uv", "uv_binary", "venv_bin"]


def uv_binary() -> str:
    """The uv executable (``UV`` as ``uv run`` sets it, else the one on ``PATH``)."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.fail("this test needs the uv binary (run it with `uv run pytest`)")
    return uv


def clean_env() -> dict[str, str]:
    """This process's environment without the workspace's venv, path or ``ROOST_*`` settings."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in ("VIRTUAL_ENV", "PYTHONPATH") and not name.startswith("ROOST_")
    }


def run_uv(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a uv command offline (the cache is warm); retry online if that fails.

    ``env`` adds variables to :func:`clean_env`. Fails the test if neither run succeeds.
    """
    uv = uv_binary()
    kwargs: dict[str, Any] = {
        "env": {**clean_env(), **(env or {})},
        "cwd": cwd,
        "capture_output": True,
        "text": True,
    }
    offline = subprocess.run([uv, "--offline", *args], timeout=300, **kwargs)
    if offline.returncode == 0:
        return offline
    online = subprocess.run([uv, *args], timeout=600, **kwargs)
    said = [run.stdout + run.stderr for run in (offline, online)]
    assert online.returncode == 0, f"uv {' '.join(args)} failed:\n" + "\n".join(said)
    return online


def venv_bin(venv: Path, name: str) -> Path:
    """The path of executable ``name`` (``python``, ``roost``) inside ``venv``."""
    if os.name == "nt":
        return venv / "Scripts" / f"{name}.exe"
    return venv / "bin" / name


def python_json(venv: Path, script: str, cwd: Path) -> Any:
    """Run ``script`` with the venv's Python in ``cwd`` and parse the JSON it prints."""
    run = subprocess.run(
        [str(venv_bin(venv, "python")), "-c", script],
        env=clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)
