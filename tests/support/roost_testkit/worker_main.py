"""Run a Roost worker with the test engines: ``python -m roost_testkit.worker_main``.

Settings come from ROOST_* variables; ``--concurrency`` and ``--max-attempts`` from flags;
``--engines a=2,b`` runs the hash-chain engine under those ids (``fanout``: the
parent engine of :mod:`roost_testkit.family`) (with those slots; a bare id
takes ``--concurrency``). Prints ``ready`` on stdout once the worker loop starts.

With ``ROOST_TEST_SINK_LOG`` set, an event sink plugin (registered through the hook, as a
third party's would be) appends each event it receives to that file as a JSON line (id,
type, work id, worker, and this process's pid), after sleeping ``ROOST_TEST_SINK_DELAY``
seconds per event if set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable

from roost.redis import RedisSwarm
from roost.runtime import Registry, RuntimeEvent, get_plugin_manager, hookimpl
from roost.runtime.stores import EventSink
from roost_testkit.engines import HashChainEngine
from roost_testkit.family import FanOutEngine


class FileSinkPlugin:
    """Registers one event sink that appends what it receives to a JSON-lines file."""

    def __init__(self, path: str, delay: float) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.delay = delay

    async def sink(self, event: RuntimeEvent) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        record = {
            "id": event.id,
            "type": event.type,
            "work_id": event.work_id,
            "worker": event.worker,
            "pid": os.getpid(),
        }
        os.write(self.fd, (json.dumps(record) + "\n").encode())

    @hookimpl
    def roost_register_event_sinks(self, register: Callable[[EventSink], None]) -> None:
        register(self.sink)


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
    path = os.environ.get("ROOST_TEST_SINK_LOG")
    delay = float(os.environ.get("ROOST_TEST_SINK_DELAY") or 0)
    plugins = [FileSinkPlugin(path, delay)] if path else []
    registry = Registry.load(get_plugin_manager(plugins=plugins, autoload=False))
    async with RedisSwarm(registry=registry) as swarm:
        print("ready", flush=True)
        await swarm.run_worker(engines, concurrency=args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
