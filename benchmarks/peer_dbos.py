"""The DBOS peer: the benchmark workload as DBOS workflows on a DBOS queue.

``python -m benchmarks.peer_dbos enqueue|work URL ...`` (see :mod:`benchmarks.peer_proto`
for the protocol). An item is a workflow of ``steps`` steps, each a ``@DBOS.step`` that
returns the next state; DBOS checkpoints every step's output in its system database before
the workflow goes on. ``enqueue`` puts the items on a queue without taking any (it listens to
no queue); ``work`` launches a worker that takes them ``concurrency`` at a time. A restarted
``work`` process has the same executor id (DBOS's ``local``), so DBOS recovers its
predecessor's workflows at launch.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig
from sqlalchemy import event

from benchmarks.peer_proto import Progress, parse_args, report

QUEUE = "bench"
PROGRESS = Progress()


@DBOS.step()
async def bench_step(item: int, state: dict[str, Any], pause: float) -> dict[str, Any]:
    """One step: count it, after ``pause`` seconds (crash runs give steps a duration)."""
    if pause:
        await asyncio.sleep(pause)
    state = {**state, "n": int(state["n"]) + 1}
    PROGRESS.step(item, state["n"])
    return state


@DBOS.workflow()
async def bench_item(item: int, steps: int, state: dict[str, Any], pause: float) -> dict[str, Any]:
    """An item: ``steps`` steps, each persisted by DBOS before the next one starts."""
    PROGRESS.started()
    for _ in range(steps):
        state = await bench_step(item, state, pause)
    PROGRESS.finished()
    return state


def sqlite_engine(url: str) -> sa.Engine:
    """DBOS's own SQLite engine settings, with WAL and ``synchronous=NORMAL``.

    WAL commits then reach the OS at once and the disk at checkpoints, as Redis with
    ``appendfsync everysec`` does, instead of two fsyncs per commit.
    """
    engine = sa.create_engine(url)

    @event.listens_for(engine, "connect")
    def configure(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.isolation_level = "IMMEDIATE"
        dbapi_conn.execute("PRAGMA busy_timeout=30000")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    return engine


def configure(url: str, fsync: bool) -> None:
    config: DBOSConfig = {
        "name": "roost-bench",
        "system_database_url": url,
        "application_version": "bench",
        "log_level": "WARNING",
    }
    if url.startswith("sqlite") and not fsync:
        config["system_database_engine"] = sqlite_engine(url)
    DBOS(config=config)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    PROGRESS.open(args)
    configure(args.url, args.fsync)
    if args.mode == "enqueue":
        DBOS.listen_queues([])
    DBOS.launch()
    DBOS.register_queue(
        QUEUE,
        worker_concurrency=args.concurrency,
        polling_interval_sec=args.poll,
        on_conflict="always_update",
    )
    if args.mode == "enqueue":
        for i in range(args.items):
            DBOS.enqueue_workflow(QUEUE, bench_item, i, args.steps, args.state(), args.pause)
        report(event="enqueued", items=args.items)
        DBOS.destroy()
        return
    report(event="ready")
    while not PROGRESS.all_done():
        time.sleep(0.01)
    report(event="done", **PROGRESS.summary())
    threading.Event().wait()  # the parent stops this process


if __name__ == "__main__":
    main(sys.argv[1:])
