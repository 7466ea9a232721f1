"""Memory: bytes per queued, running and finished item, by key kind, on Valkey and Redis.

On a private server of each kind there is (the bundled Valkey, and ``redis-server`` when
one is on ``PATH``), after ``memory_warmup`` items have run to done (scripts loaded, the
indexes past their small encodings):

- *queued*: ``memory_items`` items are enqueued with no worker running;
- *finished*: a worker runs them to done (``memory_steps`` steps each; the snapshot's data
  is ``{"n": 3, "pad": "x..."}`` with ``memory_pad`` characters of padding: 200 bytes of
  JSON by default);
- *running*: ``memory_running`` more items are taken by a worker whose second step hangs,
  so each holds a lease mid-step with its first step committed.

``--set memory_progress=true`` has every step report its progress once (a report is longer
than a packed hash's values may be, so it unpacks the meta hash while the item runs).

Each figure is the growth of the keyspace (``MEMORY USAGE`` of every key, every element
counted) over the phase, per item, with a breakdown by key kind (meta hash, item JSON,
snapshot, history, state indexes, lease and due indexes, events stream, stats, SAQ job
records and lists). The rows give the item's own keys and index entries; the events stream
is capped at ``ROOST_EVENTS_MAXLEN`` entries (100,000 by default), so its share per item
falls to nothing as finished items pile up: it is in the breakdown and the JSON, not in the
row. ``used_memory`` growth is in the JSON too (it swings with allocator, Lua and client
buffers). The baseline is the user's own bytes: the snapshot's data and the item's payload,
as JSON.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from benchmarks.core import Row, Target, bench_state
from benchmarks.procs import WorkerProc, roost_cfg, start_workers
from benchmarks.runs import bench_items, data_memory, poll_until, swarm_for
from roost.redis.keys import Keys
from roost.redis.server import ServerProcess, find_server_binary

if TYPE_CHECKING:
    from benchmarks.core import Context

GROUP = "memory"
HANG = 600.0
"""Seconds the running phase's step hangs (the worker is killed long before)."""
ITEM_SUFFIXES = {
    "item": "item JSON",
    "snap": "snapshot",
    "hist": "history",
    "sig": "signals",
    "kids": "children",
}


SHARED = ("events stream", "stats", "workers and other")
"""Kinds that are not per item: the capped stream, per-minute counters, the workers' keys."""


def kind_of(key: str, keys: Keys) -> str:
    """The kind of a key of the bench namespace (SAQ's keys too), for the breakdown."""
    base = keys.base
    if key.startswith(base + "w:"):
        suffix = key.rpartition(":")[2]
        return ITEM_SUFFIXES.get(suffix, "meta hash")
    if key.startswith(base + "state:"):
        return "state indexes"
    if key == keys.events:
        return "events stream"
    if key == keys.stats:
        return "stats"
    if key.startswith("saq:job:"):
        return "SAQ job records"
    if key.startswith("saq:"):
        return "SAQ lists"
    if key in (keys.leases, keys.due):
        return "lease and due indexes"
    if key.startswith(base + "idem:"):
        return "idempotency keys"
    if key.startswith(base + "res"):
        return "resources"
    return "workers and other"


async def by_kind(client: aioredis.Redis, keys: Keys) -> tuple[Counter[str], Counter[str]]:
    """``MEMORY USAGE`` (all elements) and key count per kind, over the whole keyspace."""
    usage: Counter[str] = Counter()
    count: Counter[str] = Counter()
    names = [k async for k in client.scan_iter(count=1000)]
    for i in range(0, len(names), 500):
        chunk = names[i : i + 500]
        async with client.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.memory_usage(key, samples=0)
            sizes = await pipe.execute()
        for key, used in zip(chunk, sizes, strict=True):
            kind = kind_of(key, keys)
            usage[kind] += int(used or 0)
            count[kind] += 1
    return usage, count


class Probe:
    """Keyspace and ``used_memory`` readings of one server, and deltas between them."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def read(self) -> dict[str, Any]:
        await asyncio.sleep(0.3)  # let the last replies and lazy frees settle
        usage, count = await by_kind(self.client, self.keys)
        memory = data_memory(await self.client.info("memory"))
        events = int(await self.client.xlen(self.keys.events))
        return {"usage": usage, "count": count, "used_memory": memory, "events": events}

    @staticmethod
    def per_item(before: dict[str, Any], after: dict[str, Any], n: int) -> dict[str, Any]:
        """Growth per item from ``before`` to ``after`` over ``n`` items."""
        kinds = sorted(set(before["usage"]) | set(after["usage"]))
        delta = {k: (after["usage"][k] - before["usage"][k]) / n for k in kinds}
        keys = {k: (after["count"][k] - before["count"][k]) / n for k in kinds}
        own = sum(v for k, v in delta.items() if k not in SHARED)
        return {
            "bytes": own,
            "with_events": own + delta.get("events stream", 0.0),
            "by_kind": {k: round(v, 1) for k, v in delta.items() if v},
            "keys_by_kind": {k: round(v, 3) for k, v in keys.items() if v},
            "events_per_item": (after["events"] - before["events"]) / n,
            "used_memory_per_item": (after["used_memory"] - before["used_memory"]) / n,
            "items": n,
        }


def servers() -> list[tuple[str, Path]]:
    """The bundled server, and ``redis-server`` from PATH when it is another binary."""
    found = [find_server_binary()]
    other = shutil.which("redis-server")
    if other and Path(other).resolve() != found[0].resolve():
        found.append(Path(other))
    return [(label_of(b), b) for b in found]


def label_of(binary: Path) -> str:
    import subprocess

    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
    name = "Valkey" if out.startswith("Valkey") else "Redis"
    version = next((w[2:] for w in out.split() if w.startswith("v=")), "?")
    return f"{name} {version}"


async def measure(ctx: Context, binary: Path) -> dict[str, Any]:
    n, running = ctx.sizes["memory_items"], ctx.sizes["memory_running"]
    warmup, steps, pad = (
        ctx.sizes["memory_warmup"],
        ctx.sizes["memory_steps"],
        ctx.sizes["memory_pad"],
    )
    payload: dict[str, Any] = {"steps": steps, "pad": pad}
    if ctx.sizes.get("memory_progress"):
        payload["progress"] = True
    directory = ctx.tmp / f"mem-{binary.parent.name}-{len(list(ctx.tmp.iterdir()))}"
    server = ServerProcess(directory, binary=binary).start()
    home = ctx.tmp / "home"
    workers: list[WorkerProc] = []

    def worker(concurrency: int) -> WorkerProc:
        proc = start_workers(ctx.log_dir, [roost_cfg(server.url, home, concurrency=concurrency)])[0]
        workers.append(proc)
        proc.go()
        return proc

    try:
        async with swarm_for(server.url, ctx) as swarm:
            client, keys = swarm.client, swarm.keys
            probe = Probe(client, keys)

            async def done_count(target: int) -> bool:
                return int(await client.zcard(keys.state("done"))) >= target

            w = worker(50)
            await swarm.enqueue_many(bench_items(warmup, payload))
            await poll_until(lambda: done_count(warmup), workers=[w])
            w.stop()
            start = await probe.read()
            items = bench_items(n, payload)
            await swarm.enqueue_many(items)
            queued = await probe.read()
            w = worker(50)
            await poll_until(lambda: done_count(warmup + n), workers=[w])
            w.stop()
            finished = await probe.read()
            wid = items[0].work_id
            stored = {
                "meta hash fields": int(await client.hlen(keys.meta(wid))),
                "item JSON": int(await client.strlen(keys.item(wid))),
                "snapshot": int(await client.strlen(keys.snap(wid))),
                "meta encoding": await client.object("encoding", keys.meta(wid)),
            }
            sample = {
                "meta": await client.hgetall(keys.meta(wid)),
                "item": await client.get(keys.item(wid)),
                "snapshot": await client.get(keys.snap(wid)),
            }
            hang = {**payload, "hang": HANG, "hang_at": 2}
            w = worker(running)
            await swarm.enqueue_many(bench_items(running, hang))

            # Per item: enqueued, started, and two commits (the init snapshot with step 1,
            # inline); then step 2 hangs.
            after_events = finished["events"] + running * 4

            async def all_running() -> bool:
                leased = int(await client.zcard(keys.leases))
                return leased >= running and int(await client.xlen(keys.events)) >= after_events

            await poll_until(all_running, workers=[w])
            held = await probe.read()
            w.kill()
    finally:
        for proc in workers:
            proc.kill()
        server.stop(timeout=5.0)
    data_bytes = len(json.dumps(bench_state(pad) | {"n": steps}, separators=(",", ":")))
    return {
        "queued": Probe.per_item(start, queued, n),
        "finished": Probe.per_item(start, finished, n),
        "running": Probe.per_item(finished, held, running),
        "stored_bytes": stored,
        "sample": sample,
        "user_bytes": data_bytes + len(json.dumps(payload, separators=(",", ":"))),
        "items": n,
        "steps": steps,
    }


def breakdown(label: str, result: dict[str, Any]) -> str:
    """The per-kind table printed beside the rows (what a finished item keeps, and why)."""
    phases = ("queued", "running", "finished")
    kinds = sorted({k for p in phases for k in result[p]["by_kind"]})
    lines = [f"## memory per item on {label}, by key kind (bytes)", ""]
    lines.append("| kind | " + " | ".join(phases) + " |")
    lines.append("|---|" + "---:|" * len(phases))
    for kind in kinds:
        cells = [f"{result[p]['by_kind'].get(kind, 0):.0f}" for p in phases]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append(
        "| **own keys and indexes** | "
        + " | ".join(f"{result[p]['bytes']:.0f}" for p in phases)
        + " |"
    )
    lines.append(
        "| with its events | "
        + " | ".join(f"{result[p]['with_events']:.0f}" for p in phases)
        + " |"
    )
    lines.append("")
    lines.append(f"stored: {json.dumps(result['stored_bytes'])}")
    lines.append(f"finished meta hash: {json.dumps(result['sample']['meta'])}")
    return "\n".join(lines)


async def run(ctx: Context) -> None:
    for label, binary in servers():
        result = await measure(ctx, binary)
        print(breakdown(label, result) + "\n", file=sys.stderr, flush=True)
        base = float(result["user_bytes"])
        fin = result["finished"]
        detail = {"stored_bytes": result["stored_bytes"], "sample": result["sample"]}
        note = (
            f"{result['items']} items x {result['steps']} steps, "
            f"{result['stored_bytes']['snapshot']}-byte stored snapshot; "
            f"its {fin['events_per_item']:.1f} events add "
            f"{fin['with_events'] - fin['bytes']:.0f} B (capped stream)"
        )
        for phase, target in (("finished", 512.0), ("running", None), ("queued", None)):
            got = result[phase]
            ctx.add(
                Row(
                    GROUP,
                    f"bytes per {phase} item, {label}",
                    got["bytes"],
                    "bytes",
                    base,
                    "the snapshot data and payload, as JSON",
                    Target("value", "<=", target) if target else None,
                    note if phase == "finished" else f"{result[phase]['items']} items",
                    extra={**got, **(detail if phase == "finished" else {})},
                )
            )
