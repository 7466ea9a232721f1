"""Run a Roost worker with the test engines: ``python -m roost_testkit.worker_main``.

Settings come from ROOST_* variables; ``--concurrency`` and ``--max-attempts`` from flags.
Prints ``ready`` on stdout once the worker loop starts.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from roost.redis import RedisSwarm
from roost.runtime import Registry, get_plugin_manager
from roost_testkit.engines import HashChainEngine


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-attempts", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(message)s",
    )
    registry = Registry.load(get_plugin_manager(autoload=False))
    async with RedisSwarm(registry=registry) as swarm:
        print("ready", flush=True)
        await swarm.run_worker([HashChainEngine(args.max_attempts)], concurrency=args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
