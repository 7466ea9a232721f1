"""The workspace builds into five wheels that keep ``roost`` a namespace and layer cleanly.

``uv build --all-packages`` must give one wheel per member, none shipping
``roost/__init__.py``; an application that installs only roost-core and roost-redis (and their
dependencies) must import ``roost.runtime`` and ``roost.redis`` without typer, starlette or
uvicorn being installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {"roost_core", "roost_redis", "roost_cli", "roost_console", "roost_watchlist"}


def uv_binary() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.fail("this test needs the uv binary (run it with `uv run pytest`)")
    return uv


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(var, None)
    return env


def uv(*args: str) -> None:
    """Run a uv command offline (the cache is warm); retry online if that fails."""
    command = [uv_binary(), *args]
    kwargs = {"env": clean_env(), "cwd": REPO, "capture_output": True, "text": True}
    offline = subprocess.run([*command, "--offline"], timeout=300, **kwargs)
    if offline.returncode == 0:
        return
    online = subprocess.run(command, timeout=600, **kwargs)
    assert online.returncode == 0, f"{command} failed:\n{offline.stderr}\n{online.stderr}"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    uv("build", "--all-packages", "--quiet", "-o", str(out))
    return out


def wheel_of(dist: Path, name: str) -> Path:
    [wheel] = dist.glob(f"{name}-*.whl")
    return wheel


def test_five_wheels(dist: Path) -> None:
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 5, wheels
    assert {w.name.split("-")[0] for w in wheels} == DISTRIBUTIONS


def test_no_wheel_or_sdist_ships_roost_init(dist: Path) -> None:
    checked = 0
    for wheel in dist.glob("*.whl"):
        names = zipfile.ZipFile(wheel).namelist()
        assert "roost/__init__.py" not in names, wheel.name
        assert not [n for n in names if n.endswith("/roost/__init__.py")], wheel.name
        checked += 1
    for sdist in dist.glob("*.tar.gz"):
        with tarfile.open(sdist) as tar:
            names = tar.getnames()
        assert not [n for n in names if n.endswith("src/roost/__init__.py")], sdist.name
        checked += 1
    assert checked == 10


def test_each_roost_wheel_holds_its_own_subpackage(dist: Path) -> None:
    expected = {
        "roost_core": "roost/runtime/__init__.py",
        "roost_redis": "roost/redis/__init__.py",
        "roost_cli": "roost/cli/__init__.py",
        "roost_console": "roost/console/__init__.py",
        "roost_watchlist": "roost_watchlist/__init__.py",
    }
    for name, module in expected.items():
        names = zipfile.ZipFile(wheel_of(dist, name)).namelist()
        assert module in names, (name, module)
        assert "py.typed" in {Path(n).name for n in names}, name
    core = zipfile.ZipFile(wheel_of(dist, "roost_core")).namelist()
    assert "roost/runtime/testing/harness.py" in core
    assert not [n for n in core if "__pycache__" in n or n.startswith("tests/")]


CHECK = textwrap.dedent(
    """
    import importlib.util
    import json

    import roost.redis
    import roost.runtime
    import roost.runtime.testing

    print(json.dumps({
        "namespace_file": __import__("roost").__file__,
        "runtime": roost.runtime.__file__,
        "missing": {
            name: importlib.util.find_spec(name) is None
            for name in ("typer", "starlette", "uvicorn", "pytest", "roost.cli", "roost.console")
        },
    }))
    """
)


@pytest.mark.slow
def test_core_and_redis_alone(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    uv("venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    core, redis = wheel_of(dist, "roost_core"), wheel_of(dist, "roost_redis")
    uv("pip", "install", "--quiet", "--python", str(python), str(core), str(redis))
    run = subprocess.run(
        [str(python), "-c", CHECK],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["namespace_file"] is None
    assert Path(out["runtime"]).is_relative_to(venv)
    assert out["missing"] == {
        "typer": True,
        "starlette": True,
        "uvicorn": True,
        "pytest": True,
        "roost.cli": True,
        "roost.console": True,
    }
