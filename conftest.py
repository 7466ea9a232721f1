"""Load Roost's pytest fixtures (real Redis servers on free ports) for every test.

Also puts ``tests/support`` (test-only engines and process helpers, importable as
``roost_testkit``) on the path of the tests and of the processes they start.
"""

import os
import sys
from pathlib import Path

SUPPORT = str(Path(__file__).parent / "tests" / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (SUPPORT, os.environ.get("PYTHONPATH", "")) if p
)

pytest_plugins = ["roost.redis.testing"]
