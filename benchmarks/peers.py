"""8. Peers: the throughput workload on DBOS and LangGraph, as ratios to Roost in the same run.

Every system runs ``items`` items of ``steps`` steps, a ~220-byte state persisted after
every step, one worker process at concurrency ``concurrency_high``: Roost on a server with
``appendfsync everysec``, DBOS on SQLite (and on PostgreSQL when a ``postgres`` binary is
found; a private server is started for the run), LangGraph with its SQLite checkpointer.
The stores write to the OS at every commit and to the disk about once a second, like the
Redis server (``peer_fsync`` true keeps their own fsync per commit instead). Runs are
interleaved and repeated; rows are medians. A crash row per peer times how long after a
restart the items the killed worker had under way make a step again (see
:mod:`benchmarks.peer_runs`).

The peers are an optional dependency group: ``uv run --group bench-peers python -m
benchmarks peers``. Without it, this benchmark prints one line and adds no rows.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from benchmarks.core import STATE_PAD, Row, median
from benchmarks.peer_runs import Peer, Workload, peer_crash, peer_drain, roost_crash
from benchmarks.postgres import find_postgres, private_postgres
from benchmarks.postgres import version as postgres_version
from benchmarks.runs import roost_drain

if TYPE_CHECKING:
    from pathlib import Path

    from benchmarks.core import Context

GROUP = "peers"
INSTALL = "uv run --group bench-peers python -m benchmarks peers"
DBOS_SQLITE = Peer("DBOS (SQLite)", "benchmarks.peer_dbos", "sqlite", queue=True)
DBOS_POSTGRES = Peer("DBOS (PostgreSQL)", "benchmarks.peer_dbos", "postgres", queue=True)
LANGGRAPH = Peer("LangGraph (SQLite checkpointer)", "benchmarks.peer_langgraph", "sqlite", False)
MODULES = {"dbos": "dbos", "langgraph": "langgraph.checkpoint.sqlite.aio"}


def missing() -> list[str]:
    """The peer packages that are not installed."""
    out: list[str] = []
    for name, module in MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(name)
    return out


class Stores:
    """A fresh store per run: a SQLite file, or a database on the private PostgreSQL."""

    def __init__(self, ctx: Context, postgres_url: str | None) -> None:
        self.dir = ctx.tmp / "peers"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.postgres_url = postgres_url
        self.n = 0

    def fresh(self, peer: Peer) -> tuple[str, Path]:
        """(URL of an empty store, log file) for one run of ``peer``."""
        self.n += 1
        name = f"{peer.module.rsplit('_', 1)[-1]}-{peer.store}-{self.n}"
        log = self.dir / f"{name}.log"
        if peer.store == "postgres":
            assert self.postgres_url is not None
            return f"{self.postgres_url}_{self.n}", log
        return f"sqlite:///{self.dir / name}.sqlite", log


async def run(ctx: Context) -> None:
    """Interleaved drain runs of Roost and every peer; then a crash run of each."""
    absent = missing()
    if absent:
        print(
            f"# peers: skipped ({', '.join(absent)} not installed); run them with: {INSTALL}",
            file=sys.stderr,
            flush=True,
        )
        return
    peers = [DBOS_SQLITE, LANGGRAPH]
    bindir = find_postgres()
    if bindir is None:
        print("# peers: no postgres binary found; DBOS runs on SQLite only", file=sys.stderr)
        await _run(ctx, peers, None, "")
        return
    with private_postgres(bindir, fsync=bool(ctx.sizes["peer_fsync"])) as url:
        await _run(ctx, [DBOS_SQLITE, DBOS_POSTGRES, LANGGRAPH], url, postgres_version(bindir))


async def _run(ctx: Context, peers: list[Peer], postgres_url: str | None, pg: str) -> None:
    sizes = ctx.sizes
    stores = Stores(ctx, postgres_url)
    c_hi = int(sizes["concurrency_high"])
    work = Workload(
        sizes["items"],
        sizes["steps"],
        c_hi,
        poll=float(sizes["peer_dbos_poll"]),
        fsync=bool(sizes["peer_fsync"]),
    )
    rates: dict[str, list[float]] = {"roost": [], **{p.label: [] for p in peers}}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in rates}
    for rep in range(ctx.repeat):
        order: list[Peer | None] = [None, *peers]
        for peer in order if rep % 2 == 0 else reversed(order):
            if peer is None:
                result = await roost_drain(
                    ctx,
                    items=work.items,
                    steps=work.steps,
                    concurrency=c_hi,
                    payload={"pad": STATE_PAD},
                    appendonly=True,
                )
                one = {"steps": result.steps, "wall": result.wall, "worker_cpu": result.worker_cpu}
                label = "roost"
            else:
                url, log = stores.fresh(peer)
                one = await asyncio.to_thread(peer_drain, peer, url, work, log)
                label = peer.label
            runs[label].append(one)
            rates[label].append(one["steps"] / one["wall"])
    roost = median(rates["roost"])
    for peer in peers:
        ctx.add(
            Row(
                GROUP,
                f"{peer.label} steps/s, 1 process, c{c_hi}",
                median(rates[peer.label]),
                "steps/s",
                roost,
                f"Roost steps/s, 1 process, c{c_hi}, same run",
                None,
                _describe(peer, work, pg),
                samples=rates[peer.label],
                extra={
                    "baseline_samples": rates["roost"],
                    "paired_ratios": [
                        a / b for a, b in zip(rates[peer.label], rates["roost"], strict=True)
                    ],
                    "runs": runs[peer.label],
                    "baseline_runs": runs["roost"],
                    "worker_cpu_ms_per_step": median(
                        [r["worker_cpu"] / r["steps"] * 1000 for r in runs[peer.label]]
                    ),
                    "baseline_worker_cpu_ms_per_step": median(
                        [r["worker_cpu"] / r["steps"] * 1000 for r in runs["roost"]]
                    ),
                },
            )
        )
    await _crash_rows(ctx, peers, stores, work)


def _describe(peer: Peer, work: Workload, pg: str) -> str:
    store = f"PostgreSQL {pg}" if peer.store == "postgres" else "SQLite"
    if work.fsync:
        durability = f"{store} with its own fsync per commit"
    elif peer.store == "postgres":
        durability = "PostgreSQL with synchronous_commit=off"
    else:
        durability = "SQLite WAL with synchronous=NORMAL"
    if peer.module.endswith("dbos"):
        how = (
            f"dbos {version('dbos')}: a workflow of {work.steps} @DBOS.step calls per item, "
            f"on a queue (worker_concurrency {work.concurrency}, polling every {work.poll:g} s)"
        )
    else:
        how = (
            f"langgraph {version('langgraph')}: a one-node graph looping {work.steps} times "
            f"per thread, {work.concurrency} threads at once under asyncio.gather"
        )
    return f"{how}; {durability}; Roost: appendfsync everysec"


async def _crash_rows(ctx: Context, peers: list[Peer], stores: Stores, work: Workload) -> None:
    sizes = ctx.sizes
    ttl = float(sizes["crash_ttl"])
    crash = Workload(
        int(sizes["peer_crash_items"]),
        work.steps,
        work.concurrency,
        pause=float(sizes["peer_crash_pause"]),
        poll=work.poll,
        fsync=work.fsync,
    )
    trials: dict[str, list[dict[str, float]]] = {"roost": [], **{p.label: [] for p in peers}}
    for _ in range(int(sizes["peer_crash_trials"])):
        trials["roost"].append(await roost_crash(ctx, crash, ttl))
        for peer in peers:
            url, log = stores.fresh(peer)
            trials[peer.label].append(await asyncio.to_thread(peer_crash, peer, url, crash, log))
    roost = median([t["resume"] for t in trials["roost"]])
    note = (
        f"{crash.items} items x {crash.steps} steps of {crash.pause:g} s, c{crash.concurrency}; "
        "SIGKILL a third of the way, a new worker started at once with the same identity; "
        "seconds from its start until an item under way at the kill makes a step. "
        f"Roost: lease TTL {ttl:g} s, same ROOST_WORKER_ID"
    )
    for peer in peers:
        how = (
            "DBOS recovers the executor's pending workflows at launch"
            if peer.queue
            else "the program resumes every unfinished thread from its checkpoint"
        )
        ready = {name: median([t["ready"] for t in trials[name]]) for name in ("roost", peer.label)}
        how += (
            f"; the new process took work after {ready[peer.label]:.2f} s "
            f"(Roost {ready['roost']:.2f} s)"
        )
        ctx.add(
            Row(
                GROUP,
                f"{peer.label} crash resume (restart -> killed items step again)",
                median([t["resume"] for t in trials[peer.label]]),
                "s",
                roost,
                "Roost, same measurement",
                None,
                f"{note}; {how}",
                samples=[t["resume"] for t in trials[peer.label]],
                extra={"trials": trials[peer.label], "baseline_trials": trials["roost"]},
            )
        )
