"""scripts/e2e_watchlist.sh: the seed's end-to-end run with the real CLI, SIGKILL included."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "e2e_watchlist.sh"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_e2e_script_resumes_after_sigkill() -> None:
    if shutil.which("uv") is None:
        pytest.fail("scripts/e2e_watchlist.sh needs uv on PATH (run the tests with `uv run`)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOST_")}
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=220
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "worker 1 SIGKILLed" in out
    kept = re.search(r"after the kill: state (\w+), version (\d+), (\d)/3 checks saved", out)
    assert kept and kept.group(1) != "done" and 1 <= int(kept.group(3)) < 3, out
    assert "final: done, version 4, 3/3 checks" in out
    assert '"verdict": "reachable"' in out  # the artifact printed by artifact-show
    assert "e2e ok" in out
    assert "Traceback" not in out
    print(f"e2e took {time.monotonic() - started:.1f}s")
