"""Run a Roost worker with the test engines: ``python -m roost_testkit.worker_main``.

Settings come from ROOST_* variables; ``--concurrency`` and ``--max-attempts`` from flags;
``--engines a=2,b`` runs the hash-chain engine under those ids (``fanout``: the
parent engine of :mod:`roost_testkit.family`) (with those slots; a bare id
takes ``--concurrency``). Prints ``ready`` on stdout once the worker loop starts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from roost.redis import RedisSwarm
from roost.runtime import Registry, get_plugin_manager
from roost_testkit.engines import HashChainEngine
from roost_testkit.family import FanOutEngine


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-attempts", type=int, default=None)
    parser.add_argument("--engines", default="hashchain")
    args = parser.parse_args()
    engines: dict[HashChainEngine | FanOutEngine, int] = {}
    for entry in args.engines.split(","):
        name, _, slots = entry.partition("=")
        engine = FanOutEngine() if name == "fanout" else HashChainEngine(args.max_attempts, name)
        engines[engine] = int(slots or args.concurrency)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(message)s",
    )
    registry = Registry.load(get_plugin_manager(autoload=False))
    async with RedisSwarm(registry=registry) as swarm:
        print("ready", flush=True)
        await swarm.run_worker(engines, concurrency=args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
