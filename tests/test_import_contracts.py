"""The import-linter contracts of the root pyproject.toml hold (``uv run lint-imports``).

Every contract in force must be kept, and the ones that keep the layers of ``roost.redis``
(no cycles between its modules; the facade and the worker above the lease store above the
store above scripts and keys) must stay in force.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contracts() -> dict[str, dict[str, object]]:
    found = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return {c["id"]: c for c in found}


def lint_imports(config: Path) -> tuple[int, str]:
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return run.returncode, run.stdout + run.stderr


def test_every_contract_in_force_is_kept() -> None:
    code, out = lint_imports(PYPROJECT)
    assert code == 0, out
    assert f"Contracts: {len(contracts())} kept, 0 broken." in out, out


def test_roost_redis_has_no_cycles_and_keeps_its_layers() -> None:
    found = contracts()
    assert found["redis-no-cycles"]["type"] == "acyclic_siblings"
    assert found["redis-no-cycles"]["ancestors"] == ["roost.redis"]
    layers = found["redis-layers"]
    assert layers["type"] == "layers" and layers["containers"] == ["roost.redis"]
    order = [str(layer) for layer in layers["layers"]]
    position = {
        name.strip(): i for i, layer in enumerate(order) for name in re.split("[|:]", layer)
    }
    # The facade and the worker above the lease store above the store above the keys.
    assert position["swarm"] < position["worker"] < position["holder"] < position["store"]
    assert position["store"] < position["keys"] and position["store"] < position["scripts"]
    # The typed script calls between the store and the scripts; the contracts at the bottom.
    assert position["store"] < position["calls"] < position["replies"] < position["contract"]
    assert position["scripts"] < position["contract"] and position["codec"] < position["schema"]
    assert "# target:" not in PYPROJECT.read_text()
