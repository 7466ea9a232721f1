#!/usr/bin/env python
"""Run Roost's reliability (chaos) scenarios and print a summary table.

    uv run python scripts/chaos.py            # the full tier (10,000-item kill soak...)
    uv run python scripts/chaos.py --quick    # the CI-size tier (what tests/chaos runs)
    uv run python scripts/chaos.py --only kill-soak,stall --json

Every scenario starts its own Redis servers and worker processes on 127.0.0.1 and cleans
them up. Exits 1 if any scenario fails, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from roost_testkit.chaos.base import Result  # noqa: E402
from roost_testkit.chaos.scenarios import run, table, tier  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the CI-size tier")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--only", default="", help="comma-separated scenario keys")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs in this directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the scenarios report; spare the warnings
    scenarios = tier(full=not args.quick)
    if args.only:
        wanted = [k.strip() for k in args.only.split(",") if k.strip()]
        known = {s.key for s in scenarios}
        unknown = [k for k in wanted if k not in known]
        if unknown:
            parser.error(f"unknown scenario {unknown[0]!r} (known: {', '.join(sorted(known))})")
        scenarios = [s for s in scenarios if s.key in wanted]
    started = time.monotonic()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="roost-chaos-") as tmp:
        root = args.keep or Path(tmp)
        for scenario in scenarios:
            if not args.json:
                print(f"running {scenario.key}...", file=sys.stderr, flush=True)
            result = asyncio.run(run(scenario, root))
            results.append(result)
            if not args.json:
                verdict = "pass" if result.passed else "FAIL"
                print(f"  {verdict} in {result.seconds:.0f}s", file=sys.stderr, flush=True)
    total = time.monotonic() - started
    if args.json:
        print(
            json.dumps(
                {
                    "tier": "quick" if args.quick else "full",
                    "seconds": round(total, 1),
                    "passed": all(r.passed for r in results),
                    "scenarios": [r.as_dict() for r in results],
                },
                indent=2,
            )
        )
    else:
        print(table(results))
        print(f"\n{'quick' if args.quick else 'full'} tier, {total:.0f}s in all")
        for r in results:
            if r.notes:
                print(f"- {r.name}: " + ", ".join(f"{k}={v}" for k, v in r.notes.items()))
        for r in results:
            for failure in r.failures:
                print(f"FAIL {r.name}: {failure}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
