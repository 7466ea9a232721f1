"""Run a chaos worker: ``python -m roost_testkit.chaos.worker --concurrency N``.

Like :mod:`roost_testkit.worker_main` (settings from ROOST_* variables), with the
:class:`~roost_testkit.chaos.engine.ChaosEngine` (and, with ``ROOST_CHAOS_SIGNALS`` set, the
engines of :mod:`roost_testkit.waiting`), and what only the worker knows (which never
reaches the stream) appended as JSON lines to ``$ROOST_CHAOS_EVENTS`` by a step observer: a
``committed`` record per step version the worker was told was stored, a ``stale_commit``
record per commit refused for its lease (fenced), a ``lease_lost`` record per lease it lost,
plus one ``stopping`` record with the moment the worker began to stop (its first SIGTERM),
so a test can tell which steps started after that.
Prints ``ready <worker id>`` once the worker loop runs. With ``ROOST_CHAOS_FANOUT`` set it
also runs :class:`~roost_testkit.family.FanOutEngine` (parents that spawn hash-chain children).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time

from roost.redis import RedisSwarm
from roost.runtime import Engine, Registry, get_plugin_manager
from roost.runtime.observe import StepObserver, StepRecord
from roost_testkit.chaos.engine import ChaosEngine
from roost_testkit.family import FanOutEngine
from roost_testkit.waiting import MeteredEngine, SignalCollector

NOT_FENCED = ("cancelled", "store unavailable")
"""Refusals that are not a fenced commit (an operator's cancel, an outage)."""


class FileLog(StepObserver):
    """Appends what the worker alone knows to a JSON-lines file (one ``write`` per line)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict[str, object]) -> None:
        record.update(ts=time.time(), pid=os.getpid())
        os.write(self.fd, (json.dumps(record) + "\n").encode())

    def step_ended(self, record: StepRecord) -> None:
        if record.outcome == "committed":
            kind = "committed"
        elif record.outcome == "refused" and record.detail not in NOT_FENCED:
            kind = "stale_commit"
        else:
            return
        self.write(
            {
                "type": kind,
                "work_id": record.work_id,
                "version": record.version,
                "worker": record.worker_id,
                "data": {"detail": record.detail},
            }
        )

    def lease_lost(self, engine: str) -> None:
        self.write({"type": "lease_lost", "engine": engine})


def record_stopping(sink: FileLog) -> None:
    """Append a ``stopping`` record when this process's worker starts to stop.

    Observation only: the runtime emits no event when it begins a graceful stop, so this
    wraps ``Worker.stop`` (in this test process) to note the time, then calls it unchanged.
    """
    from roost.redis import worker as worker_module

    original = worker_module.Worker.stop

    def stop(self: worker_module.Worker) -> None:
        if not self.stopping:
            os.write(
                sink.fd,
                (
                    json.dumps({"type": "stopping", "ts": time.time(), "pid": os.getpid()}) + "\n"
                ).encode(),
            )
        original(self)

    worker_module.Worker.stop = stop  # type: ignore[method-assign]


def dump_tasks() -> None:
    """On SIGUSR1: print every asyncio task's stack to stderr (to diagnose a hung stop)."""
    for task in asyncio.all_tasks():
        print(f"TASK {task!r}", file=sys.stderr)
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    path = os.environ.get("ROOST_CHAOS_EVENTS")
    observers = [FileLog(path)] if path else []
    if observers:
        record_stopping(observers[0])
    registry = Registry.load(get_plugin_manager(autoload=False))
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
    engines: list[Engine] = [ChaosEngine()]
    if os.environ.get("ROOST_CHAOS_SIGNALS"):
        engines += [SignalCollector(), MeteredEngine()]
    if os.environ.get("ROOST_CHAOS_FANOUT"):
        engines.append(FanOutEngine())  # the parents of the child-work scenario
    async with RedisSwarm(registry=registry) as swarm:
        task = asyncio.create_task(
            swarm.run_worker(engines, concurrency=args.concurrency, observers=observers)
        )
        while not swarm.worker_id and not task.done():
            await asyncio.sleep(0.005)
        print(f"ready {swarm.worker_id}", flush=True)
        await task


if __name__ == "__main__":
    asyncio.run(main())
