"""An enqueue client process: ``python -m roost_testkit.chaos.enqueue_client``.

Opens ``--connections`` separate connections (settings from ROOST_* variables), prints
``ready``, waits for a line on stdin (the start barrier), then every connection enqueues
the same ``--keys`` idempotency keys at once. Prints one JSON line: ``{"results": [[connection,
key, work_id], ...]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from roost.redis import RedisSwarm
from roost.runtime import Registry, get_plugin_manager


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--prefix", default="same-key")
    args = parser.parse_args()
    registry = Registry.load(get_plugin_manager(autoload=False))
    swarms = [RedisSwarm(registry=registry) for _ in range(args.connections)]
    for s in swarms:
        await s.connect()
        await s.client.ping()
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)

    async def one(index: int, swarm: RedisSwarm) -> list[list[object]]:
        out: list[list[object]] = []
        for k in range(args.keys):
            key = f"{args.prefix}-{k}"
            work_id = await swarm.enqueue("hashchain", {"steps": 1}, idempotency_key=key)
            out.append([f"{os.getpid()}/{index}", key, work_id])
        return out

    try:
        rows = await asyncio.gather(*(one(i, s) for i, s in enumerate(swarms)))
    finally:
        for s in swarms:
            await s.close()
    print(json.dumps({"results": [r for part in rows for r in part]}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
