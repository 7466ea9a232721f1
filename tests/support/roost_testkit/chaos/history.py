"""What happened, as the stream and the logs tell it, and audits of it.

Three records exist after a run:

- the namespace's event stream (``committed``/``done`` with ``version`` and ``worker``,
  ``started`` at each lease grant, ``lease_expired``, ``released``, ``retrying``, ``dead``...):
  the runtime's own history of accepted writes;
- the attempt log (``$ROOST_TEST_LOG``): one ``start`` and one ``end`` line per attempt a
  worker ran, with the lease epoch it ran under (an attempt may run and never commit);
- the workers' own logs (``$ROOST_CHAOS_EVENTS``, written by a step observer): what never
  reaches the stream, such as ``stale_commit`` (a fenced commit refused), ``lease_lost``, and
  ``committed`` (each version a worker was told was stored).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.redis import RedisSwarm
from roost.redis.codec import event_from_entry
from roost.runtime import RuntimeEvent
from roost_testkit.engines import expected_state

COMMITS = ("committed", "done")
LEASE_ENDS = ("lease_expired", "released", "retrying", "dead", "failed")
MAX_PROBLEMS = 12


def read_jsonl(paths: Path | Iterable[Path]) -> list[dict[str, Any]]:
    """Records of JSON-lines files; a torn last line (a writer was SIGKILLed) is skipped."""
    out: list[dict[str, Any]] = []
    for path in [paths] if isinstance(paths, Path) else paths:
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return out


def write_jsonl(path: Path, records: Iterable[str], *, append: bool = False) -> None:
    """Write JSON documents, one a line (for post-mortems of a run)."""
    with path.open("a" if append else "w") as fh:
        fh.writelines(r + "\n" for r in records)


async def read_stream(swarm: RedisSwarm, chunk: int = 10_000) -> list[RuntimeEvent]:
    """The whole event stream of the swarm's namespace, oldest first: every partition's
    stream, merged by stream id (one item's events are all in one stream, in order)."""
    rows: list[tuple[tuple[int, int], Any, Any]] = []
    for keys in swarm.partition_keys():
        start = "-"
        while True:
            part = await swarm.client.xrange(keys.events, min=start, count=chunk)
            rows += [(_stream_order(i), i, f) for i, f in part]
            if len(part) < chunk:
                break
            start = f"({part[-1][0]}"
    rows.sort(key=lambda row: row[0])
    return [event_from_entry(i, f) for _, i, f in rows]


def _stream_order(entry_id: str | bytes) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def by_item(
    events: Iterable[RuntimeEvent], ids: set[str] | None = None
) -> dict[str, list[RuntimeEvent]]:
    out: dict[str, list[RuntimeEvent]] = defaultdict(list)
    for e in events:
        if ids is None or e.work_id in ids:
            out[e.work_id].append(e)
    return out


@dataclass
class Problems:
    """Failure messages, capped so one systematic fault does not flood the report."""

    items: list[str] = field(default_factory=list[str])
    counts: Counter[str] = field(default_factory=Counter[str])

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= 3 and len(self.items) < MAX_PROBLEMS:
            self.items.append(f"{kind}: {message}")

    def summary(self) -> list[str]:
        extra = [f"{kind}: {n} in all" for kind, n in sorted(self.counts.items()) if n > 3]
        return self.items + extra


@dataclass
class CommitAudit:
    """What the stream says about accepted commits."""

    commits: int = 0
    duplicates: int = 0
    holders_checked: int = 0
    problems: Problems = field(default_factory=Problems)


def audit_commits(
    events: Sequence[RuntimeEvent],
    attempts: Sequence[dict[str, Any]],
    final_versions: dict[str, int],
) -> CommitAudit:
    """Check every accepted commit of the items in ``final_versions``.

    - each version 1..final is committed exactly once (no duplicate, no gap);
    - each commit came from the lease holder of that moment: replaying the item's events,
      ``started`` grants the lease (epoch = number of grants so far, as ``HINCRBY lep``
      counts them), a commit must come from that holder, and ``lease_expired``,
      ``released``, ``retrying``, ``dead``, ``failed`` or a non-inline commit end it;
    - the attempt log has the run that produced it: an ``end`` record of the step from
      ``version - 1`` by that worker under that epoch (init commits, version 1, run
      ``init_snapshot``, which logs nothing).
    """
    audit = CommitAudit()
    ran = {
        (r["work_id"], r["version"], r["worker"], r["epoch"])
        for r in attempts
        if r.get("phase") == "end"
    }
    grouped = by_item(events, set(final_versions))
    for work_id, final in final_versions.items():
        counts: Counter[int] = Counter()
        holder: str | None = None
        epoch = 0
        for e in grouped.get(work_id, []):
            if e.type == "started":
                epoch += 1
                holder = e.worker
            elif e.type in COMMITS:
                audit.commits += 1
                version = e.version or 0
                counts[version] += 1
                if holder is None or e.worker != holder:
                    audit.problems.add(
                        "commit by a non-holder",
                        f"{work_id} v{version} by {e.worker}, lease holder {holder}",
                    )
                else:
                    audit.holders_checked += 1
                    if version >= 2 and (work_id, version - 1, holder, epoch) not in ran:
                        audit.problems.add(
                            "commit without a matching run",
                            f"{work_id} v{version}: no attempt from v{version - 1} "
                            f"by {holder} under epoch {epoch} in the attempt log",
                        )
                if e.type == "done" or e.data.get("next") != "inline":
                    holder = None
            elif e.type in LEASE_ENDS:
                holder = None
        dup = sum(n - 1 for n in counts.values() if n > 1)
        audit.duplicates += dup
        if dup:
            twice = sorted(v for v, n in counts.items() if n > 1)
            audit.problems.add("duplicate commit", f"{work_id} versions {twice} committed twice")
        missing = sorted(set(range(1, final + 1)) - set(counts))
        if missing:
            audit.problems.add("missing commit", f"{work_id} never committed versions {missing}")
        extra = sorted(v for v in counts if v > final or v < 1)
        if extra:
            audit.problems.add("unexpected version", f"{work_id} committed versions {extra}")
    return audit


async def audit_items(swarm: RedisSwarm, steps: dict[str, int], chunk: int = 500) -> Problems:
    """Every item is done at version steps + 1 with the hash chain of exactly those steps."""
    problems = Problems()
    ids = list(steps)
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        async with swarm.client.pipeline(transaction=False) as pipe:
            for work_id in part:
                keys = swarm.item_keys(work_id)
                pipe.hmget(keys.meta(work_id), ["state", "v"])
                pipe.get(keys.snap(work_id))
            rows = await pipe.execute()
        for i, work_id in enumerate(part):
            (state, version), snap_json = rows[2 * i], rows[2 * i + 1]
            n = steps[work_id]
            if state != "done":
                problems.add("not done", f"{work_id} is {state}")
                continue
            if int(version or 0) != n + 1:
                problems.add("wrong version", f"{work_id} at v{version}, expected v{n + 1}")
            snap = json.loads(snap_json) if snap_json else {}
            data = snap.get("data", {})
            if data.get("state") != expected_state(work_id, n) or data.get("done") != n:
                problems.add(
                    "broken hash chain",
                    f"{work_id}: {data.get('done')} steps recorded, state "
                    f"{str(data.get('state'))[:12]} != {expected_state(work_id, n)[:12]}",
                )
    return problems


@dataclass
class Kill:
    """A worker SIGKILLed at ``ts`` while it held the leases of ``held``."""

    ts: float
    worker_id: str
    held: list[str]


async def leases_held_by(swarm: RedisSwarm, worker_id: str) -> list[str]:
    """Work ids whose lease names ``worker_id`` as holder (from the lease indexes)."""
    ids: list[str] = []
    for keys in swarm.partition_keys():
        ids += await swarm.client.zrange(keys.leases, 0, -1)
    if not ids:
        return []
    async with swarm.client.pipeline(transaction=False) as pipe:
        for work_id in ids:
            pipe.hget(swarm.item_keys(work_id).meta(work_id), "lw")
        holders: list[str | None] = await pipe.execute()
    return [w for w, h in zip(ids, holders, strict=True) if h == worker_id]


@dataclass
class Resume:
    """How an item held by a killed worker came back."""

    work_id: str
    kill: Kill
    requeued: float | None
    """Seconds from the kill to the recovery pass that requeued it (``lease_expired``)."""
    resumed: float
    """Seconds from the kill to its next lease grant on another worker."""


def resumes(events: Sequence[RuntimeEvent], kills: Sequence[Kill]) -> tuple[list[Resume], Problems]:
    """How long each item a killed worker held took to be leased again by another worker.

    An item whose last commit (sent before the kill) landed after it was not in flight: it
    is skipped. An item never leased again is a problem.
    """
    grouped = by_item(events, {w for k in kills for w in k.held})
    out: list[Resume] = []
    problems = Problems()
    for kill in kills:
        for work_id in kill.held:
            requeued: float | None = None
            for e in grouped.get(work_id, []):
                if e.ts < kill.ts - 0.002:
                    continue
                if e.type in COMMITS and e.worker == kill.worker_id:
                    break
                if e.type == "lease_expired" and requeued is None:
                    requeued = max(0.0, e.ts - kill.ts)
                if e.type == "started" and e.worker != kill.worker_id:
                    out.append(Resume(work_id, kill, requeued, max(0.0, e.ts - kill.ts)))
                    break
            else:
                problems.add("never resumed", f"{work_id} held by killed {kill.worker_id}")
    return out, problems


def resume_delays(
    events: Sequence[RuntimeEvent], kills: Sequence[Kill]
) -> tuple[list[float], Problems]:
    """Just the seconds of :func:`resumes`."""
    found, problems = resumes(events, kills)
    return [r.resumed for r in found], problems


def count_types(records: Iterable[dict[str, Any]], etype: str) -> int:
    return sum(1 for r in records if r.get("type") == etype)
